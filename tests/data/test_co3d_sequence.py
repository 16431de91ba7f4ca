"""CO3Dv2 layout written by the tests: PyTorch3D NDC cameras -> OpenCV, proven by projection both ways."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import torch
from PIL import Image

from vggt3d.data import Co3dDataset, Co3dSequence, check_sample, co3d_viewpoint_to_opencv, load_co3d_depth
from vggt3d.geometry import project_points

FLIP = np.diag([-1.0, -1.0, 1.0])


def pytorch3d_viewpoint(cam_from_world: np.ndarray, k: np.ndarray, size_hw, intrinsics_format: str) -> dict:
    """OpenCV camera -> CO3D viewpoint, from PyTorch3D's definitions (independent of the adapter)."""
    height, width = size_hw
    r_cv, t_cv = cam_from_world[:, :3], cam_from_world[:, 3]
    # X_view = X_world @ R + T with view axes +x left, +y up: X_view = FLIP (R_cv X + t_cv).
    R = (FLIP @ r_cv).T
    T = FLIP @ t_cv
    if intrinsics_format == "ndc_isotropic":
        sx = sy = min(height, width) / 2.0
    else:
        sx, sy = width / 2.0, height / 2.0
    # Screen (corner) coordinates are pixel-centre ones + 0.5; NDC = (size / 2 - screen) / scale.
    px, py = (width / 2.0 - (k[0, 2] + 0.5)) / sx, (height / 2.0 - (k[1, 2] + 0.5)) / sy
    return {"R": R.tolist(), "T": T.tolist(), "focal_length": [k[0, 0] / sx, k[1, 1] / sy],
            "principal_point": [px, py], "intrinsics_format": intrinsics_format}


def pytorch3d_project(viewpoint: dict, size_hw, points: np.ndarray) -> np.ndarray:
    """PyTorch3D NDC projection of world points, then NDC -> pixel centres at integers."""
    height, width = size_hw
    view = points @ np.asarray(viewpoint["R"]) + np.asarray(viewpoint["T"])
    fx, fy = viewpoint["focal_length"]
    px, py = viewpoint["principal_point"]
    x_ndc = fx * view[:, 0] / view[:, 2] + px
    y_ndc = fy * view[:, 1] / view[:, 2] + py
    if viewpoint["intrinsics_format"] == "ndc_isotropic":
        sx = sy = min(height, width) / 2.0
    else:
        sx, sy = width / 2.0, height / 2.0
    return np.stack([width / 2.0 - x_ndc * sx - 0.5, height / 2.0 - y_ndc * sy - 0.5], axis=1)


def write_co3d(root, category, sequences: dict, intrinsics_format="ndc_isotropic", scale_adjustment=0.5):
    """Write ``{sequence_name: views}`` in the public CO3Dv2 layout; returns the frame annotations."""
    frames, seq_annotations = [], []
    for name, views in sequences.items():
        base = root / category / name
        for sub in ("images", "depths", "depth_masks", "masks"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        for n, view in enumerate(views, start=1):
            stem = f"frame{n:06d}"
            Image.fromarray(view.image).save(base / "images" / f"{stem}.jpg", quality=95)
            bits = (view.depth / scale_adjustment).astype(np.float16).view(np.uint16)
            Image.fromarray(bits).save(base / "depths" / f"{stem}.jpg.geometric.png")
            depth_mask = np.full(view.size, 255, np.uint8)
            depth_mask[:4, :8] = 0  # an MVS hole
            Image.fromarray(depth_mask).save(base / "depth_masks" / f"{stem}.png")
            Image.fromarray(np.full(view.size, 255, np.uint8)).save(base / "masks" / f"{stem}.png")
            rel = f"{category}/{name}"
            frames.append({
                "sequence_name": name, "frame_number": n, "frame_timestamp": n / 30.0,
                "image": {"path": f"{rel}/images/{stem}.jpg", "size": list(view.size)},
                "depth": {"path": f"{rel}/depths/{stem}.jpg.geometric.png", "scale_adjustment": scale_adjustment,
                          "mask_path": f"{rel}/depth_masks/{stem}.png"},
                "mask": {"path": f"{rel}/masks/{stem}.png", "mass": float(view.size[0] * view.size[1])},
                "viewpoint": pytorch3d_viewpoint(view.cam_from_world, view.intrinsics, view.size, intrinsics_format),
                "meta": {},
            })
        seq_annotations.append({"sequence_name": name, "category": category,
                                "video": {"path": f"{category}/{name}/video.mp4", "length": len(views) / 30.0},
                                "point_cloud": None, "viewpoint_quality_score": 1.0})
    for filename, data in (("frame_annotations.jgz", frames), ("sequence_annotations.jgz", seq_annotations)):
        with gzip.open(root / category / filename, "wt", encoding="utf-8") as f:
            json.dump(data, f)
    return frames


@pytest.mark.parametrize("intrinsics_format", ["ndc_isotropic", "ndc_norm_image_bounds"])
def test_cameras_convert_exactly(tmp_path, scene_views, intrinsics_format):
    _, views = scene_views
    write_co3d(tmp_path, "apple", {"110_1_2": views}, intrinsics_format)
    sequence = Co3dDataset(tmp_path, min_frames=1, depth_percentile=None).sequences[0]
    assert sequence.name == "apple/110_1_2" and len(sequence) == 6
    for i, view in enumerate(views):
        np.testing.assert_allclose(sequence.cam_from_world[i], view.cam_from_world, atol=1e-12)
        np.testing.assert_allclose(sequence.intrinsics[i], view.intrinsics, atol=1e-12)


@pytest.mark.parametrize("intrinsics_format", ["ndc_isotropic", "ndc_norm_image_bounds"])
def test_projection_both_ways(tmp_path, scene_views, intrinsics_format):
    """World -> pixel agrees with PyTorch3D's NDC projection; pixel + depth -> world -> NDC gives the pixel."""
    _, views = scene_views
    frames = write_co3d(tmp_path, "apple", {"110_1_2": views}, intrinsics_format)
    ds = Co3dDataset(tmp_path, min_frames=1, depth_percentile=None)
    sample = ds[0]
    check_sample(sample, "co3d")
    rng = np.random.default_rng(0)
    points = rng.normal(0, 1.0, (200, 3)) + views[0].cam_from_world[:, :3].T @ (np.array([0, 0, 4.0])
                                                                                  - views[0].cam_from_world[:, 3])
    for i, frame in enumerate(frames):
        e = sample["cam_from_world"][i].double().numpy()
        front = (points @ e[:, :3].T + e[:, 3])[:, 2] > 0.1
        ours, _ = project_points(torch.from_numpy(points[front]), sample["cam_from_world"][i].double(),
                                 sample["intrinsics"][i].double())
        theirs = pytorch3d_project(frame["viewpoint"], frame["image"]["size"], points[front])
        np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-4)  # float32 sample cameras
        # Back: our world points of valid pixels project, in PyTorch3D's convention, onto their pixels.
        mask = sample["point_masks"][i]
        v, u = torch.nonzero(mask, as_tuple=True)
        world = sample["world_points"][i][mask].double().numpy()
        back = pytorch3d_project(frame["viewpoint"], frame["image"]["size"], world)
        np.testing.assert_allclose(back, np.stack([u.numpy(), v.numpy()], 1), atol=1e-3)


