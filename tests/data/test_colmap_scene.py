"""COLMAP models written by pycolmap load with the right cameras, sparse and dense depth, camera models."""

from __future__ import annotations

import numpy as np
import pycolmap
import pytest
import torch
from PIL import Image

from vggt3d.data import ColmapDataset, ColmapError, ColmapScene, check_sample, read_colmap_depth, write_colmap_depth
from vggt3d.geometry import project_points


def _colmap_camera(k: np.ndarray, width: int, height: int, camera_id: int, model: str = "PINHOLE",
                   extra: tuple[float, ...] = ()) -> pycolmap.Camera:
    """COLMAP puts pixel centres at +0.5: its principal point is ours + 0.5."""
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2] + 0.5, k[1, 2] + 0.5
    params = {"PINHOLE": [fx, fy, cx, cy], "SIMPLE_RADIAL": [fx, cx, cy, *extra],
              "OPENCV": [fx, fy, cx, cy, *extra]}[model]
    return pycolmap.Camera(model=model, width=width, height=height, params=params, camera_id=camera_id)


def write_colmap_project(root, scene, views, model: str = "PINHOLE", extra=(), text: bool = False, points_per_image=40):
    """Images + sparse model: one camera per image, points observed where the exact geometry sees them."""
    (root / "images").mkdir(parents=True)
    (root / "sparse" / "0").mkdir(parents=True)
    rec = pycolmap.Reconstruction()
    rng = np.random.default_rng(0)
    height, width = views[0].size
    observations = {i: [] for i in range(len(views))}  # image -> [(xy_colmap, point index)]
    points = []
    for i, view in enumerate(views):
        Image.fromarray(view.image).save(root / "images" / f"frame_{i}.png")
        rec.add_camera_with_trivial_rig(_colmap_camera(view.intrinsics, width, height, i + 1, model, extra))
        valid = np.flatnonzero(view.depth.reshape(-1) > 0)
        for flat in rng.choice(valid, points_per_image, replace=False):
            v, u = divmod(int(flat), width)
            t, xyz = scene.raycast_pixels(view.cam_from_world, view.intrinsics, np.array([[u, v]], float))
            points.append(xyz[0])
            for j, other in enumerate(views):  # observed wherever it is visible
                cam = other.cam_from_world[:, :3] @ xyz[0] + other.cam_from_world[:, 3]
                uv = other.intrinsics[:2, :2] @ (cam[:2] / cam[2]) + other.intrinsics[:2, 2]
                if cam[2] > 0 and (0 <= uv).all() and uv[0] <= width - 1 and uv[1] <= height - 1:
                    tj, _ = scene.raycast_pixels(other.cam_from_world, other.intrinsics, uv[None])
                    if abs(tj[0] - cam[2]) < 1e-6 * cam[2]:
                        observations[j].append((uv + 0.5, len(points) - 1))
    tracks = [pycolmap.Track() for _ in points]
    for i, view in enumerate(views):
        keypoints = np.array([xy for xy, _ in observations[i]], dtype=np.float64).reshape(-1, 2)
        image = pycolmap.Image(name=f"frame_{i}.png", keypoints=keypoints, camera_id=i + 1, image_id=i + 1)
        rec.add_image_with_trivial_frame(image, pycolmap.Rigid3d(view.cam_from_world))
        for idx, (_, p) in enumerate(observations[i]):
            tracks[p].add_element(i + 1, idx)
    for xyz, track in zip(points, tracks):
        rec.add_point3D(xyz, track)
    (rec.write_text if text else rec.write)(str(root / "sparse" / "0"))
    return rec, np.array(points)


def test_cameras_and_projection_of_known_points(tmp_path, scene_views):
    scene, views = scene_views
    rec, points = write_colmap_project(tmp_path / "p", scene, views)
    colmap = ColmapScene(tmp_path / "p")
    assert len(colmap) == 6 and colmap.names[0] == "frame_0.png" and colmap.sizes.tolist() == [[48, 64]] * 6
    for i, view in enumerate(views):
        np.testing.assert_allclose(colmap.cam_from_world[i], view.cam_from_world, atol=1e-7)  # quaternion storage
        np.testing.assert_allclose(colmap.intrinsics[i], view.intrinsics, atol=1e-12)
        # pycolmap's own projection (pixel centres at +0.5) minus 0.5 equals ours.
        camera = rec.cameras[i + 1]
        cam = points @ colmap.cam_from_world[i, :, :3].T + colmap.cam_from_world[i, :, 3]
        front = cam[:, 2] > 0
        theirs = camera.img_from_cam(cam[front]) - 0.5
        ours, _ = project_points(torch.from_numpy(points[front]), torch.from_numpy(colmap.cam_from_world[i]),
                                 torch.from_numpy(colmap.intrinsics[i]))
        np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-6)


