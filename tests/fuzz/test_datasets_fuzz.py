"""Dataset files are untrusted: paths stay inside the dataset, corrupt files are one clear error."""

from __future__ import annotations

import copy
import json
import random

import numpy as np
import pycolmap
import pytest

from fuzzutils import one_line_error, write_image
from vggt3d.cli import main
from vggt3d.data import ColmapError, ColmapScene, Co3dSequence
from vggt3d.data.base import UnsafePathError, path_inside
from vggt3d.data.scene_folder import SceneFolderError, read_scene_folder, write_scene_folder
from vggt3d.io.images import ImageLoadError

K = [[30.0, 0, 19.5], [0, 30.0, 14.5], [0, 0, 1]]
POSE = [[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]


def scene_folder(root, frames=2):
    images = [np.random.default_rng(i).integers(0, 255, (30, 40, 3), dtype=np.uint8) for i in range(frames)]
    depths = [np.full((30, 40), 2.0, np.float32) for _ in range(frames)]
    poses = np.stack([np.array(POSE)] * frames)
    return write_scene_folder(root, images, poses, np.stack([np.array(K)] * frames), depths=depths)


@pytest.fixture
def secret(tmp_path):
    return write_image(tmp_path / "outside" / "secret.png")


@pytest.mark.parametrize("field,value", [
    ("image", "../../outside/secret.png"), ("image", "/etc/passwd"), ("image", "images/../../outside/secret.png"),
    ("image", "~/secret.png"), ("depth", "../outside/x.npy"), ("mask", "/etc/hostname"), ("image", 5),
])
def test_scene_folder_paths_outside_are_refused(tmp_path, secret, field, value):
    root = scene_folder(tmp_path / "data" / "scene")
    document = json.loads((root / "cameras.json").read_text())
    document["frames"][1][field] = value
    (root / "cameras.json").write_text(json.dumps(document))
    with pytest.raises(UnsafePathError, match=f"frames\\[1\\].{field}"):
        read_scene_folder(root)


def test_scene_folder_link_leading_out_is_refused(tmp_path, secret):
    root = scene_folder(tmp_path / "scene")
    (root / "images" / "000001.png").unlink()
    (root / "images" / "000001.png").symlink_to(secret)
    with pytest.raises(UnsafePathError, match="leads outside"):
        read_scene_folder(root)


def test_evaluate_on_a_hostile_scene_folder_fails_with_one_line(tmp_path, secret, capsys):
    root = scene_folder(tmp_path / "scene")
    document = json.loads((root / "cameras.json").read_text())
    document["frames"][0]["image"] = str(secret)
    (root / "cameras.json").write_text(json.dumps(document))
    code = main(["evaluate", "--data", "scene_folder", "--data-arg", f"roots={root}", "--weights", "tiny-synthetic",
                 "--out", str(tmp_path / "report")])
    assert code != 0
    assert "outside" in one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "report").exists()


def _mutations(rng: random.Random):
    values = [None, 0, -1, 1e308, float("nan"), "", "x", [], {}, [1, 2], [[1, 2, 3]] * 3, "../x", True, "é" * 3,
              [[0.0] * 4] * 3, {"a": 1}]
    yield lambda d: d.__setitem__("frames", rng.choice(values))
    yield lambda d: d.__setitem__("version", rng.choice(values))
    yield lambda d: d.__setitem__("depth_scale", rng.choice(values))
    for key in ("image", "width", "height", "K", "cam_from_world", "depth", "mask"):
        yield lambda d, key=key: d["frames"][rng.randrange(len(d["frames"]))].__setitem__(key, rng.choice(values))
        yield lambda d, key=key: d["frames"][0].pop(key, None)
    yield lambda d: d["frames"].__setitem__(0, rng.choice(values))


def test_generated_cameras_json_mutations_raise_only_dataset_errors(tmp_path):
    root = scene_folder(tmp_path / "scene")
    original = json.loads((root / "cameras.json").read_text())
    rng = random.Random(14)
    allowed = (SceneFolderError, UnsafePathError, FileNotFoundError, ImageLoadError)
    for round_ in range(6):
        for mutate in _mutations(rng):
            document = copy.deepcopy(original)
            mutate(document)
            (root / "cameras.json").write_text(json.dumps(document))
            try:
                scene = read_scene_folder(root)
                for i in range(len(scene)):
                    scene.load_view(i)
            except allowed:
                pass
            except Exception as exc:  # noqa: BLE001
                pytest.fail(f"{type(exc).__name__}: {exc} for {json.dumps(document)[:300]}")
    for junk in (b"", b"\xff\xfe", b"{", b"[]", b"null", b'{"frames": 3}'):
        (root / "cameras.json").write_bytes(junk)
        with pytest.raises(SceneFolderError):
            read_scene_folder(root)


def colmap_project(root, names=("a.png", "b.png")):
    (root / "sparse" / "0").mkdir(parents=True)
    rec = pycolmap.Reconstruction()
    for i, name in enumerate(names):
        if not name.startswith(("..", "/")):
            write_image(root / "images" / name, seed=i)
        rec.add_camera_with_trivial_rig(pycolmap.Camera(model="PINHOLE", width=40, height=30,
                                                        params=[30, 30, 20, 15], camera_id=i + 1))
        image = pycolmap.Image(name=name, keypoints=np.zeros((0, 2)), camera_id=i + 1, image_id=i + 1)
        rec.add_image_with_trivial_frame(image, pycolmap.Rigid3d())
    (root / "images").mkdir(exist_ok=True)
    rec.write(str(root / "sparse" / "0"))
    return root