def test_known_point_lands_on_the_principal_point():
    """A point on the optical axis lands on the principal point; NDC (0, 0) is the image centre (W-1)/2."""
    e, k = co3d_viewpoint_to_opencv(np.eye(3), [0, 0, 5], [2.0, 2.0], [0.0, 0.0], (48, 64), "ndc_isotropic")
    assert k[0, 2] == pytest.approx(31.5) and k[1, 2] == pytest.approx(23.5) and k[0, 0] == pytest.approx(48.0)
    uv, z = project_points(torch.tensor([[0.0, 0.0, 3.0]], dtype=torch.float64), torch.from_numpy(e),
                           torch.from_numpy(k))
    assert uv[0].tolist() == pytest.approx([31.5, 23.5]) and z.item() == pytest.approx(8.0)
    # PyTorch3D's +x points left: a point at +x in its view space lands left of the centre.
    uv, _ = project_points(torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64), torch.from_numpy(e),
                           torch.from_numpy(k))
    assert uv[0, 0] < 31.5 and uv[0, 1] < 23.5


def test_depth_png_mask_and_cleanup(tmp_path, scene_views):
    _, views = scene_views
    write_co3d(tmp_path, "apple", {"110_1_2": views}, scale_adjustment=0.5)
    path = tmp_path / "apple" / "110_1_2" / "depths" / "frame000001.jpg.geometric.png"
    depth = load_co3d_depth(path, 0.5)
    np.testing.assert_allclose(depth, views[0].depth, rtol=1e-3)
    exact = Co3dDataset(tmp_path, min_frames=1, depth_percentile=None).sequences[0].load_view(0)
    assert (exact.depth[:4, :8] == 0).all() and (exact.depth[4:] > 0).mean() > 0.99  # MVS mask applied
    cleaned = Co3dDataset(tmp_path, min_frames=1).sequences[0].load_view(0)
    assert 0 < ((exact.depth > 0) & (cleaned.depth == 0)).mean() <= 0.021  # 98th percentile cut
    assert cleaned.frame_id == 1


def test_min_frames_and_contract(tmp_path, scene_views):
    _, views = scene_views
    write_co3d(tmp_path, "apple", {"110_1_2": views, "111_3_4": views[:2]})
    ds = Co3dDataset(tmp_path, min_frames=3, num_tracks=8, image_size=(28, 42))
    assert len(ds) == 1
    sample = ds[0]
    check_sample(sample, "co3d")
    assert sample["images"].shape == (6, 3, 28, 42) and sample["frame_ids"] == [1, 2, 3, 4, 5, 6]
    assert len(Co3dDataset(tmp_path, min_frames=1)) == 2
    with pytest.raises(ValueError, match="at least 24"):
        Co3dDataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="frame_annotations"):
        Co3dDataset(tmp_path / "apple" / "110_1_2")
    with pytest.raises(ValueError, match="intrinsics_format"):
        co3d_viewpoint_to_opencv(np.eye(3), [0, 0, 1], [1, 1], [0, 0], (4, 4), "screen")


def test_sequence_from_annotations(tmp_path, scene_views):
    _, views = scene_views
    frames = write_co3d(tmp_path, "apple", {"110_1_2": views[:3]})
    sequence = Co3dSequence(tmp_path, list(reversed(frames)), "apple")
    assert [f["frame_number"] for f in sequence.frames] == [1, 2, 3]
    assert sequence.load_view(2).image.shape == (48, 64, 3)
