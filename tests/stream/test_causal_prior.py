"""Causal mode end to end: GeometryPrior (one pass and streamed), online scoring of a causal model's rollout,
`vggt3d features/score/reconstruct --causal`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from testutils import TOL

import vggt3d
from vggt3d import GeometryPrior, ModelConfig, VGGT3D
from vggt3d.cli import main
from vggt3d.prior import OnlineScorer, consistency
from vggt3d.prior.cache import FeatureCache
from vggt3d.stream import StreamConfig
from vggt3d.testing import load_rule_weights


@pytest.fixture(scope="module")
def model():
    return load_rule_weights(VGGT3D(ModelConfig.preset("tiny"))).eval()


@pytest.fixture(scope="module")
def frames():
    return torch.rand(1, 6, 3, 56, 70, generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    rng = np.random.default_rng(4)
    for k in range(5):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(folder / f"f{k}.png")
    return folder


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory):
    return str(model.save_pretrained(tmp_path_factory.mktemp("tiny")))


def test_causal_prior_one_pass_and_streamed(model, frames):
    exact = GeometryPrior(model, layers=[1, -1], resolution=(56, 70), causal=True)
    f = exact(frames, heads=True)
    tokens = model.forward_intermediates(frames, [1, 5], causal=True)
    torch.testing.assert_close(f.camera_tokens[5], tokens[5][:, :, 0], **TOL)
    ref = model(frames, causal=True)
    torch.testing.assert_close(f.heads["pose_enc"], ref["pose_enc"], **TOL)
    # a stream whose cache holds every frame gives the same features, pushed 2 frames at a time
    streamed = GeometryPrior(model, layers=[1, -1], resolution=(56, 70), causal=True,
                             stream=StreamConfig(max_frames=8))
    g = streamed(frames, heads=True)
    torch.testing.assert_close(g.patch_tokens[1], f.patch_tokens[1], **TOL)
    torch.testing.assert_close(g.heads["depth"], f.heads["depth"], **TOL)
    assert [w.owned for w in g.windows] == [(0, 1), (2, 3), (4, 5)]
    # a small window: bounded cache, frame 0 always attended, the first frames still exact
    small = GeometryPrior(model, layers=[-1], resolution=(56, 70), causal=True, window=3)
    h = small(frames, heads=True)
    assert all(w.frames[0] == 0 and len(w.frames) <= 3 for w in h.windows)
    torch.testing.assert_close(h.patch_tokens[5][:, :3], f.patch_tokens[5][:, :3], **TOL)
    assert not torch.allclose(h.patch_tokens[5][:, 5], f.patch_tokens[5][:, 5], atol=1e-4)


def test_causal_prior_errors(model, frames):
    with pytest.raises(ValueError, match="overlap"):
        GeometryPrior(model, causal=True, window=4, overlap=1)
    with pytest.raises(ValueError, match="needs causal"):
        GeometryPrior(model, stream=StreamConfig(max_frames=4))
    streamed = GeometryPrior(model, layers=[-1], resolution=(56, 70), causal=True, window=4)
    assert not streamed.can_track and GeometryPrior(model, causal=True).can_track
    with pytest.raises(ValueError, match="does not track"):
        streamed(frames, query_points=torch.tensor([[10.0, 10.0]]))
    with pytest.raises(ValueError, match="gradients"):
        streamed(frames, grad=True)


def test_online_scores_of_a_causal_rollout_equal_scoring_each_prefix(model, frames):
    """Push generated frames one by one through a stream and the online scorer: each frame's score equals
    ``consistency(frames[:t+1], causal prior)`` at t, i.e. the end-to-end causal guarantee."""
    prior = GeometryPrior(model, layers=[-1], resolution=(56, 70), causal=True)
    stream, scorer = model.stream(), OnlineScorer(pixel_stride=2)
    for t in range(frames.shape[1]):
        out = stream.push(frames[:, t: t + 1])
        cams, K = vggt3d.geometry.pose_encoding_to_cameras(out["pose_enc"][0], (56, 70))
        (s,) = scorer.push(out["depth"][0, :, :, :, 0], cams, K, conf=out["depth_conf"][0])
        if t == 0:
            assert s is None
            continue
        offline = consistency(frames[0, : t + 1], prior, tracks=False, pixel_stride=2)
        assert s == pytest.approx(offline.per_frame["score"][t], rel=1e-4, abs=1e-5)


def test_features_and_score_commands_causal(clip_dir, model_dir, tmp_path, capsys):
    out = tmp_path / "feats"
    common = ["--model", model_dir, "--resolution", "70", "--no-progress"]
    assert main(["features", str(clip_dir), "--out", str(out), "--layers", "5", "--causal", "--window", "3",
                 "--save-dtype", "float32", *common]) == 0
    cache = FeatureCache(out)
    item = cache[0]
    model = VGGT3D.from_pretrained(model_dir)
    prior = GeometryPrior(model, layers=[5], resolution=70, causal=True, window=3)
    from vggt3d.prior.clips import load_clip

    ref = prior(load_clip(clip_dir).frames.unsqueeze(0))
    torch.testing.assert_close(item["patch_tokens"][5], ref.patch_tokens[5][0], **TOL)
    settings = json.loads((out / "cache.json").read_text())
    assert settings["causal"] is True and settings["stream"]["max_frames"] == 3
    assert main(["features", str(clip_dir), "--out", str(tmp_path / "bad"), "--causal", "--window", "3",
                 "--overlap", "1", *common]) == 2
    assert "--overlap" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    report = tmp_path / "score.json"
    assert main(["score", str(clip_dir), "--causal", "--no-tracks", "--json", str(report), "--model", model_dir,
                 "--resolution", "70"]) == 0
    (data,) = json.loads(report.read_text())["clips"]
    assert data["settings"]["causal"] is True and len(data["per_frame"]["score"]) == 5


def test_reconstruct_causal_is_prefix_invariant(clip_dir, tmp_path):
    config = ModelConfig.preset("tiny")
    config.img_size = 56  # small inputs: the loader resizes to the model's size
    model = load_rule_weights(VGGT3D(config)).eval()
    files = sorted(clip_dir.glob("*.png"))
    full = vggt3d.reconstruct([str(f) for f in files], model=model, causal=True, max_points=100)
    part = vggt3d.reconstruct([str(f) for f in files[:3]], model=model, causal=True, max_points=100)
    bidirectional = vggt3d.reconstruct([str(f) for f in files[:3]], model=model, max_points=100)
    assert full.info["causal"] is True
    np.testing.assert_allclose(full.cam_from_world[:3], part.cam_from_world, rtol=1e-4, atol=1e-4)
    assert not np.allclose(part.cam_from_world, bidirectional.cam_from_world, atol=1e-4)
    with pytest.raises(ValueError, match="chunk"):
        vggt3d.reconstruct([str(f) for f in files], model=model, causal=True, chunk=3)


def test_evaluate_causal(model_dir, tmp_path):
    """`vggt3d evaluate --causal` runs the model causally (the numbers differ from the bidirectional run)."""
    common = ["evaluate", "--data", "synthetic", "--data-arg", "num_scenes=1", "--data-arg", "num_frames=4",
              "--data-arg", "image_size=[56,56]", "--weights", model_dir, "--threads", "1"]
    assert main(common + ["--out", str(tmp_path / "bi")]) == 0
    assert main(common + ["--out", str(tmp_path / "causal"), "--causal"]) == 0
    bi = json.loads((tmp_path / "bi" / "results.json").read_text())
    causal = json.loads((tmp_path / "causal" / "results.json").read_text())
    assert causal["settings"]["causal"] is True and bi["settings"]["causal"] is False
    assert causal["mean"]["model"]["abs_rel"] != bi["mean"]["model"]["abs_rel"]
