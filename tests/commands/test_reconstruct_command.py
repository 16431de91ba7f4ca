"""``vggt3d reconstruct`` / ``infer.py``: end to end, the summary, and every bad input (clear message, no output)."""

from __future__ import annotations

import json
import runpy
import shutil
from pathlib import Path

import av
import numpy as np
import pycolmap
import pytest
import torch
from PIL import Image

from vggt3d import ModelConfig, VGGT3D
from vggt3d.cli import COMMANDS
from vggt3d.commands.reconstruct import main as command_main
from vggt3d.commands.reconstruct import parse_size
from vggt3d.testing import load_rule_weights
from testutils import encode_video

ROOT = Path(__file__).resolve().parents[2]




@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A tiny checkpoint (112-pixel input; camera head damped to sensible poses)."""
    config = ModelConfig.preset("tiny")
    config.img_size = 112
    model = load_rule_weights(VGGT3D(config)).eval()
    fc2 = model.camera_head.pose_branch.fc2
    with torch.no_grad():
        fc2.weight.mul_(0.02)
        fc2.bias.copy_(torch.tensor([0, 0, 0, 0, 0, 0, 1.0, 1.0, 1.2]) / config.camera_head.iterations)
    return model.save_pretrained(tmp_path_factory.mktemp("ckpt") / "tiny")


def noise(width: int, height: int, seed: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)


def write_video(path: Path, n: int = 6, size=(64, 48)) -> Path:
    return encode_video(path, [noise(*size, k) for k in range(n)], fps=6)


def folder_of(path: Path, *images: tuple[str, Image.Image]) -> Path:
    path.mkdir(parents=True)
    for name, image in images:
        image.save(path / name)
    return path


def reconstruct(args: list, weights: Path) -> int:
    """``vggt3d reconstruct ARGS`` (the sub-command's own parser: other sub-commands may be mid-development)."""
    return command_main([*map(str, args), "--weights", str(weights), "--no-progress"])


def assert_no_output(out: Path) -> None:
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.*")), "a temporary directory was left behind"


def test_end_to_end_images(tmp_path, weights, capsys, caplog):
    caplog.set_level("INFO")
    photos = folder_of(tmp_path / "photos", ("b.png", noise(80, 60, 0)), ("a.jpg", noise(60, 80, 1)),
                       ("c.webp", noise(70, 70, 2)))
    (photos / "README.md").write_text("not an image")
    out = tmp_path / "out"
    assert reconstruct([photos, "--out", out, "--tracks", "grid:2", "--max-points", "500", "--scene-folder"],
                       weights) == 0
    captured = capsys.readouterr()
    summary = captured.out
    for needle in ("reconstructed 3 frames", "points: 500 kept, a random subset (--max-points) of the", "time:",
                   "peak memory:", "outputs in", "skipped 1 non-image file (README.md)", "colmap/", "splats.ply",
                   f"with model {weights} "):
        assert needle in summary, needle
    assert (summary + captured.err + caplog.text).count("skipped 1 non-image") == 1, "the skipped line is shown once"
    colmap = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    assert sorted(im.name for im in colmap.images.values()) == ["a.jpg", "b.png", "c.webp"]
    assert colmap.num_points3D() == 500
    for name in ("cameras.json", "points.ply", "scene.glb", "transforms.json", "splats.ply", "tracks.npz",
                 "depth/a.npy", "depth/a.png", "confidence/c.npy", "images/c.webp"):
        assert (out / name).is_file(), name
    assert np.load(out / "depth" / "b.npy").shape == (60, 80)
    from vggt3d.data.scene_folder import read_scene_folder

    scene = read_scene_folder(out / "scene")
    cameras = json.loads((out / "cameras.json").read_text())["frames"]
    np.testing.assert_allclose(scene.intrinsics, [f["K"] for f in cameras], atol=1e-12)
    np.testing.assert_allclose(scene.cam_from_world, [np.array(f["cam_from_world"])[:3] for f in cameras], atol=1e-12)
    np.testing.assert_array_equal(scene.load_depth(1), np.load(out / "depth" / "b.npy"))


def test_end_to_end_video_with_infer_py(tmp_path, weights, capsys, monkeypatch):
    video = write_video(tmp_path / "clip.mp4", n=6)
    out = tmp_path / "out"
    argv = ["infer.py", str(video), "--out", str(out), "--weights", str(weights), "--no-progress", "--stride", "2",
            "--formats", "cameras,colmap,images", "--shared-camera", "--points-from", "pointmap"]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(ROOT / "infer.py"), run_name="__main__")
    assert done.value.code == 0
    assert "reconstructed 3 frames from video" in capsys.readouterr().out
    frames = json.loads((out / "cameras.json").read_text())["frames"]
    assert [f["video_frame"] for f in frames] == [0, 2, 4]
    colmap = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    assert colmap.num_images() == 3 and colmap.num_cameras() == 1
    assert sorted(p.name for p in out.iterdir()) == ["cameras.json", "colmap", "images"]


