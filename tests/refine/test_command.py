"""``vggt3d reconstruct`` with the camera options: end to end on real renders with the shipped model, and every
bad camera file giving one line that names it, a non-zero exit and no output."""

import json

import numpy as np
import pytest
from PIL import Image
from refine_helpers import FRAMES

from vggt3d.commands.reconstruct import main as command_main


@pytest.fixture(scope="module")
def frames(scene, tmp_path_factory):
    folder = tmp_path_factory.mktemp("renders")
    for i, image in enumerate(scene["images"]):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    return folder


def run(args) -> int:
    return command_main([*map(str, args), "--weights", "tiny-synthetic", "--no-progress"])


def test_known_poses_and_features_end_to_end(frames, scene, tmp_path, capsys):
    """Given poses: the outputs are in their frame and units; the COLMAP model has multi-view feature tracks."""
    given = scene["cam_from_world"].copy()
    given[:, :3, 3] *= 4.0  # metric units: 4x the renderer's
    poses = tmp_path / "poses.json"
    poses.write_text(json.dumps({"frames": [{"image": f"{i:03d}.png", "cam_from_world": p.tolist()}
                                            for i, p in enumerate(given)]}))
    intrinsics = tmp_path / "k.json"
    intrinsics.write_text(json.dumps({"K": scene["K"][0].tolist()}))
    out = tmp_path / "out"
    assert run([frames, "--out", out, "--poses", poses, "--tracks-from", "features"]) == 0
    summary = capsys.readouterr().out
    assert "poses: aligned to the given ones" in summary and "tracks (features)" in summary
    cams = json.loads((out / "cameras.json").read_text())["frames"]
    centres = np.array([np.array(f["world_from_cam"])[:3, 3] for f in cams])
    truth = np.linalg.inv(given)[:, :3, 3]
    spread = np.linalg.norm(truth - truth.mean(axis=0), axis=1).mean()
    close = np.linalg.norm(centres - truth, axis=1) < 0.5 * spread  # the shipped model is small and rough
    assert close.sum() >= FRAMES // 2
    # with the true intrinsics and the poses held exactly, the feature tracks triangulate into the COLMAP model
    exact = tmp_path / "exact"
    assert run([frames, "--out", exact, "--poses", poses, "--fix-poses", "--intrinsics", intrinsics,
                "--tracks-from", "features"]) == 0
    assert "given poses used exactly" in capsys.readouterr().out
    import pycolmap

    model = pycolmap.Reconstruction(str(exact / "colmap" / "sparse" / "0"))
    multi = [p for p in model.points3D.values() if p.track.length() >= 2]
    assert len(multi) > 50
    for image in model.images.values():
        np.testing.assert_allclose(image.cam_from_world().matrix(), given[image.image_id - 1, :3], atol=1e-6)
    assert len(list((exact / "colmap" / "images").iterdir())) == FRAMES


def test_refine_summary_reports_before_after_or_failure(frames, tmp_path, capsys):
    out = tmp_path / "out"
    assert run([frames, "--out", out, "--refine", "ba", "--shared-camera"]) == 0
    summary = capsys.readouterr().out
    assert "bundle adjustment" in summary
    assert ("px over" in summary) or ("FAILED" in summary and "unrefined" in summary)
    assert (out / "cameras.json").is_file() and (out / "colmap" / "sparse" / "0" / "points3D.bin").is_file()


@pytest.mark.parametrize("content, option, message", [
    ({"000.png": [[100, 0, 50], [0, 100, 50], [0, 0, 1]]}, "--intrinsics", "no intrinsics for frame"),
    ({"K": [[-5, 0, 50], [0, 100, 50], [0, 0, 1]]}, "--intrinsics", "non-positive focal"),
    ({"frames": [{"image": "nope.png", "cam_from_world": np.eye(4).tolist()}]}, "--poses", "unknown image"),
    ({"frames": [{"image": f"{i:03d}.png", "cam_from_world": (np.eye(4) * [1, 2, 1, 1]).tolist()}
                 for i in range(FRAMES)]}, "--poses", "not orthonormal"),
])
def test_bad_camera_files(frames, tmp_path, capsys, content, option, message):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(content))
    out = tmp_path / "out"
    assert run([frames, "--out", out, option, bad]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and str(bad) in err and len(err.splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".out*"))


@pytest.mark.parametrize("args, message", [
    (["--scale", "two metres"], "--scale"),
    (["--fix-poses"], "--fix-poses needs --poses"),
    (["--distortion"], "--distortion needs --refine ba"),
    (["--intrinsics", "/nonexistent/k.json"], "does not exist"),
])
def test_bad_camera_options(frames, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) if args[0] in ("--scale", "--intrinsics") else _no_raise():
        code = run([frames, "--out", out, *args])
        assert code == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
