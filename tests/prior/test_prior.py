"""GeometryPrior on the tiny model: equality with the model's own layers, windows, heads, gradients, contract."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from testutils import TOL, assert_close
from prior_helpers import tiny_model
from vggt3d import GeometryFeatures, GeometryPrior
from vggt3d.prior import model_input_size, plan_windows

H, W = 56, 70  # a model-grid size: no resize with resolution=70 (4 x 5 patches)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def frames():
    return torch.rand(1, 6, 3, H, W, generator=torch.Generator().manual_seed(0))


def split_tokens(tokens: torch.Tensor, start: int, grid):
    """``[B, S, P, C']`` -> camera ``[B, S, C']``, registers ``[B, S, R, C']``, patches ``[B, S, h, w, C']``."""
    B, S, _, C = tokens.shape
    return tokens[:, :, 0], tokens[:, :, 1:start], tokens[:, :, start:].reshape(B, S, *grid, C)


def assert_features_match(feats: GeometryFeatures, tokens: dict, start: int, frames=slice(None), name=""):
    for i in feats.layers:
        cam, reg, patch = split_tokens(tokens[i], start, feats.grid)
        assert_close(feats.camera_tokens[i][:, frames], cam, **TOL, name=f"{name} camera layer {i}")
        assert_close(feats.register_tokens[i][:, frames], reg, **TOL, name=f"{name} registers layer {i}")
        assert_close(feats.patch_tokens[i][:, frames], patch, **TOL, name=f"{name} patches layer {i}")


# ------------------------------------------------------------------ equality with the model
def test_features_equal_forward_intermediates(model, frames):
    prior = GeometryPrior(model, layers=[1, 3, -1], resolution=W)
    feats = prior(frames)
    assert feats.layers == [1, 3, 5] and feats.grid == (4, 5) and feats.image_size == (H, W)
    with torch.no_grad():
        ref = model.forward_intermediates(frames, [1, 3, 5])
    assert_features_match(feats, ref, model.aggregator.patch_start_idx)
    assert feats.frame_window.tolist() == [0] * 6
    assert feats.flat(3).shape == (1, 6, 20, 128)


def test_resized_features_equal_forward_intermediates_of_the_resized_frames(model):
    frames = torch.rand(2, 3, 3, 40, 50, generator=torch.Generator().manual_seed(1))
    prior = GeometryPrior(model, layers=[2], resolution=W)
    feats = prior(frames)
    assert feats.input_size == (40, 50) and feats.image_size == (H, W)
    resized = F.interpolate(frames.flatten(0, 1), size=(H, W), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        ref = model.forward_intermediates(resized.reshape(2, 3, 3, H, W), [2])
    assert_features_match(feats, ref, model.aggregator.patch_start_idx)


def test_batch_of_clips_equals_each_clip(model):
    frames = torch.rand(2, 3, 3, H, W, generator=torch.Generator().manual_seed(2))
    prior = GeometryPrior(model, layers=[4], resolution=W)
    both = prior(frames).patch_tokens[4]
    for b in range(2):
        assert_close(both[b], prior(frames[b]).patch_tokens[4][0], **TOL, name=f"clip {b}")


@pytest.mark.parametrize("hw,resolution,expected", [
    ((480, 640), 518, (392, 518)), ((640, 480), 518, (518, 392)), ((100, 100), 518, (518, 518)),
    ((30, 400), 140, (14, 140)), ((480, 640), (294, 518), (294, 518)),
])
def test_model_input_size(hw, resolution, expected):
    assert model_input_size(*hw, resolution) == expected


def test_to_grid_follows_the_documented_mapping(model):
    """Caller frames 3x the model grid: patch (i, j)'s centre is caller pixel (3j + 1, 3i + 1)."""
    prior = GeometryPrior(model, layers=[5], resolution=(H, W))
    feats = prior(torch.rand(1, 2, 3, 12, 15))
    assert feats.grid == (4, 5) and feats.input_size == (12, 15)
    up = feats.to_grid(5)
    assert up.shape == (1, 2, 12, 15, 128)
    assert_close(up[:, :, 1::3, 1::3], feats.patch_tokens[5], **TOL, name="patch centres")
    centres = feats.patch_centers()
    assert centres.shape == (4, 5, 2) and centres[2, 3].tolist() == [10.0, 7.0]


# ------------------------------------------------------------------ windows
def test_windowed_equals_single_pass_when_the_window_holds_the_clip(model, frames):
    single = GeometryPrior(model, layers=[2, 5], resolution=W)(frames)
    windowed = GeometryPrior(model, layers=[2, 5], resolution=W, window=6, overlap=2)(frames)
    for i in (2, 5):
        assert torch.equal(single.patch_tokens[i], windowed.patch_tokens[i])
        assert torch.equal(single.camera_tokens[i], windowed.camera_tokens[i])


def test_windowed_frames_equal_a_single_pass_over_their_window(model):
    """Each frame's features are those of one single pass: over the frames of the window that owns it."""
    frames = torch.rand(1, 9, 3, H, W, generator=torch.Generator().manual_seed(3))
    prior = GeometryPrior(model, layers=[1, 5], resolution=W, window=4, overlap=1)
    feats = prior(frames)
    windows = plan_windows(9, 4, 1)
    assert feats.windows == windows and len(windows) == 4
    assert feats.frame_window.tolist() == [k for k, w in enumerate(windows) for _ in w.owned]
    start = model.aggregator.patch_start_idx
    for k, win in enumerate(windows):
        with torch.no_grad():
            ref = model.forward_intermediates(frames[:, list(win.frames)], [1, 5])
        positions = [win.position(t) for t in win.owned]
        assert_features_match(feats, {i: t[:, positions] for i, t in ref.items()}, start, list(win.owned),
                              name=f"window {k}")