def test_skip_bad_and_overwrite(tmp_path, weights, capsys):
    photos = folder_of(tmp_path / "photos", ("good.png", noise(50, 40, 0)), ("also_good.png", noise(40, 50, 1)))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("previous run")
    assert reconstruct([photos, "--out", out, "--skip-bad", "--formats", "colmap"], weights) == 1
    assert "--overwrite" in capsys.readouterr().err and (out / "old.txt").exists()
    assert reconstruct([photos, "--out", out, "--skip-bad", "--formats", "colmap", "--overwrite"], weights) == 0
    assert "left out 1 unreadable image(s): broken.jpg" in capsys.readouterr().out
    assert not (out / "old.txt").exists()
    assert pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0")).num_images() == 2


def _truncated_jpeg(path: Path) -> None:
    noise(64, 64, 3).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _bad_input(kind: str, root: Path, weights: Path) -> tuple[list, Path]:
    """Build one bad input; returns the extra CLI arguments and the weights to use."""
    good = ("ok.png", noise(48, 36, 0))
    if kind == "empty folder":
        (root / "in").mkdir()
        return [root / "in"], weights
    if kind == "no images":
        (root / "in").mkdir()
        (root / "in" / "notes.txt").write_text("x")
        return [root / "in"], weights
    if kind == "corrupt image":
        folder_of(root / "in", good)
        (root / "in" / "bad.jpg").write_bytes(b"\xff\xd8garbage")
        return [root / "in"], weights
    if kind == "truncated image":
        folder_of(root / "in", good)
        _truncated_jpeg(root / "in" / "trunc.jpg")
        return [root / "in"], weights
    if kind == "missing input":
        return [root / "nothing_here"], weights
    if kind == "unreadable video":
        (root / "junk.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 but then nothing")
        return [root / "junk.mp4"], weights
    if kind == "zero-frame video":
        with av.open(str(root / "zero.mp4"), "w") as container:
            stream = container.add_stream("mpeg4", rate=6)
            stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        return [root / "zero.mp4"], weights
    folder = folder_of(root / "in", good, ("tall.png", noise(30, 60, 1)))
    if kind == "missing checkpoint":
        return [folder], root / "no_such_checkpoint"
    if kind == "mismatched checkpoint":
        shutil.copytree(weights, root / "ckpt")
        config = json.loads((root / "ckpt" / "config.json").read_text())
        config["encoder"]["depth"] = 3  # a valid architecture, but not the one the weights were trained for
        (root / "ckpt" / "config.json").write_text(json.dumps(config))
        return [folder], root / "ckpt"
    if kind == "too many frames for memory":
        return [folder, "--max-memory", "1MB"], weights
    if kind == "shared camera, mixed sizes":
        return [folder, "--shared-camera"], weights
    if kind == "bad tracks file":
        (root / "q.txt").write_text("1 2 3\n")
        return [folder, "--tracks", root / "q.txt"], weights
    raise AssertionError(kind)


