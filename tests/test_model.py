"""VGGT3D on the tiny architecture: golden parity stage by stage, contract, errors, fast paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from testutils import TOL, TOL_TRACK, assert_close
from vggt3d import ModelConfig, VGGT3D
from vggt3d.testing import load_rule_weights

CASES = ["tiny_b1_s3_70x98", "tiny_b2_s2_56x42"]
DENSE_KEYS = ["pose_enc", "depth", "depth_conf", "world_points", "world_points_conf"]
TRACK_KEYS = ["track", "vis", "conf"]


@pytest.fixture(scope="module")
def tiny():
    model = VGGT3D(ModelConfig.preset("tiny")).eval()
    return load_rule_weights(model, salt=0)


@pytest.fixture(scope="module", params=CASES)
def case(request, golden_dir):
    data = np.load(golden_dir / f"{request.param}.npz")
    return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def outputs(tiny, case):
    with torch.no_grad():
        return tiny(torch.from_numpy(case["images"]), torch.from_numpy(case["query_points"]))


# --------------------------------------------------------------------- parity
def test_encoder_tokens(tiny, case):
    with torch.no_grad():
        enc = tiny.aggregator.encode(torch.from_numpy(case["images"]))
    assert_close(enc, case["encoder_patch_tokens"], **TOL, name="encoder_patch_tokens")


def test_every_aggregator_layer(tiny, case):
    with torch.no_grad():
        layers = tiny.forward_intermediates(torch.from_numpy(case["images"]))
    ref = case["aggregator_tokens"]
    assert sorted(layers) == list(range(ref.shape[0]))
    for i in range(ref.shape[0]):
        assert_close(layers[i], ref[i], **TOL, name=f"aggregator layer {i}")


@pytest.mark.parametrize("key", DENSE_KEYS)
def test_dense_and_camera_outputs(outputs, case, key):
    assert_close(outputs[key], case[key], **TOL, name=key)


def test_camera_iterations(outputs, case):
    assert len(outputs["pose_enc_list"]) == case["pose_enc_list"].shape[0]
    assert_close(torch.stack(outputs["pose_enc_list"]), case["pose_enc_list"], **TOL, name="pose_enc_list")


@pytest.mark.parametrize("key", TRACK_KEYS)
def test_track_outputs(outputs, case, key):
    assert_close(outputs[key], case[key], **TOL_TRACK, name=key)


def test_track_iterations(outputs, case):
    assert_close(torch.stack(outputs["track_list"]), case["track_list"], **TOL_TRACK, name="track_list")


# ------------------------------------------------------------------- contract
def test_output_keys_and_shapes(tiny):
    images = torch.rand(2, 3, 3, 56, 70)
    with torch.no_grad():
        out = tiny(images)
    assert set(out) == set(DENSE_KEYS) | {"pose_enc_list"}
    assert out["pose_enc"].shape == (2, 3, 9)
    assert out["depth"].shape == (2, 3, 56, 70, 1) and out["depth_conf"].shape == (2, 3, 56, 70)
    assert out["world_points"].shape == (2, 3, 56, 70, 3) and out["world_points_conf"].shape == (2, 3, 56, 70)
    assert (out["depth"] > 0).all() and (out["depth_conf"] > 1).all()
    with torch.no_grad():
        out = tiny(images, torch.rand(2, 4, 2) * 50)
    assert out["track"].shape == (2, 3, 4, 2) and out["vis"].shape == (2, 3, 4) and out["conf"].shape == (2, 3, 4)
    assert ((out["vis"] >= 0) & (out["vis"] <= 1)).all()


def test_unbatched_input_equals_batch_of_one(tiny):
    images = torch.rand(2, 3, 28, 42)
    q = torch.tensor([[10.0, 12.0], [20.0, 5.0]])
    with torch.no_grad():
        a = tiny(images, q)
        b = tiny(images[None], q[None])
    for k in DENSE_KEYS + TRACK_KEYS:
        torch.testing.assert_close(a[k], b[k])


def test_single_frame(tiny):
    with torch.no_grad():
        out = tiny(torch.rand(1, 3, 42, 56), torch.tensor([[3.0, 4.0]]))
    assert out["pose_enc"].shape == (1, 1, 9) and out["track"].shape == (1, 1, 1, 2)
    torch.testing.assert_close(out["track"][0, 0], torch.tensor([[3.0, 4.0]]))


def test_forward_intermediates_match_forward_layers(tiny):
    images = torch.rand(1, 2, 3, 28, 28)
    with torch.no_grad():
        every = tiny.forward_intermediates(images)
        some = tiny.forward_intermediates(images, layers=[1, -1])
    assert sorted(some) == [1, 5]
    torch.testing.assert_close(some[1], every[1], rtol=0, atol=0)
    torch.testing.assert_close(some[5], every[5], rtol=0, atol=0)


def test_forward_keeps_only_head_layers(tiny):
    assert tiny.head_layers() == [1, 2, 4, 5]
    cfg = ModelConfig.preset("tiny")
    cfg.heads = ["camera"]
    assert VGGT3D(cfg).head_layers() == [5]


def test_dense_chunking_does_not_change_results(tiny):
    images = torch.rand(1, 3, 3, 28, 42)
    with torch.no_grad():
        ref = tiny(images)
        old = tiny.depth_head.frames_chunk_size
        try:
            tiny.depth_head.frames_chunk_size = 0  # all frames at once
            chunked = tiny(images)
        finally:
            tiny.depth_head.frames_chunk_size = old
    torch.testing.assert_close(chunked["depth"], ref["depth"], rtol=1e-5, atol=1e-6)


def test_permuting_later_views_permutes_outputs(tiny):
    images = torch.rand(1, 4, 3, 28, 28)
    perm = [0, 3, 1, 2]
    with torch.no_grad():
        a = tiny(images)
        b = tiny(images[:, perm])
    for k in DENSE_KEYS:
        torch.testing.assert_close(b[k], a[k][:, perm], rtol=1e-4, atol=1e-5)


def test_grad_checkpointing_equals_plain(tiny):
    images = torch.rand(1, 2, 3, 28, 28)
    tiny.zero_grad()
    loss_plain = tiny(images)["depth"].mean()
    loss_plain.backward()
    grads = {n: p.grad.clone() for n, p in tiny.named_parameters() if p.grad is not None}
    tiny.zero_grad()
    tiny.set_grad_checkpointing(True)
    try:
        loss_ckpt = tiny(images)["depth"].mean()
        loss_ckpt.backward()
    finally:
        tiny.set_grad_checkpointing(False)
    torch.testing.assert_close(loss_ckpt, loss_plain)
    for n, g in grads.items():
        torch.testing.assert_close(dict(tiny.named_parameters())[n].grad, g, rtol=1e-4, atol=1e-6)
    tiny.zero_grad(set_to_none=True)


def test_head_subset():
    cfg = ModelConfig.preset("tiny")
    cfg.heads = ["depth"]
    model = VGGT3D(cfg).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 2, 3, 28, 28))
    assert set(out) == {"depth", "depth_conf"}
    assert not any(k.startswith(("camera_head", "point_head", "track_head")) for k in model.state_dict())


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize("shape,match", [
    ((1, 2, 4, 28, 28), "3 \\(RGB\\) channels"),
    ((2, 1, 28, 28), "3 \\(RGB\\) channels"),
    ((1, 2, 3, 30, 28), "multiples of the patch size 14"),
    ((1, 0, 3, 28, 28), "empty"),
    ((3, 28, 28), "\\[S, 3, H, W\\]"),
])
def test_bad_images(tiny, shape, match):
    with pytest.raises(ValueError, match=match):
        tiny(torch.rand(shape))


def test_integer_images_rejected(tiny):
    with pytest.raises(TypeError, match="floating point"):
        tiny(torch.zeros(1, 1, 3, 28, 28, dtype=torch.uint8))


@pytest.mark.parametrize("q,match", [
    (torch.zeros(1, 5, 3), "\\[B, N, 2\\]"),
    (torch.zeros(5), "\\[B, N, 2\\]"),
    (torch.zeros(3, 5, 2), "batch 3"),
    (torch.zeros(1, 0, 2), "empty"),
])
def test_bad_query_points(tiny, q, match):
    with pytest.raises(ValueError, match=match):
        tiny(torch.rand(1, 2, 3, 28, 28), q)


def test_tracks_on_too_small_images_give_clear_error(tiny):
    # tiny: 3 pyramid levels need half-resolution maps of >= 4 px, i.e. images >= 8 px: always true at 14 px.
    # A 5-level tracker needs 32 px images.
    cfg = ModelConfig.preset("tiny")
    cfg.track_head.corr_levels = 5
    model = VGGT3D(cfg).eval()
    with pytest.raises(ValueError, match="at least 32x32 pixels, got 28x56"):
        model(torch.rand(1, 2, 3, 28, 56), torch.zeros(1, 1, 2))


def test_queries_without_track_head():
    cfg = ModelConfig.preset("tiny")
    cfg.heads = ["camera"]
    with pytest.raises(ValueError, match="no track head"):
        VGGT3D(cfg)(torch.rand(1, 1, 3, 28, 28), torch.zeros(1, 1, 2))
