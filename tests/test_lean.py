"""The lean exact pass: frame-chunked per-frame stages and token-chunked global blocks equal the plain pass."""

from __future__ import annotations

import pytest
import torch

from vggt3d import VGGT3D, ModelConfig
from vggt3d.aggregator import AggregatorHooks, lean_hooks
from vggt3d.layers import BlockSpec, RotaryEmbedding2D, grid_positions
from vggt3d.testing import load_rule_weights

SIZES = {"tiny": (56, 70), "tiny-omega": (48, 64)}


@pytest.fixture(scope="module", params=["tiny", "tiny-omega"])
def model(request):
    return load_rule_weights(VGGT3D(ModelConfig.preset(request.param)).eval(), salt=3)


def _images(model, S=3, B=1):
    H, W = SIZES[model.config.aggregator.kind == "omega" and "tiny-omega" or "tiny"]
    return torch.rand(B, S, 3, H, W, generator=torch.Generator().manual_seed(1))


def _assert_outputs_close(a: dict, b: dict, atol: float = 1e-4) -> None:
    keys = [k for k, v in a.items() if isinstance(v, torch.Tensor)]
    assert keys
    for k in keys:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=atol, msg=lambda m, k=k: f"{k}: {m}")


@pytest.mark.parametrize("frame_chunk,token_chunk", [(1, 7), (2, 50), (None, 64)])
def test_lean_pass_equals_plain_pass(model, frame_chunk, token_chunk):
    images = _images(model, S=3, B=2)
    hooks = AggregatorHooks(frame_chunk=frame_chunk, token_chunk=token_chunk)
    with torch.no_grad():
        plain = model(images)
        lean = model(images, hooks=hooks)
    _assert_outputs_close(plain, lean)


def test_lean_tokens_equal_plain_tokens_every_layer(model):
    images = _images(model, S=4)
    with torch.no_grad():
        plain = model.forward_intermediates(images)
        lean = model.forward_intermediates(images, hooks=lean_hooks(frame_chunk=3, token_chunk=33))
    assert plain.keys() == lean.keys()
    for i in plain:
        torch.testing.assert_close(lean[i], plain[i], rtol=1e-4, atol=1e-4)


def test_lean_hooks_keep_caller_fields():
    def bias(layer, S, T):
        return None

    h = lean_hooks(AggregatorHooks(frame_chunk=5, attn_bias=bias))
    assert h.frame_chunk == 5 and h.token_chunk and h.attn_bias is bias
    assert lean_hooks().token_chunk and lean_hooks(token_chunk=12).token_chunk == 12
    assert lean_hooks(AggregatorHooks(token_chunk=0)).token_chunk == 0  # off stays off


def test_frames_per_chunk_follow_the_token_budget():
    from vggt3d.aggregator import _frames_per_chunk

    assert _frames_per_chunk(None, 24, 145) == 24
    assert _frames_per_chunk(AggregatorHooks(token_chunk=2048), 24, 145) == 14  # 2048 // 145
    assert _frames_per_chunk(AggregatorHooks(token_chunk=100), 24, 145) == 1
    assert _frames_per_chunk(AggregatorHooks(frame_chunk=5, token_chunk=2048), 24, 145) == 5
    assert _frames_per_chunk(AggregatorHooks(token_chunk=0), 24, 145) == 24


def test_inference_runs_lean_by_default(model, monkeypatch):
    """Without gradients forward_intermediates runs the token-chunked blocks; token_chunk=0 or gradients turn it off."""
    from vggt3d.layers import Block

    calls = []
    orig = Block.forward_token_chunked

    def spy(self, *a, **k):
        calls.append(1)
        return orig(self, *a, **k)

    monkeypatch.setattr(Block, "forward_token_chunked", spy)
    images = _images(model, S=3)
    with torch.no_grad():
        model.forward_intermediates(images)
        assert calls
        calls.clear()
        model.forward_intermediates(images, hooks=AggregatorHooks(token_chunk=0))
        assert not calls
    model.forward_intermediates(images)  # training: plain blocks
    assert not calls


@pytest.mark.parametrize("qk_norm,rope", [(True, True), (False, False)])
def test_token_chunked_block_matches_block_with_mask_and_kv_hook(qk_norm, rope):
    torch.manual_seed(0)
    rot = RotaryEmbedding2D() if rope else None
    block = BlockSpec(32, 4, qk_norm=qk_norm, layer_scale_init=0.5).build(rot).eval()
    N, P = 2, 29
    x = torch.randn(N, P, 32)
    pos = grid_positions(N, 4, 7, 1) if rope else None  # [N, 29, 2]
    mask = torch.rand(P, P + 3) > 0.3
    mask[:, 0] = True
    past_k, past_v = torch.randn(N, 4, 3, 8), torch.randn(N, 4, 3, 8)
    seen = []

    def kv(k, v):
        seen.append(k.shape)
        return torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)

    with torch.no_grad():
        ref = block(x, pos, mask, kv)
        for chunk in (1, 5, 28, 29, 100):
            out = block.forward_token_chunked(x, pos, mask, kv, token_chunk=chunk)
            torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert all(s == (N, 4, P, 8) for s in seen)  # the hook sees every token's keys at once


def test_token_chunked_block_gradients_match():
    torch.manual_seed(0)
    block = BlockSpec(16, 2, qk_norm=True).build(RotaryEmbedding2D())
    x = torch.randn(1, 13, 16, requires_grad=True)
    pos = grid_positions(1, 3, 4, 1)
    g_ref = torch.autograd.grad(block(x, pos).square().sum(), x)[0]
    g = torch.autograd.grad(block.forward_token_chunked(x, pos, token_chunk=4).square().sum(), x)[0]
    torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-5)


def test_token_chunking_rejects_unsliceable_positions():
    block = BlockSpec(16, 2).build()
    with pytest.raises(TypeError, match="position tensors"):
        block.forward_token_chunked(torch.randn(1, 9, 16), positions=object(), token_chunk=4)