def test_progress_counts_every_frame_once(model):
    done = []
    GeometryPrior(model, layers=[0], resolution=W, window=3, overlap=1)(torch.rand(1, 7, 3, H, W),
                                                                         progress=done.append)
    assert sum(done) == 7 and len(done) == len(plan_windows(7, 3, 1))


# ------------------------------------------------------------------ heads
def test_heads_equal_the_model_forward(model, frames):
    feats = GeometryPrior(model, layers=[0], resolution=W)(frames, heads=True)
    with torch.no_grad():
        out = model(frames)
    heads = feats.heads
    assert_close(heads["pose_enc"], out["pose_enc"], **TOL, name="pose_enc")
    assert_close(heads["depth"], out["depth"][..., 0], **TOL, name="depth")
    assert_close(heads["depth_conf"], out["depth_conf"], **TOL, name="depth_conf")
    assert heads["cam_from_world"].shape == (1, 6, 3, 4) and heads["intrinsics"].shape == (1, 6, 3, 3)


def test_windowed_heads_are_rescaled_to_window_zero_through_the_anchor(model):
    frames = torch.rand(1, 7, 3, H, W, generator=torch.Generator().manual_seed(4))
    q = torch.tensor([[10.0, 20.0], [30.0, 40.0]])
    feats = GeometryPrior(model, layers=[0], resolution=W, window=4, overlap=1)(frames, query_points=q)
    heads = feats.heads
    assert heads["track"].shape == (1, 7, 2, 2) and heads["vis"].shape == (1, 7, 2)
    first, *_ = windows = feats.windows
    with torch.no_grad():
        out0 = model(frames[:, list(first.frames)])
        for win in windows[1:]:
            out = model(frames[:, list(win.frames)])
            scale = (out0["depth"][0, 0] / out["depth"][0, 0]).flatten().median()
            pos = [win.position(t) for t in win.owned]
            assert_close(heads["depth"][:, list(win.owned)], out["depth"][:, pos, ..., 0] * scale, **TOL, name="depth")
            assert_close(heads["pose_enc"][:, list(win.owned), :3], out["pose_enc"][:, pos, :3] * scale, **TOL,
                         name="translation")
            assert_close(heads["pose_enc"][:, list(win.owned), 3:], out["pose_enc"][:, pos, 3:], **TOL, name="rest")


# ------------------------------------------------------------------ gradients and state
def test_no_grad_by_default_and_gradients_to_frames_on_request(model, frames):
    prior = GeometryPrior(model, layers=[3], resolution=W)
    x = frames[:, :3].clone().requires_grad_(True)
    assert not prior(x).patch_tokens[3].requires_grad
    prior(x, grad=True).patch_tokens[3].square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in prior.parameters())


def test_checkpointed_gradients_equal_plain_gradients(model, frames):
    prior = GeometryPrior(model, layers=[3], resolution=W, differentiable=True)
    grads = []
    for checkpointing in (False, True):
        prior.set_grad_checkpointing(checkpointing)
        x = frames[:, :3].clone().requires_grad_(True)
        prior(x).patch_tokens[3].square().mean().backward()
        grads.append(x.grad)
    prior.set_grad_checkpointing(False)
    assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-6, name="frame gradients")


def test_frozen_model_stays_in_eval_mode(model):
    prior = GeometryPrior(model, layers=[0])
    parent = torch.nn.Sequential(prior).train()
    assert parent.training and prior.training and not prior.model.training


def test_bf16_aggregator_runs_and_is_close(model, frames):
    bf16 = tiny_model()
    bf16.aggregator.to(torch.bfloat16)
    feats = GeometryPrior(bf16, layers=[5], resolution=W)(frames[:, :3])
    ref = GeometryPrior(model, layers=[5], resolution=W)(frames[:, :3])
    assert feats.patch_tokens[5].dtype == torch.bfloat16
    a, b = feats.patch_tokens[5].float(), ref.patch_tokens[5]
    assert torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0) > 0.99


def test_fingerprint_follows_the_weights(model):
    a = GeometryPrior(model, layers=[0]).fingerprint()
    assert a == GeometryPrior(model, layers=[1]).fingerprint() and a.startswith("blake2b:")
    other = tiny_model()
    with torch.no_grad():
        other.aggregator.camera_token.add_(1.0)
    assert GeometryPrior(other, layers=[0]).fingerprint() != a


# ------------------------------------------------------------------ errors
def test_bad_inputs(model):
    prior = GeometryPrior(model, layers=[0], resolution=W)
    with pytest.raises(ValueError, match=r"\[B, T, 3, H, W\]"):
        prior(torch.rand(2, 4, H, W))
    with pytest.raises(TypeError, match="floating point"):
        prior(torch.zeros(1, 2, 3, H, W, dtype=torch.uint8))
    with pytest.raises(ValueError, match="layers"):
        GeometryPrior(model, layers=[6])
    with pytest.raises(ValueError, match="multiple of the patch size"):
        GeometryPrior(model, resolution=100)
    with pytest.raises(ValueError, match="overlap"):
        GeometryPrior(model, window=4, overlap=3)
    with pytest.raises(TypeError, match="VGGT3D"):
        GeometryPrior(torch.nn.Linear(2, 2))


def test_features_to_casts_floats_and_keeps_indices(model, frames):
    feats = GeometryPrior(model, layers=[2], resolution=W)(frames[:, :2], heads=True)
    half = feats.to(torch.float16)
    assert half.patch_tokens[2].dtype == torch.float16 and half.heads["depth"].dtype == torch.float16
    assert half.frame_window.dtype == torch.int64 and half.grid == feats.grid
    assert feats.patch_tokens[2].dtype == torch.float32, "the original is unchanged"
