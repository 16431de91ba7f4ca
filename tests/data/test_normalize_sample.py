"""Normalisation: frame 0's camera, mean distance 1 over valid points, scale returned, batches."""

from __future__ import annotations

import pytest
import torch

from vggt3d.data import check_sample, collate_samples, normalize_sample
from vggt3d.geometry import depth_to_world_points


@pytest.fixture(scope="module")
def sample(small_synthetic):
    return small_synthetic[2]


def test_statistics(sample):
    out = normalize_sample(sample)
    check_sample(out, "normalised")
    mask = out["point_masks"]
    distances = out["world_points"][mask].double().norm(dim=-1)
    n = mask.sum().item()
    assert abs(distances.sum().item() / (n + 1e-3) - 1.0) < 1e-5  # mean distance to camera 0's centre
    eye = torch.eye(3, 4)
    assert torch.equal(out["cam_from_world"][0], eye)
    assert out["normalization_scale"].dtype == torch.float32 and out["normalization_scale"].dim() == 0


def test_consistency_and_undo(sample):
    out = normalize_sample(sample)
    s = out["normalization_scale"].double()
    # Points follow from the normalised depth and cameras.
    world, valid = depth_to_world_points(out["depths"].double(), out["cam_from_world"].double(),
                                         out["intrinsics"].double())
    assert torch.equal(valid, sample["point_masks"])
    torch.testing.assert_close(out["world_points"].double(), world * valid[..., None], atol=1e-5, rtol=1e-5)
    # Depth, camera points and translations scale back; rotations and intrinsics are untouched.
    torch.testing.assert_close(out["depths"].double() * s, sample["depths"].double(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["cam_points"].double() * s, sample["cam_points"].double(), atol=1e-5, rtol=1e-5)
    assert torch.equal(out["intrinsics"], sample["intrinsics"])
    rel = sample["cam_from_world"].double()
    r0 = rel[0, :, :3]
    torch.testing.assert_close(out["cam_from_world"][1:, :, :3].double(), rel[1:, :, :3] @ r0.T, atol=1e-5, rtol=0)
    assert torch.equal(out["tracks"], sample["tracks"])


def test_invariant_to_world_frame_and_scale(sample):
    """A rigid motion and scaling of the world leaves the normalised sample unchanged."""
    angle = torch.tensor(0.7, dtype=torch.float64)
    c, s_ = torch.cos(angle), torch.sin(angle)
    rotation = torch.tensor([[c, -s_, 0], [s_, c, 0], [0, 0, 1]], dtype=torch.float64)
    shift, scale = torch.tensor([3.0, -2.0, 0.5], dtype=torch.float64), 2.5
    moved = dict(sample)
    e = sample["cam_from_world"].double()
    new_r = e[:, :, :3] @ rotation.T
    new_t = (e[:, :, 3] - (new_r @ shift[:, None])[..., 0]) * scale
    moved["cam_from_world"] = torch.cat([new_r, new_t[..., None]], -1).float()
    moved["world_points"] = (((sample["world_points"].double() @ rotation.T) + shift) * scale
                             * sample["point_masks"][..., None]).float()
    moved["depths"] = sample["depths"] * scale
    moved["cam_points"] = sample["cam_points"] * scale
    a, b = normalize_sample(sample), normalize_sample(moved)
    assert abs(b["normalization_scale"].item() / a["normalization_scale"].item() - scale) < 1e-4
    for key in ("world_points", "cam_from_world", "depths", "cam_points"):
        torch.testing.assert_close(b[key], a[key], atol=1e-4, rtol=1e-4)


def test_batch_matches_single(small_synthetic):
    samples = [small_synthetic[i] for i in range(3)]
    batch = normalize_sample(collate_samples(samples))
    assert batch["normalization_scale"].shape == (3,)
    for b, sample in enumerate(samples):
        single = normalize_sample(sample)
        torch.testing.assert_close(batch["normalization_scale"][b], single["normalization_scale"])
        torch.testing.assert_close(batch["world_points"][b], single["world_points"])
        torch.testing.assert_close(batch["cam_from_world"][b], single["cam_from_world"])


def test_empty_mask_is_finite(sample):
    empty = dict(sample)
    empty["point_masks"] = torch.zeros_like(sample["point_masks"])
    out = normalize_sample(empty)
    assert torch.isfinite(out["world_points"]).all() and out["normalization_scale"].item() == pytest.approx(1e-6)


def test_missing_keys():
    with pytest.raises(KeyError, match="cam_from_world"):
        normalize_sample({"world_points": torch.zeros(1, 2, 2, 3)})