def test_sparse_depth_marks_projected_points(tmp_path, scene_views):
    scene, views = scene_views
    _, points = write_colmap_project(tmp_path / "p", scene, views)
    colmap = ColmapScene(tmp_path / "p")
    assert colmap.use_dense is False
    for i in (0, 3):
        depth, mask = colmap.load_depth(i)
        assert np.array_equal(mask, depth > 0) and 5 <= mask.sum() <= len(colmap.points[i])
        v, u = np.nonzero(mask)
        # Each sparse pixel holds the depth of an observed point projecting into it.
        cam = colmap.points[i] @ colmap.cam_from_world[i, :, :3].T + colmap.cam_from_world[i, :, 3]
        k = colmap.intrinsics[i]
        pu = np.round(k[0, 0] * cam[:, 0] / cam[:, 2] + k[0, 2]).astype(int)
        pv = np.round(k[1, 1] * cam[:, 1] / cam[:, 2] + k[1, 2]).astype(int)
        for uu, vv in zip(u, v):
            hits = (pu == uu) & (pv == vv)
            assert hits.any() and np.isclose(depth[vv, uu], cam[hits, 2].min(), rtol=1e-6)
        # And that depth agrees with the exact render there (same point, nearest pixel centre).
        assert np.median(np.abs(depth[mask] - views[i].depth[mask]) / depth[mask]) < 0.05
    sample = ColmapDataset(tmp_path / "p")[0]
    check_sample(sample, "colmap")
    assert sample["point_masks"].sum(dim=(1, 2)).min() >= 5


def test_dense_depth_maps(tmp_path, scene_views):
    scene, views = scene_views
    write_colmap_project(tmp_path / "p", scene, views, text=True)
    (tmp_path / "p" / "stereo" / "depth_maps").mkdir(parents=True)
    for i, view in enumerate(views):
        write_colmap_depth(tmp_path / "p" / "stereo" / "depth_maps" / f"frame_{i}.png.geometric.bin", view.depth)
    assert np.array_equal(read_colmap_depth(tmp_path / "p" / "stereo" / "depth_maps" / "frame_1.png.geometric.bin"),
                          views[1].depth)
    colmap = ColmapScene(tmp_path / "p")  # text model, dense maps found automatically
    assert colmap.use_dense
    sample = ColmapDataset(tmp_path / "p", num_tracks=4)[0]
    check_sample(sample, "colmap dense")
    for i, view in enumerate(views):
        assert np.array_equal(sample["depths"][i].numpy(), view.depth)
    assert ColmapScene(tmp_path / "p", depth="sparse").use_dense is False


def test_zero_distortion_is_pinhole_and_distortion_is_undistorted_or_refused(tmp_path, scene_views):
    scene, views = scene_views
    write_colmap_project(tmp_path / "radial0", scene, views[:3], model="SIMPLE_RADIAL", extra=(0.0,))
    plain = ColmapScene(tmp_path / "radial0")
    np.testing.assert_allclose(plain.intrinsics[0][[0, 1], [2, 2]], views[0].intrinsics[[0, 1], [2, 2]], atol=1e-12)

    views_fx = []  # OPENCV with fx = fy
    for v in views[:3]:
        k = v.intrinsics.copy()
        k[1, 1] = k[0, 0]
        views_fx.append(v.with_(intrinsics=k))
    rec, points = write_colmap_project(tmp_path / "opencv", scene, views_fx, model="OPENCV",
                                       extra=(0.05, -0.02, 0.001, 0.0005))
    with pytest.raises(ColmapError, match="distorted OPENCV"):
        ColmapScene(tmp_path / "opencv", undistort=False)
    undistorted = ColmapScene(tmp_path / "opencv")
    image = undistorted.load_image(0)
    ucam = pycolmap.undistort_camera(pycolmap.UndistortCameraOptions(), rec.cameras[1])
    assert image.shape[:2] == (ucam.height, ucam.width) == tuple(undistorted.sizes[0])
    cam = points @ undistorted.cam_from_world[0, :, :3].T + undistorted.cam_from_world[0, :, 3]
    theirs = ucam.img_from_cam(cam[cam[:, 2] > 0]) - 0.5
    ours, _ = project_points(torch.from_numpy(points[cam[:, 2] > 0]), torch.from_numpy(undistorted.cam_from_world[0]),
                             torch.from_numpy(undistorted.intrinsics[0]))
    np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-6)
    check_sample(ColmapDataset(tmp_path / "opencv")[0], "undistorted")


def test_errors(tmp_path, scene_views):
    with pytest.raises(FileNotFoundError, match="COLMAP"):
        ColmapScene(tmp_path / "missing")
    (tmp_path / "empty" / "images").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="cameras"):
        ColmapScene(tmp_path / "empty")
    scene, views = scene_views
    write_colmap_project(tmp_path / "p", scene, views[:2])
    with pytest.raises(FileNotFoundError, match="dense"):
        ColmapScene(tmp_path / "p", depth="dense")
    Image.fromarray(views[0].image[:20]).save(tmp_path / "p" / "images" / "frame_0.png")
    with pytest.raises(ColmapError, match="frame_0.png"):
        ColmapScene(tmp_path / "p").load_image(0)