@pytest.mark.parametrize("name", ["../../outside/secret.png", "/etc/passwd", "sub/../../x.png"])
def test_colmap_image_names_outside_are_refused(tmp_path, secret, name):
    root = colmap_project(tmp_path / "project", ("a.png", name))
    with pytest.raises(UnsafePathError, match="leads outside"):
        ColmapScene(root)


@pytest.mark.parametrize("stem", ["images", "cameras", "points3D", "frames", "rigs"])
def test_truncated_or_empty_colmap_files_are_one_colmap_error(tmp_path, stem):
    root = colmap_project(tmp_path / "project")
    path = root / "sparse" / "0" / f"{stem}.bin"
    data = path.read_bytes()
    for n in range(len(data)):  # every truncation (pycolmap alone may hang, allocate without bound or abort)
        path.write_bytes(data[:n])
        with pytest.raises(ColmapError) as info:
            ColmapScene(root)
        assert str(root) in str(info.value) and "\n" not in str(info.value)
    path.write_bytes(data)
    assert len(ColmapScene(root)) == 2


def test_evaluate_on_a_truncated_colmap_model_is_one_line(tmp_path, capsys):
    root = colmap_project(tmp_path / "project")
    (root / "sparse" / "0" / "images.bin").write_bytes(b"")
    code = main(["evaluate", "--data", "colmap", "--data-arg", f"roots={root}", "--weights", "tiny-synthetic",
                 "--out", str(tmp_path / "report")])
    assert code != 0
    assert "images.bin" in one_line_error(capsys.readouterr().err)


def co3d_frame(n, image, depth=None, mask=None):
    return {"sequence_name": "seq", "frame_number": n, "image": {"path": image, "size": [30, 40]},
            "depth": {"path": depth, "scale_adjustment": 1.0, "mask_path": mask},
            "viewpoint": {"R": np.eye(3).tolist(), "T": [0, 0, 1], "focal_length": [1.5, 1.5],
                          "principal_point": [0, 0], "intrinsics_format": "ndc_isotropic"}}


@pytest.mark.parametrize("key", ["image", "depth", "mask"])
def test_co3d_annotation_paths_outside_are_refused_at_construction(tmp_path, secret, key):
    write_image(tmp_path / "co3d" / "cat" / "seq" / "images" / "f1.jpg")
    paths = {"image": "cat/seq/images/f1.jpg", "depth": None, "mask": None}
    paths[key] = "../outside/secret.png"
    frames = [co3d_frame(1, paths["image"], paths["depth"], paths["mask"])]
    with pytest.raises(UnsafePathError, match="leads outside"):
        Co3dSequence(tmp_path / "co3d", frames, "cat")


def test_co3d_depth_cut_applies_only_when_the_percentile_is_positive(tmp_path):
    from PIL import Image

    root = tmp_path / "co3d"
    write_image(root / "cat" / "seq" / "images" / "f1.jpg")
    depth = np.zeros((30, 40), np.float32)
    depth[0, :10] = np.linspace(1.0, 2.0, 10)  # < 2 % of the pixels valid: the 98th percentile is 0
    (root / "cat" / "seq" / "depths").mkdir(parents=True)
    Image.fromarray(depth.astype(np.float16).view(np.uint16)).save(root / "cat" / "seq" / "depths" / "f1.png")
    sequence = Co3dSequence(root, [co3d_frame(1, "cat/seq/images/f1.jpg", "cat/seq/depths/f1.png")], "cat")
    view = sequence.load_view(0)
    np.testing.assert_allclose(view.depth[0, :10], depth[0, :10].astype(np.float16), rtol=1e-3)
    assert (view.depth > 0).sum() == 10

    depth[:] = np.linspace(1.0, 3.0, depth.size).reshape(depth.shape).astype(np.float32)  # all valid: cut applies
    Image.fromarray(depth.astype(np.float16).view(np.uint16)).save(root / "cat" / "seq" / "depths" / "f1.png")
    kept = (sequence.load_view(0).depth > 0).mean()
    assert 0.97 <= kept <= 0.99


def test_path_inside_accepts_ordinary_relative_paths(tmp_path):
    (tmp_path / "images").mkdir()
    assert path_inside(tmp_path, "images/a.png", "x") == tmp_path / "images" / "a.png"
    assert path_inside(tmp_path, "images/../images/a.png", "x") == tmp_path / "images/../images/a.png"
    for bad in ("", None, "/abs", "../up", "a/../../up", "~user/x", "nul\x00byte"):
        with pytest.raises(UnsafePathError):
            path_inside(tmp_path, bad, "x")


def test_loading_samples_leaves_torch_thread_count_alone():
    import torch

    from vggt3d.data import SampleRequest, SyntheticConfig, SyntheticScenes

    ds = SyntheticScenes(SyntheticConfig(num_scenes=2, num_frames=2, image_size=(28, 28), seed=0))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ds[0]
        ds[SampleRequest(index=1, num_frames=2, image_size=(28, 28), seed=3)]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("entry,needle", [
    ("{name: nosuchdataset}", "unknown dataset 'nosuchdataset'"),
    pytest.param("{name: synthetic, kwargs: {bogus_arg: 1}}", "bogus_arg", marks=pytest.mark.slow),  # builds the model
    ("{name: scene_folder, kwargs: {roots: /nonexistent/scenes}}", "/nonexistent/scenes"),
])
def test_bad_dataset_in_a_training_config_is_one_line(tmp_path, capsys, entry, needle):
    config = tmp_path / "train.yaml"
    config.write_text(f"data:\n  train: [{entry}]\nrun:\n  output_dir: {tmp_path}/runs\n")
    assert main(["train", "--config", str(config), "model.preset=tiny", "accel.num_threads=1"]) == 2
    assert needle in one_line_error(capsys.readouterr().err)
