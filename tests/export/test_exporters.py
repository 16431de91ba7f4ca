"""Exporters on a hand-made reconstruction (no model): formats, conventions, empty clouds, resampling."""

from __future__ import annotations

import json

import numpy as np
import pycolmap
import pytest
import trimesh
from PIL import Image

from vggt3d.export import DEFAULT_FORMATS, FORMATS, parse_formats, save
from vggt3d.export.depth_maps import resample_to_original
from vggt3d.export.glb import frustum_mesh
from vggt3d.export.splats import SH_C0, splat_columns
from vggt3d.io.images import ImageTransform
from vggt3d.reconstruct import Reconstruction


def rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def synthetic(n_points: int = 40, seed: int = 0) -> Reconstruction:
    """Two 64x48 frames seen by cameras 0.3 apart; points on a plane at z = 2 in front of camera 0."""
    rng = np.random.default_rng(seed)
    t = ImageTransform(64, 48, 56, 42, 0, 7, 56, 56)  # 'pad'-like: letterboxed vertically
    K_model = np.array([[50.0, 0, 28], [0, 50.0, 28], [0, 0, 1]])
    K = t.intrinsics_to_original(K_model)
    cams = np.tile(np.eye(4), (2, 1, 1))
    cams[1, :3, :3] = rotation_y(0.1)
    cams[1, :3, 3] = [-0.3, 0, 0]
    frame = (np.arange(n_points) % 2).astype(np.int32)
    uv = rng.uniform([0, 0], [63, 47], (n_points, 2))
    points = np.empty((n_points, 3))
    for i in range(n_points):  # unproject the observation at depth 2 in its own camera
        ray = np.linalg.solve(K, [uv[i, 0], uv[i, 1], 1.0]) * 2.0
        R, tt = cams[frame[i], :3, :3], cams[frame[i], :3, 3]
        points[i] = R.T @ (ray - tt)
    depth = np.zeros((2, 56, 56), np.float32)
    depth[:, 7:49] = 2.0
    return Reconstruction(
        image_names=["a.png", "b.png"], sources=["a.png", "b.png"], image_sizes=np.array([[64, 48], [64, 48]]),
        intrinsics=np.stack([K, K]), cam_from_world=cams, transforms=[t, t], model_intrinsics=np.stack([K_model] * 2),
        depth=depth, depth_conf=np.where(depth > 0, 3.0, 0.0).astype(np.float32),
        model_colors=np.zeros((2, 56, 56, 3), np.uint8), points=points.astype(np.float32),
        colors=rng.integers(0, 256, (n_points, 3), dtype=np.uint8), point_conf=np.full(n_points, 2.0, np.float32),
        point_normals=np.tile(np.array([0, 0, -1], np.float32), (n_points, 1)),
        point_spacing=np.full(n_points, 0.04, np.float32), point_frame=frame, point_uv=uv,
        info={"shared_camera": False, "weights": "synthetic", "mode": "pad", "model_size": [56, 56]},
        image_data=[Image.new("RGB", (64, 48), (i * 90, 20, 30)) for i in range(2)],
    )


def test_parse_formats():
    assert parse_formats(None) == list(DEFAULT_FORMATS) == parse_formats("all") and "scene_folder" not in DEFAULT_FORMATS
    assert parse_formats("all,scene_folder,html") == list(FORMATS)
    assert parse_formats("colmap, ply") == ["ply", "colmap"]  # writing order
    with pytest.raises(ValueError, match="unknown output format"):
        parse_formats("ply,obj")


@pytest.mark.parametrize("n_points", [40, 0], ids=["points", "empty"])
def test_every_format_writes_and_reads_back(tmp_path, n_points):
    rec = synthetic(n_points)
    written = save(rec, tmp_path / "out")
    assert "tracks" not in written  # no tracks predicted
    colmap = pycolmap.Reconstruction(str(tmp_path / "out" / "colmap" / "sparse" / "0"))
    assert colmap.num_images() == 2 and colmap.num_points3D() == n_points
    for image in colmap.images.values():
        for p in image.points2D:
            assert np.abs(image.project_point(colmap.points3D[p.point3D_id].xyz) - p.xy).max() < 1e-3
    assert f"element vertex {n_points}\n".encode() in (tmp_path / "out" / "points.ply").read_bytes()[:400]
    if n_points:  # trimesh reads a vertex-less PLY as an empty Scene
        assert len(trimesh.load(tmp_path / "out" / "points.ply").vertices) == n_points
    scene = trimesh.load(tmp_path / "out" / "scene.glb")
    assert ("points" in scene.geometry) == (n_points > 0) and "camera_0001" in scene.geometry
    ns = json.loads((tmp_path / "out" / "transforms.json").read_text())
    assert [f["file_path"] for f in ns["frames"]] == ["images/a.png", "images/b.png"]
    assert Image.open(tmp_path / "out" / "images" / "b.png").getpixel((0, 0)) == (90, 20, 30)


def test_colmap_observation_is_the_pixel(tmp_path):
    rec = synthetic()
    save(rec, tmp_path / "out", formats="colmap")
    colmap = pycolmap.Reconstruction(str(tmp_path / "out" / "colmap" / "sparse" / "0"))
    found = {}
    for image in colmap.images.values():
        for p in image.points2D:
            found[tuple(np.round(colmap.points3D[p.point3D_id].xyz, 5))] = (image.image_id - 1, p.xy - 0.5)
    for point, frame, uv in zip(rec.points, rec.point_frame, rec.point_uv):
        f, xy = found[tuple(np.round(point.astype(np.float64), 5))]
        assert f == frame and np.allclose(xy, uv, atol=1e-9)


