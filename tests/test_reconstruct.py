"""``vggt3d.reconstruct``: end to end on images and a video, every output read back, consistency at original resolution.

The model is the tiny preset at a 112-pixel input with rule weights whose camera
head is tamed so that poses and fields of view are sensible (the raw rule gives
a zero field of view).
"""

from __future__ import annotations

import json

import numpy as np
import pycolmap
import pytest
import torch
import trimesh
from PIL import Image

import vggt3d
from vggt3d import ModelConfig, VGGT3D
from vggt3d.io.inputs import InputError, discover_inputs, natural_sort_key
from vggt3d.io.video import VideoReadError
from vggt3d.reconstruct import MemoryEstimateError, Reconstruction, ReconstructionError, estimate_memory
from vggt3d.testing import load_rule_weights
from testutils import encode_video

IMG_SIZE = 112


def tiny_model() -> VGGT3D:
    """Tiny VGGT with rule weights; the camera head's last layer is damped and biased to identity-ish poses."""
    config = ModelConfig.preset("tiny")
    config.img_size = IMG_SIZE
    model = load_rule_weights(VGGT3D(config)).eval()
    fc2 = model.camera_head.pose_branch.fc2
    with torch.no_grad():
        fc2.weight.mul_(0.02)  # frames still differ a little
        fc2.bias.copy_(torch.tensor([0, 0, 0, 0, 0, 0, 1.0, 1.0, 1.2]) / config.camera_head.iterations)
    return model




@pytest.fixture(scope="module")
def model():
    return tiny_model()


def noise_image(width: int, height: int, seed: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)