BAD_INPUTS = {
    "empty folder": ["is empty"],
    "no images": ["no images in folder", "notes.txt"],
    "corrupt image": ["bad.jpg", "--skip-bad"],
    "truncated image": ["trunc.jpg", "--skip-bad"],
    "missing input": ["not found", "nothing_here"],
    "unreadable video": ["junk.mp4"],
    "zero-frame video": ["zero.mp4"],
    "missing checkpoint": ["no_such_checkpoint"],
    "mismatched checkpoint": ["does not match the model architecture"],
    "too many frames for memory": ["--max-frames", "chunks"],
    "shared camera, mixed sizes": ["one size"],
    "bad tracks file": ["query points"],
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_gives_a_clear_message_and_no_output(kind, tmp_path, weights, capsys):
    args, use_weights = _bad_input(kind, tmp_path, weights)
    out = tmp_path / "outputs" / "scene"
    assert reconstruct([*args, "--out", out], use_weights) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    for needle in BAD_INPUTS[kind]:
        assert needle in err, (needle, err)
    assert_no_output(out)
    assert not (tmp_path / "outputs").exists()


def test_offline_without_weights_says_how_to_get_them(tmp_path, capsys, monkeypatch):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "empty_cache"), raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True, raising=False)
    folder = folder_of(tmp_path / "in", ("a.png", noise(40, 30, 0)))
    out = tmp_path / "out"
    assert command_main([str(folder), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "facebook/VGGT-1B" in err and "hf download" in err and "--weights" in err
    assert_no_output(out)


def test_failed_export_leaves_no_output(tmp_path, weights, monkeypatch):
    import vggt3d.export.glb as glb

    def broken(rec, root):
        (root / "scene.glb").write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(glb, "write", broken)
    folder = folder_of(tmp_path / "in", ("a.png", noise(40, 30, 0)))
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk full"):
        reconstruct([folder, "--out", out], weights)
    assert_no_output(out)


def test_registered_in_the_cli():
    from vggt3d.commands.reconstruct import DEFAULT_WEIGHTS
    from vggt3d.hub import DEFAULT_REPO

    assert COMMANDS["reconstruct"][0] == "vggt3d.commands.reconstruct" and DEFAULT_WEIGHTS == DEFAULT_REPO


def test_parse_size():
    assert parse_size("16GB") == 16 << 30 and parse_size("512MB") == 512 << 20 and parse_size("2") == 2 << 30
    assert parse_size("100B") == 100 and parse_size("1.5 GiB") == int(1.5 * (1 << 30))


def test_plain_rule_weights_still_produce_every_output(tmp_path, caplog):
    """Untrained weights predict a zero field of view: clamped with a warning, and every output is still valid."""
    weights = load_rule_weights(VGGT3D(ModelConfig.preset("tiny"))).eval().save_pretrained(tmp_path / "rule")
    photos = folder_of(tmp_path / "in", ("x.png", noise(40, 30, 0)), ("y.jpg", noise(30, 40, 1)))
    out = tmp_path / "out"
    assert reconstruct([photos, "--out", out, "--max-points", "2000"], weights) == 0
    assert "fields of view outside" in caplog.text
    colmap = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    assert colmap.num_images() == 2 and colmap.num_points3D() > 0
    for image in colmap.images.values():
        for p in image.points2D:
            assert np.abs(image.project_point(colmap.points3D[p.point3D_id].xyz) - p.xy).max() < 0.5
    assert json.loads((out / "cameras.json").read_text())["frames"][1]["width"] == 30


def test_single_image_file(tmp_path, weights, capsys):
    noise(50, 70, 4).save(tmp_path / "only.png")
    out = tmp_path / "out"
    assert reconstruct([tmp_path / "only.png", "--out", out, "--formats", "cameras,depth,colmap"], weights) == 0
    assert "reconstructed 1 frame from 1 image file" in capsys.readouterr().out
    frame = json.loads((out / "cameras.json").read_text())["frames"][0]
    assert (frame["width"], frame["height"]) == (50, 70) and frame["fx"] > 0
    np.testing.assert_allclose(frame["cam_from_world"], np.eye(4), atol=0.2)
    assert np.load(out / "depth" / "only.npy").shape == (70, 50)
    assert pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0")).num_images() == 1
