"""Causal attention over frames: prefix invariance of every output and every tapped layer, both model families."""

from __future__ import annotations

import pytest
import torch
from testutils import TOL

from vggt3d import ModelConfig, VGGT3D
from vggt3d.aggregator import AggregatorHooks
from vggt3d.testing import load_rule_weights

#: preset -> (H, W) of the test frames (multiples of the patch size)
FAMILIES = {"tiny": (56, 70), "tiny-omega": (64, 96)}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def model_and_frames(request):
    torch.manual_seed(0)
    model = load_rule_weights(VGGT3D(ModelConfig.preset(request.param))).eval()
    frames = torch.rand(2, 4, 3, *FAMILIES[request.param], generator=torch.Generator().manual_seed(1))
    return request.param, model, frames


def per_frame(out: dict, S: int) -> dict:
    """The outputs with a frame dimension (``[B, S, ...]``); lists (iterations) flattened."""
    flat = {}
    for k, v in out.items():
        if isinstance(v, list):
            flat.update({f"{k}[{i}]": t for i, t in enumerate(v)})
        elif isinstance(v, torch.Tensor) and v.dim() >= 2 and v.shape[1] == S:
            flat[k] = v
    return flat


@torch.no_grad()
def test_prefix_invariance_of_outputs_and_layers(model_and_frames):
    """Frames 0..t of a causal pass over 4 frames == a causal pass over frames 0..t, for every t."""
    name, model, frames = model_and_frames
    S, size = frames.shape[1], frames.shape[-2:]
    queries = torch.tensor([[10.0, 12.0], [40.5, 33.0]]) if model.track_head is not None else None
    layers = list(range(model.config.aggregator.depth))
    track = queries is not None

    def causal_pass(x):  # every layer and every output of one causal pass (the two-stage contract)
        tokens = model.forward_intermediates(x, layers, causal=True)
        heads = model.forward_heads({i: tokens[i] for i in model.head_layers(track)}, size, queries, causal=True)
        return tokens, per_frame(heads, x.shape[1])

    tokens, full = causal_pass(frames)
    torch.testing.assert_close(full["depth"], model(frames, query_points=queries, causal=True)["depth"], **TOL)
    assert {"pose_enc", "depth", "depth_conf"} <= set(full)
    if track:
        assert {"track", "vis", "conf"} <= set(full)
    bidirectional = model(frames)
    for t in range(S):
        part_tokens, part = causal_pass(frames[:, : t + 1])
        assert set(part) == set(full)
        for k, v in part.items():
            torch.testing.assert_close(full[k][:, : t + 1], v, **TOL, msg=lambda m: f"{name} {k} t={t}: {m}")
        for i in layers:
            torch.testing.assert_close(tokens[i][:, : t + 1], part_tokens[i], **TOL,
                                       msg=lambda m: f"{name} layer {i} t={t}: {m}")
    # causal is a real change: frames 0..3 see fewer frames than in the bidirectional pass
    assert not torch.allclose(full["pose_enc"][:, :-1], bidirectional["pose_enc"][:, :-1], atol=1e-4)
    # frame attention is unchanged: layer 0's frame-attention half (channels [:C]) is the same for every frame
    C = tokens[0].shape[-1] // 2
    torch.testing.assert_close(tokens[0][..., :C], model.forward_intermediates(frames, [0])[0][..., :C])


@torch.no_grad()
def test_first_frame_is_unchanged_by_causality_within_frame(model_and_frames):
    """A single frame has nothing to hide: causal and bidirectional passes agree."""
    _, model, frames = model_and_frames
    one = frames[:, :1]
    a, b = model(one, causal=True), model(one)
    torch.testing.assert_close(a["pose_enc"], b["pose_enc"], **TOL)
    torch.testing.assert_close(a["depth"], b["depth"], **TOL)


def test_causal_errors_before_work(model_and_frames, monkeypatch):
    _, model, frames = model_and_frames
    with pytest.raises(ValueError, match="attn_bias"):
        model.forward_intermediates(frames, [0], causal=True,
                                    hooks=AggregatorHooks(attn_bias=lambda i, S, T: None))
    monkeypatch.setattr(model.family, "SUPPORTS_CAUSAL", False)
    calls = []
    monkeypatch.setattr(model.aggregator, "embed", lambda *a, **k: calls.append(1))
    with pytest.raises(ValueError, match="does not support causal"):
        model(frames, causal=True)
    with pytest.raises(ValueError, match="does not support causal"):
        model.stream()
    assert not calls