def write_video(path, n=8, fps=4, size=(96, 64)):
    return encode_video(path, [noise_image(*size, seed=k) for k in range(n)], fps)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Three images of different sizes and aspect ratios, named to test natural order."""
    folder = tmp_path_factory.mktemp("photos")
    for name, (w, h), seed in (("img10.png", (120, 90), 0), ("img2.jpg", (90, 120), 1), ("img1.png", (100, 100), 2)):
        noise_image(w, h, seed).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def rec(model, photos):
    return vggt3d.reconstruct(photos, model=model, tracks="grid:3")


@pytest.fixture(scope="module")
def saved(rec, tmp_path_factory):
    out = tmp_path_factory.mktemp("saved") / "scene"
    written = rec.save(out)
    return out, written


# ------------------------------------------------------------------ inputs
def test_discover_inputs_folder_glob_list(photos, tmp_path):
    found = discover_inputs(photos)
    assert [p.name for p in found.paths] == ["img1.png", "img2.jpg", "img10.png"]  # natural order
    assert found.kind == "images" and "skipped 1 non-image file (notes.txt)" == found.skipped_message()
    assert [p.name for p in discover_inputs(str(photos / "img1*")).paths] == ["img1.png", "img10.png"]
    listed = [photos / "img10.png", photos / "img1.png"]
    assert discover_inputs(listed).paths == listed  # a list keeps its order
    (tmp_path / "list.txt").write_text(f"# frames\n{photos / 'img2.jpg'}\n\n{photos / 'img1.png'}\n")
    assert [p.name for p in discover_inputs(tmp_path / "list.txt").paths] == ["img2.jpg", "img1.png"]
    assert sorted(["b10", "b9", "a"], key=natural_sort_key) == ["a", "b9", "b10"]
    write_video(tmp_path / "v.mp4", n=2)
    assert discover_inputs(tmp_path / "v.mp4").kind == "video"
    with pytest.raises(InputError, match="video"):
        discover_inputs([tmp_path / "v.mp4", photos / "img1.png"])
    with pytest.raises(InputError, match="matches nothing"):
        discover_inputs(str(tmp_path / "*.jpeg"))
    with pytest.raises(InputError, match="not found"):
        discover_inputs(tmp_path / "missing.png")


# -------------------------------------------------------------- the result
def test_result_shapes_and_original_resolution(rec):
    assert isinstance(rec, Reconstruction) and rec.num_frames == 3
    assert rec.image_names == ["img1.png", "img2.jpg", "img10.png"]
    assert rec.image_sizes.tolist() == [[100, 100], [90, 120], [120, 90]]
    S, H, W = rec.depth.shape
    assert (S, H, W) == (3, IMG_SIZE, IMG_SIZE) and rec.model_colors.shape == (3, H, W, 3)
    assert rec.intrinsics.shape == (3, 3, 3) and rec.cam_from_world.shape == (3, 4, 4)
    np.testing.assert_allclose(rec.cam_from_world[0], np.eye(4), atol=0.2)  # world ~ first camera
    np.testing.assert_allclose(rec.world_from_cam @ rec.cam_from_world, np.broadcast_to(np.eye(4), (3, 4, 4)),
                               atol=1e-9)
    n = len(rec.points)
    assert n > 100 and rec.colors.shape == (n, 3) and rec.colors.dtype == np.uint8
    assert rec.point_uv.shape == (n, 2) and rec.point_frame.shape == (n,) and rec.point_spacing.shape == (n,)
    assert np.all(rec.point_spacing > 0) and np.all(np.isfinite(rec.point_spacing))
    norms = np.linalg.norm(rec.point_normals, axis=1)
    assert np.all((np.abs(norms - 1) < 1e-4) | (norms == 0))
    for i, (w, h) in enumerate(rec.image_sizes):
        assert rec.depth_at_original(i).shape == (h, w) and rec.confidence_at_original(i).dtype == np.float32
    assert rec.tracks.uv.shape == (3, 9, 2) and rec.tracks.visibility.shape == (3, 9)
    # the query grid of frame 0 is where frame 0's track starts (original pixels)
    np.testing.assert_allclose(rec.tracks.uv[0], rec.tracks.query_points, atol=2.0)


def assert_intrinsics_follow_the_mapping(rec):
    """Independent of ImageTransform's own methods: f' = f / s and c' = (c + 0.5 - offset) / s - 0.5 per axis."""
    for K, K_model, t in zip(rec.intrinsics, rec.model_intrinsics, rec.transforms):
        sx, sy = t.resized_width / t.original_width, t.resized_height / t.original_height
        expected = np.array([[K_model[0, 0] / sx, 0, (K_model[0, 2] + 0.5 - t.offset_x) / sx - 0.5],
                             [0, K_model[1, 1] / sy, (K_model[1, 2] + 0.5 - t.offset_y) / sy - 0.5], [0, 0, 1]])
        np.testing.assert_allclose(K, expected, rtol=1e-12, atol=1e-9)


def test_intrinsics_match_the_crop_pad_mapping(rec):
    assert_intrinsics_follow_the_mapping(rec)
    # the portrait image is cropped (offset < 0) and the landscape one padded to the batch's height
    assert rec.transforms[1].offset_y < 0 and rec.transforms[2].offset_y > 0


def test_points_project_to_their_observations_and_pixels(rec):
    """Depth points come back to the model pixel they were unprojected from, mapped to original pixels."""
    S, H, W = rec.depth.shape
    for i in range(S):
        mine = rec.point_frame == i
        P = rec.points[mine].astype(np.float64)
        cam = P @ rec.cam_from_world[i, :3, :3].T + rec.cam_from_world[i, :3, 3]
        uv = cam @ rec.intrinsics[i].T
        uv = uv[:, :2] / uv[:, 2:]
        np.testing.assert_allclose(uv, rec.point_uv[mine], atol=1e-6)
        # observations sit on the original-resolution images of model pixel centres
        model_uv = rec.transforms[i].original_to_model_points(rec.point_uv[mine])
        np.testing.assert_allclose(model_uv, np.round(model_uv), atol=1e-3)
        assert np.all(rec.point_uv[mine] >= -0.5) and np.all(rec.point_uv[mine] <= rec.image_sizes[i] - 0.5)