def test_nerfstudio_camera_axes(tmp_path):
    rec = synthetic()
    save(rec, tmp_path / "out", formats="nerfstudio")
    data = json.loads((tmp_path / "out" / "transforms.json").read_text())
    assert "ply_file_path" not in data  # points.ply was not asked for
    frame = data["frames"][1]
    c2w = np.array(frame["transform_matrix"])
    world_from_cam = np.linalg.inv(rec.cam_from_world[1])
    np.testing.assert_allclose(-c2w[:3, 2], world_from_cam[:3, 2], atol=1e-12)  # OpenGL looks along -z
    np.testing.assert_allclose(c2w[:3, 1], -world_from_cam[:3, 1], atol=1e-12)  # y up = -(y down)
    np.testing.assert_allclose(c2w[:3, 3], world_from_cam[:3, 3], atol=1e-12)


def test_splat_columns_values():
    colors = np.array([[255, 0, 128]], np.uint8)
    cols = dict(splat_columns(np.zeros((1, 3)), colors, np.array([0.5]), sh_degree=0, opacity=0.25))
    assert "f_rest_0" not in cols and all(v.dtype == np.float32 for v in cols.values())
    np.testing.assert_allclose([cols[f"f_dc_{i}"][0] for i in range(3)], (colors[0] / 255 - 0.5) / SH_C0, rtol=1e-6)
    assert cols["opacity"][0] == pytest.approx(np.log(0.25 / 0.75))
    assert cols["scale_0"][0] == pytest.approx(np.log(0.5)) and cols["rot_0"][0] == 1 and cols["rot_3"][0] == 0


def test_frustum_corners_project_to_image_corners():
    K = np.array([[100.0, 0, 31.5], [0, 90.0, 23.5], [0, 0, 1]])
    world_from_cam = np.eye(4)
    world_from_cam[:3, :3] = rotation_y(0.3)
    world_from_cam[:3, 3] = [1, 2, 3]
    vertices, faces = frustum_mesh(K, world_from_cam, 64, 48, depth=0.5)
    np.testing.assert_allclose(vertices[0], [1, 2, 3])
    cam = (vertices[1:] - world_from_cam[:3, 3]) @ world_from_cam[:3, :3]
    uv = cam @ K.T
    np.testing.assert_allclose(uv[:, :2] / uv[:, 2:], [[-0.5, -0.5], [63.5, -0.5], [63.5, 47.5], [-0.5, 47.5]])
    np.testing.assert_allclose(cam[:, 2], 0.5)
    assert faces.shape == (8, 3)


def test_resample_identity_ramp_and_crop():
    ramp = np.add.outer(np.arange(56.0), 100 * np.arange(56.0)).astype(np.float32)  # value = v + 100 u
    same = ImageTransform(56, 56, 56, 56, 0, 0, 56, 56)
    np.testing.assert_array_equal(resample_to_original(ramp, same), ramp)
    # 2x downscale: original pixel u sits at model (u + 0.5) / 2 - 0.5; bilinear is exact on a ramp
    half = ImageTransform(112, 112, 56, 56, 0, 0, 56, 56)
    out = resample_to_original(ramp, half)
    m = np.clip((np.arange(112) + 0.5) / 2 - 0.5, 0, 55)
    np.testing.assert_allclose(out, np.add.outer(m, 100 * m), atol=1e-3)
    # crop: the resized image is 56 x 84, its rows 14..69 kept; original rows outside have no prediction
    crop = ImageTransform(40, 60, 56, 84, 0, -14, 56, 56)
    out = resample_to_original(ramp + 1, crop)
    rows = (np.arange(60) + 0.5) * 84 / 60 - 0.5 - 14
    inside = (rows >= -0.5) & (rows <= 55.5)
    assert np.all(out[~inside] == 0) and np.all(out[inside] > 0)
    # edge-aware: a depth step stays a step (nearest), no in-between "flying" values
    step = np.where(np.arange(56) < 28, 1.0, 5.0)[None, :].repeat(56, 0).astype(np.float32)
    values = np.unique(resample_to_original(step, half, edge_aware=True))
    assert set(values.tolist()) <= {1.0, 5.0}


def test_scene_folder_reads_back_as_a_dataset(tmp_path):
    from vggt3d.data.scene_folder import read_scene_folder

    rec = synthetic()
    written = save(rec, tmp_path / "out", formats=["scene_folder"])
    assert written["scene_folder"] and all(p.is_file() for p in written["scene_folder"])
    scene = read_scene_folder(tmp_path / "out" / "scene")
    assert len(scene) == 2
    np.testing.assert_allclose(scene.cam_from_world, rec.cam_from_world[:, :3], atol=1e-12)
    np.testing.assert_allclose(scene.intrinsics, rec.intrinsics, atol=1e-12)
    view = scene.load_view(1)
    assert view.image.shape == (48, 64, 3) and tuple(view.image[0, 0]) == (90, 20, 30)
    np.testing.assert_array_equal(view.depth, rec.depth_at_original(1))
    np.testing.assert_array_equal(view.mask, rec.depth_at_original(1) > 0)
