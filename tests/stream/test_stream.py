"""The KV-cache stream: equal to the causal full pass (both families), budgets and eviction, bad input."""

from __future__ import annotations

import pytest
import torch
from testutils import TOL

from vggt3d import ModelConfig, VGGT3D
from vggt3d.stream import GeometryStream, StreamBudgetError, StreamConfig
from vggt3d.testing import load_rule_weights

FAMILIES = {"tiny": (56, 70), "tiny-omega": (64, 96)}
KEYS = ("pose_enc", "depth", "depth_conf")


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def model_and_frames(request):
    torch.manual_seed(0)
    model = load_rule_weights(VGGT3D(ModelConfig.preset(request.param))).eval()
    frames = torch.rand(2, 7, 3, *FAMILIES[request.param], generator=torch.Generator().manual_seed(2))
    return request.param, model, frames


@torch.no_grad()
@pytest.mark.parametrize("chunks", [[1, 1, 1, 1, 1, 1, 1], [3, 1, 3], [7]])
def test_stream_equals_causal_full_pass(model_and_frames, chunks):
    name, model, frames = model_and_frames
    layers = [0, model.config.aggregator.depth - 1]
    full = model(frames, causal=True)
    tokens = model.forward_intermediates(frames, layers, causal=True)
    stream = model.stream(layers=layers)
    outs, start = [], 0
    for n in chunks:
        out = stream.push(frames[:, start: start + n])
        assert out["frame_indices"] == list(range(start, start + n))
        assert out["depth"].shape[1] == n
        outs.append(out)
        start += n
    for k in KEYS + (("world_points",) if "world_points" in full else ()):
        torch.testing.assert_close(torch.cat([o[k] for o in outs], 1), full[k], **TOL, msg=lambda m: f"{k}: {m}")
    for i in layers:
        torch.testing.assert_close(torch.cat([o["tokens"][i] for o in outs], 1), tokens[i], **TOL)
    assert stream.cached_frames == list(range(7)) and stream.num_frames == 7
    assert stream.cache_bytes > 0


@torch.no_grad()
def test_single_clip_without_batch_dim_and_reset(model_and_frames):
    _, model, frames = model_and_frames
    stream = GeometryStream(model)
    a = stream.push(frames[0, :2])  # [s, 3, H, W]
    stream.reset()
    b = stream.push(frames[0, :2])
    torch.testing.assert_close(a["pose_enc"], b["pose_enc"])
    assert stream.cached_frames == [0, 1]


@torch.no_grad()
def test_eviction_keeps_budget_and_deviates_from_unevicted(model_and_frames):
    name, model, frames = model_and_frames
    cfg = StreamConfig(max_frames=4, recent=2, keyframe_interval=3)
    bounded, full = model.stream(cfg), model.stream()
    dev = []
    for t in range(7):
        a, b = full.push(frames[:, t: t + 1]), bounded.push(frames[:, t: t + 1])
        assert len(bounded.cached_frames) <= 4 and 0 in bounded.cached_frames
        dev.append(float((a["pose_enc"] - b["pose_enc"]).abs().max()))
    # frames 0..3 fit in the budget: identical; later frames lost part of their past: they differ
    assert max(dev[:4]) < 1e-4 and max(dev[4:]) > 1e-4, dev
    assert bounded.cached_frames == [0, 3, 5, 6]  # frame 0, keyframe 3, the 2 newest frames
    assert bounded.cache_bytes < full.cache_bytes


def test_bad_input_fails_before_work(model_and_frames, monkeypatch):
    name, model, frames = model_and_frames
    H, W = frames.shape[-2:]
    p = model.config.patch_size
    stream = model.stream(StreamConfig(max_frames=3, evict=False))
    stream.push(frames[:, :2])
    with pytest.raises(ValueError, match="size of its first frame"):
        stream.push(torch.rand(2, 1, 3, H + p, W))
    with pytest.raises(ValueError, match="batch"):
        stream.push(frames[:1, 2:3])
    stream.push(frames[:, 2:3])
    calls = []
    monkeypatch.setattr(model.aggregator, "embed", lambda *a, **k: calls.append(1))
    with pytest.raises(StreamBudgetError, match="eviction disabled"):
        stream.push(frames[:, 3:4])
    assert not calls and stream.num_frames == 3
    with pytest.raises(ValueError, match="layers"):
        model.stream(layers=[99])
    with pytest.raises(ValueError, match="max_frames"):
        StreamConfig(max_frames=1)


@torch.no_grad()
def test_failed_push_leaves_the_cache_as_it_was(model_and_frames, monkeypatch):
    _, model, frames = model_and_frames
    stream = model.stream()
    stream.push(frames[:, :2])
    before = stream.cache_bytes

    def boom(*args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    with monkeypatch.context() as m:
        m.setattr(model, "forward_heads", boom)  # fails after every layer appended its keys and values
        with pytest.raises(RuntimeError, match="simulated"):
            stream.push(frames[:, 2:3])
    assert stream.cache_bytes == before and stream.num_frames == 2 and stream.cached_frames == [0, 1]
    out = stream.push(frames[:, 2:4])
    full = model(frames[:, :4], causal=True)
    torch.testing.assert_close(out["depth"], full["depth"][:, 2:4], **TOL)