# ---------------------------------------------------------------- outputs
def test_all_outputs_are_written(saved):
    out, written = saved
    expected = {"images", "cameras", "ply", "glb", "colmap", "depth", "nerfstudio", "splats", "tracks", "preview"}
    assert set(written) == expected
    for paths in written.values():
        assert paths and all(p.exists() for p in paths)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["cameras.json", "colmap", "confidence", "depth", "images", "points.ply", "preview.png", "scene.glb",
         "splats.ply", "tracks.npz", "transforms.json"])
    assert not list(out.parent.glob(".scene.tmp-*"))


def test_colmap_agrees_with_cameras_json_and_observations(saved, rec):
    out, _ = saved
    model = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    cams = json.loads((out / "cameras.json").read_text())
    assert "OpenCV" in cams["conventions"]["camera_axes"] and len(cams["frames"]) == 3
    assert model.num_images() == 3 and model.num_points3D() == len(rec.points)
    worst = 0.0
    for image in model.images.values():
        frame = cams["frames"][image.image_id - 1]
        assert frame["image"] == f"images/{image.name}" and (out / frame["image"]).is_file()
        camera = model.cameras[image.camera_id]
        assert camera.model_name == "PINHOLE" and (camera.width, camera.height) == (frame["width"], frame["height"])
        fx, fy, cx, cy = camera.params
        K = np.array(frame["K"])
        np.testing.assert_allclose([fx, fy, cx, cy], [K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5], rtol=1e-12)
        np.testing.assert_allclose(image.cam_from_world().matrix(), np.array(frame["cam_from_world"])[:3], atol=1e-9)
        np.testing.assert_allclose(np.linalg.inv(frame["cam_from_world"]), frame["world_from_cam"], atol=1e-9)
        with Image.open(out / frame["image"]) as im:
            assert im.size == (camera.width, camera.height)
        observed = [p for p in image.points2D if p.has_point3D()]
        assert observed
        for p in observed:
            uv = image.project_point(model.points3D[p.point3D_id].xyz)
            worst = max(worst, float(np.abs(uv - p.xy).max()))
    assert worst < 0.5, worst
    colmap_images = sorted(p.name for p in (out / "colmap" / "images").iterdir())  # real files (hard links or copies)
    assert colmap_images == sorted(p.name for p in (out / "images").iterdir())
    assert all((out / "colmap" / "images" / n).read_bytes() == (out / "images" / n).read_bytes() for n in colmap_images)


def test_point_clouds_read_back(saved, rec):
    out, _ = saved
    cloud = trimesh.load(out / "points.ply")
    np.testing.assert_allclose(cloud.vertices, rec.points, rtol=1e-6)
    np.testing.assert_array_equal(cloud.colors[:, :3], rec.colors)
    scene = trimesh.load(out / "scene.glb")
    assert {"points", "camera_0000", "camera_0002"} <= set(scene.geometry)
    glb_points = scene.geometry["points"].vertices
    np.testing.assert_allclose(glb_points, rec.points * np.array([1, -1, -1]), rtol=1e-5, atol=1e-6)
    # the frustum apex is the camera centre (in glTF axes)
    apex = scene.geometry["camera_0001"].vertices[0]
    np.testing.assert_allclose(apex, rec.world_from_cam[1, :3, 3] * np.array([1, -1, -1]), atol=1e-5)
    splats = trimesh.load(out / "splats.ply")
    names = splats.metadata["_ply_raw"]["vertex"]["data"].dtype.names
    layout = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", *[f"f_rest_{i}" for i in range(45)],
              "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    assert list(names) == layout


def test_point_clouds_read_back_with_open3d(saved, rec):
    o3d = pytest.importorskip("open3d")
    out, _ = saved
    cloud = o3d.io.read_point_cloud(str(out / "points.ply"))
    np.testing.assert_allclose(np.asarray(cloud.points), rec.points, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(cloud.colors), rec.colors / 255.0, atol=1e-6)


