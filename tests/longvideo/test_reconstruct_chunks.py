"""``vggt3d reconstruct VIDEO --chunk N --overlap K`` with the shipped model: one reconstruction, every format.

Frames are rendered from a synthetic room (``vggt3d.data.synthetic``) and encoded as a real MPEG-4 video.
"""

from __future__ import annotations

import json

import numpy as np
import pycolmap
import pytest

import vggt3d
from vggt3d.commands.reconstruct import main as command_main
from vggt3d.data.synthetic import SyntheticConfig, SyntheticScenes
from vggt3d.longvideo import ChunkPlanError
from vggt3d.planner import PlanError, estimate_cost
from testutils import encode_video

FRAMES = 20


@pytest.fixture(scope="module")
def scene():
    config = SyntheticConfig(num_scenes=1, num_frames=FRAMES, image_size=(84, 112), scene_types=("room",),
                             camera_paths=("orbit",), seed=3)
    return SyntheticScenes(config)[0]


@pytest.fixture(scope="module")
def video(scene, tmp_path_factory):
    frames = [(im.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for im in scene["images"]]
    return encode_video(tmp_path_factory.mktemp("video") / "walk.mp4", frames, fps=10)


def _run(*args) -> int:
    return command_main([*map(str, args), "--weights", "tiny-synthetic", "--device", "cpu", "--no-progress"])


@pytest.mark.slow  # every exporter (about 10 s alone)
def test_cli_chunked_writes_every_format(video, tmp_path, capsys):
    out = tmp_path / "scene"
    assert _run(video, "--out", out, "--chunk", 8, "--overlap", 4) == 0
    text = capsys.readouterr().out
    assert "strategy: chunked as asked: 8 frames per pass" in text and "chunks: " in text
    cams = json.loads((out / "cameras.json").read_text())
    assert len(cams["frames"] if isinstance(cams, dict) and "frames" in cams else cams) == FRAMES
    model = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    assert model.num_images() == FRAMES
    for name in ("points.ply", "scene.glb", "transforms.json", "splats.ply"):
        assert (out / name).is_file(), name
    assert len(list((out / "depth").iterdir())) >= FRAMES


@pytest.mark.slow
def test_chunked_matches_one_pass_geometry(scene, video):
    """The same frames, exact and chunked: cameras agree up to one similarity (the shipped model's own error)."""
    exact = vggt3d.reconstruct(video, model="tiny-synthetic", device="cpu")
    chunked = vggt3d.reconstruct(video, model="tiny-synthetic", device="cpu", chunk=8, overlap=4)
    assert exact.info["strategy"] == "exact" and chunked.info["strategy"] == "chunked"
    assert chunked.depth.shape == exact.depth.shape and np.isfinite(chunked.cam_from_world).all()
    centres = [-np.einsum("tji,tj->ti", r.cam_from_world[:, :3, :3], r.cam_from_world[:, :3, 3])
               for r in (exact, chunked)]
    fit = vggt3d.longvideo.umeyama(centres[1], centres[0])
    path = np.linalg.norm(np.diff(centres[0], axis=0), axis=1).sum()
    assert np.sqrt(((fit.apply(centres[1]) - centres[0]) ** 2).sum(1).mean()) < 0.1 * path


@pytest.mark.parametrize("args,message", [
    (["--chunk", 8, "--overlap", 8], "longer than its overlap"),
    (["--chunk", 8, "--overlap", 0], "overlap 0 with loop closure"),
    (["--overlap", 4], "--overlap needs --chunk"),
    (["--chunk", 8, "--tracks", "grid"], "cannot run in chunks"),
    (["--chunk", 16, "--max-memory", "BUDGET8"], "above what fits in memory"),  # chunks of 8 fit, 16 do not
    (["--chunk", 8, "--max-memory", "20MB"], "even chunks of 2 frames"),
])
def test_bad_chunk_options_fail_with_one_line_and_no_output(video, tmp_path, capsys, args, message):
    out = tmp_path / "scene"
    if "BUDGET8" in args:  # the planner's estimate for chunks of 8 frames (84x112, 20 frames), in bytes
        import torch

        config = vggt3d.VGGT3D.from_pretrained("tiny-synthetic").config
        cost = estimate_cost(config, FRAMES, 84, 112, torch.float32, "cpu", "chunked", chunk=8, overlap=4,
                             postprocess=True)
        args = [f"{cost.memory_bytes}B" if a == "BUDGET8" else a for a in args]
    assert _run(video, "--out", out, *args) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("error:") and len(err.splitlines()) <= 2
    assert not out.exists()


def test_planner_chunks_automatically_when_one_pass_does_not_fit(video):
    import torch

    config = vggt3d.VGGT3D.from_pretrained("tiny-synthetic").config
    exact = estimate_cost(config, FRAMES, 84, 112, torch.float32, "cpu", postprocess=True).memory_bytes
    chunk8 = estimate_cost(config, FRAMES, 84, 112, torch.float32, "cpu", "chunked", chunk=8, overlap=4,
                           postprocess=True).memory_bytes
    assert chunk8 < exact
    rec = vggt3d.reconstruct(video, model="tiny-synthetic", device="cpu", max_memory=(exact + chunk8) // 2)
    assert rec.info["strategy"] == "chunked", rec.info["strategy_reason"]
    assert "more than" in rec.info["strategy_reason"] and rec.num_frames == FRAMES


def test_api_errors():
    with pytest.raises(ChunkPlanError, match="longer than its overlap"):
        vggt3d.reconstruct("missing.mp4", model="tiny-synthetic", chunk=4, overlap=6)
    from vggt3d.runtime import MemoryEstimateError

    assert issubclass(PlanError, MemoryEstimateError)  # callers catching the old error still do