def test_depth_maps_and_nerfstudio(saved, rec):
    out, _ = saved
    index = json.loads((out / "depth" / "index.json").read_text())
    assert [f["image"] for f in index["frames"]] == [f"images/{n}" for n in rec.image_names]
    for i, entry in enumerate(index["frames"]):
        depth = np.load(out / entry["npy"])
        assert depth.dtype == np.float32 and depth.shape == (entry["height"], entry["width"])
        np.testing.assert_array_equal(depth, rec.depth_at_original(i))
        with Image.open(out / entry["png"]) as png:
            preview = np.asarray(png).astype(np.float64)
            assert float(png.text["vggt3d:scale"]) == pytest.approx(entry["scale"])
        np.testing.assert_allclose(preview * entry["scale"], depth, atol=entry["scale"])
    # the cropped portrait image has rows without prediction; the others have none
    assert (np.load(out / "depth" / "img2.npy") == 0).any() and (np.load(out / "depth" / "img1.npy") > 0).all()
    assert (out / "confidence" / "img10.npy").is_file() and (out / "confidence" / "index.json").is_file()

    ns = json.loads((out / "transforms.json").read_text())
    assert ns["camera_model"] == "OPENCV" and len(ns["frames"]) == 3 and ns["ply_file_path"] == "points.ply"
    for frame, c2w, K in zip(ns["frames"], rec.world_from_cam, rec.intrinsics):
        np.testing.assert_allclose(np.array(frame["transform_matrix"]), c2w @ np.diag([1, -1, -1, 1]), atol=1e-12)
        assert frame["cx"] == pytest.approx(K[0, 2] + 0.5) and frame["fl_y"] == pytest.approx(K[1, 1])
    tracks = np.load(out / "tracks.npz")
    np.testing.assert_allclose(tracks["tracks"], rec.tracks.uv, rtol=1e-6)


def test_video_end_to_end(model, tmp_path):
    video = write_video(tmp_path / "walk.mp4", n=8, fps=4, size=(96, 64))
    rec = vggt3d.reconstruct(video, model=model, fps=2, max_frames=3)
    assert rec.frame_indices == [0, 2, 4] and rec.image_names == ["frame_000000.png", "frame_000002.png",
                                                                 "frame_000004.png"]
    np.testing.assert_allclose(rec.timestamps, [0.0, 0.5, 1.0], atol=1e-6)
    out = tmp_path / "out"
    rec.save(out, formats="cameras,colmap,images")
    frames = json.loads((out / "cameras.json").read_text())["frames"]
    assert [f["video_frame"] for f in frames] == [0, 2, 4] and frames[1]["source"].endswith("walk.mp4#frame=2")
    model_ = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    assert model_.num_images() == 3 and {c.width for c in model_.cameras.values()} == {96}
    assert Image.open(out / "images" / "frame_000002.png").size == (96, 64)


def test_pad_mode_pointmap_and_shared_camera(model, tmp_path):
    folder = tmp_path / "same"
    folder.mkdir()
    for k in range(2):
        noise_image(80, 60, seed=10 + k).save(folder / f"f{k}.png")
    rec = vggt3d.reconstruct(folder, model=model, mode="pad", points_from="pointmap", shared_camera=True,
                             conf_threshold=0)
    np.testing.assert_allclose(rec.intrinsics[0], rec.intrinsics[1])
    t = rec.transforms[0]
    assert t.offset_y > 0 and t.offset_x == 0  # letterboxed
    assert_intrinsics_follow_the_mapping(rec)
    assert rec.world_points is not None and len(rec.points) > 0
    out = tmp_path / "out"
    rec.save(out, formats=["colmap"])
    colmap = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    assert colmap.num_cameras() == 1 and colmap.num_images() == 2
    for image in colmap.images.values():
        for p in image.points2D:
            assert np.abs(image.project_point(colmap.points3D[p.point3D_id].xyz) - p.xy).max() < 0.5


def test_single_image_and_in_memory_arrays(model):
    rec = vggt3d.reconstruct([np.asarray(noise_image(64, 48, seed=3))], model=model, conf_threshold=1.0,
                             conf_absolute=True, max_points=50)
    assert rec.num_frames == 1 and rec.image_names == ["image_0000.png"] and len(rec.points) == 50
    assert rec.depth_at_original(0).shape == (48, 64) and rec.intrinsics[0, 0, 0] > 0
    assert rec.info["conf_cut"] == 1.0


def test_image_modes_exif_and_sizes(model, tmp_path):
    folder = tmp_path / "modes"
    folder.mkdir()
    noise_image(70, 50, 1, "L").save(folder / "gray.png")
    Image.fromarray((np.arange(60 * 40, dtype=np.uint16).reshape(40, 60) * 20)).save(folder / "deep16.png")
    noise_image(60, 80, 2, "CMYK").save(folder / "cmyk.jpg")
    noise_image(50, 50, 3, "RGBA").save(folder / "rgba.png")
    noise_image(64, 32, 4, "P").save(folder / "palette.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    noise_image(80, 40, 5).save(folder / "rotated.jpg", exif=exif)
    assert Image.open(folder / "deep16.png").mode.startswith("I")
    rec = vggt3d.reconstruct(folder, model=model)
    sizes = dict(zip(rec.image_names, rec.image_sizes.tolist()))
    assert sizes == {"cmyk.jpg": [60, 80], "deep16.png": [60, 40], "gray.png": [70, 50], "palette.png": [64, 32],
                     "rgba.png": [50, 50], "rotated.jpg": [40, 80]}
    out = tmp_path / "out"
    rec.save(out, formats="images,colmap")
    assert Image.open(out / "images" / "rotated.jpg").size == (40, 80)  # written upright
    colmap = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    by_name = {im.name: colmap.cameras[im.camera_id] for im in colmap.images.values()}
    assert {n: [c.width, c.height] for n, c in by_name.items()} == sizes


def test_bad_inputs_raise_clear_errors(model, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        vggt3d.reconstruct(tmp_path / "empty", model=model)
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(VideoReadError, match="junk.mp4"):
        vggt3d.reconstruct(tmp_path / "junk.mp4", model=model)
    with pytest.raises(ReconstructionError, match="one size"):
        vggt3d.reconstruct([noise_image(40, 30, 0), noise_image(30, 40, 1)], model=model, shared_camera=True)
    with pytest.raises(MemoryEstimateError, match="--max-frames"):
        vggt3d.reconstruct([noise_image(40, 30, 0)], model=model, max_memory=1 << 20)
    with pytest.raises(ValueError, match="points_from"):
        vggt3d.reconstruct([noise_image(40, 30, 0)], model=model, points_from="mesh")


def test_memory_estimate_scales_with_frames():
    config = ModelConfig()  # VGGT-1B
    one = estimate_memory(config, 1, 518, 518, torch.bfloat16)
    hundred = estimate_memory(config, 100, 518, 518, torch.bfloat16)
    assert 0.08e9 < (hundred - one) / 99 < 0.5e9  # per 518x518 frame (vggt3d.planner: about 0.097e9 on a GPU)
    assert estimate_memory(config, 10, 518, 518, torch.float32, num_queries=256) > estimate_memory(
        config, 10, 518, 518, torch.float32)


def test_module_and_function_share_the_name():
    import vggt3d.reconstruct as bound  # the module or the function, depending on what was imported first

    assert callable(bound) and callable(vggt3d.reconstruct) and vggt3d.Reconstruction is Reconstruction


def test_depth_unprojection_matches_the_geometry_module(rec):
    from vggt3d.geometry import depth_to_world_points
    from vggt3d.pointcloud import depth_points as _depth_points

    ours, valid = _depth_points(rec.depth, rec.cam_from_world, rec.model_intrinsics)
    theirs, ok = depth_to_world_points(torch.from_numpy(rec.depth).double(), torch.from_numpy(rec.cam_from_world),
                                       torch.from_numpy(rec.model_intrinsics))
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(valid, ok.numpy())


def test_video_frames_object(model, tmp_path):
    from vggt3d.io.video import read_video

    frames = read_video(write_video(tmp_path / "v.mp4", n=4, fps=4))
    rec = vggt3d.reconstruct(frames, model=model, stride=2)
    assert rec.image_names == ["frame_000000.png", "frame_000002.png"] and rec.frame_indices == [0, 2]
    np.testing.assert_allclose(rec.timestamps, [0.0, 0.5], atol=1e-6)
