"""alignment_loss and FeatureProjector: values, grids, gradients, a short training run, errors."""

from __future__ import annotations

import math

import pytest
import torch

from vggt3d.prior import FeatureProjector, alignment_loss
from vggt3d.prior.alignment import resample_features


def feats(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_aligned_features_give_zero_and_opposite_give_two():
    t = feats(2, 3, 4, 5, 8)
    assert alignment_loss(t, t).item() == pytest.approx(0.0, abs=1e-6)
    assert alignment_loss(-t, t).item() == pytest.approx(2.0, abs=1e-6)
    assert alignment_loss(3.0 * t, t).item() == pytest.approx(0.0, abs=1e-6), "cosine ignores the scale"
    assert alignment_loss(3.0 * t, t, scale_weight=1.0).item() == pytest.approx(math.log(3.0) ** 2, rel=1e-4)


def test_flat_tokens_with_grids():
    t = feats(1, 2, 4, 5, 8)
    assert alignment_loss(t.reshape(1, 2, 20, 8), t.reshape(1, 2, 20, 8), student_grid=(4, 5),
                          target_grid=(4, 5)).item() == pytest.approx(0.0, abs=1e-6)


def test_a_finer_student_grid_is_averaged_onto_the_prior_grid():
    t = feats(1, 2, 4, 5, 8)
    # Each prior cell split into 2 x 2 student cells (and each frame into 2 time steps).
    fine = t.repeat_interleave(2, 1).repeat_interleave(2, 2).repeat_interleave(2, 3)  # [1, 4, 8, 10, 8]
    assert alignment_loss(fine, t).item() == pytest.approx(0.0, abs=1e-6)
    assert resample_features(t, (2, 4, 5)) is t


def test_a_coarser_student_grid_is_interpolated():
    s = feats(1, 1, 2, 2, 8)
    up = resample_features(s, (3, 4, 4))
    assert up.shape == (1, 3, 4, 4, 8)
    assert torch.allclose(up[:, :, 0, 0], s[:, :, 0, 0].expand(1, 3, 8), atol=1e-6), "corners keep their cell"


def test_gradients_reach_student_and_projector_not_target():
    student = feats(2, 2, 3, 3, 6).requires_grad_(True)
    target = feats(2, 2, 3, 3, 16, seed=1).requires_grad_(True)
    projector = FeatureProjector(6, 16)
    alignment_loss(student, target, projector, scale_weight=0.1).backward()
    assert student.grad.abs().sum() > 0 and target.grad is None
    assert all(p.grad is not None for p in projector.parameters())


def test_training_the_projector_aligns_the_features():
    torch.manual_seed(0)
    student = feats(4, 2, 3, 3, 12)
    target = torch.tanh(student @ feats(12, 24, seed=2))  # a fixed nonlinear map of the student
    projector = FeatureProjector(12, 24, hidden_dim=32)
    opt = torch.optim.Adam(projector.parameters(), lr=1e-2)
    first = alignment_loss(student, target, projector).item()
    for _ in range(150):
        loss = alignment_loss(student, target, projector)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first


def test_mask_and_reduction():
    t = feats(1, 2, 2, 2, 4)
    s = t.clone()
    s[:, 1] = -s[:, 1]  # frame 1 opposite
    per_token = alignment_loss(s, t, reduction="none")
    assert per_token.shape == (1, 2, 2, 2)
    mask = torch.tensor([1.0, 0.0])[None, :, None, None]
    assert alignment_loss(s, t, mask=mask).item() == pytest.approx(0.0, abs=1e-6)
    assert alignment_loss(s, t).item() == pytest.approx(1.0, abs=1e-6)


def test_errors():
    t = feats(1, 2, 2, 2, 4)
    with pytest.raises(ValueError, match="FeatureProjector"):
        alignment_loss(feats(1, 2, 2, 2, 3), t)
    with pytest.raises(ValueError, match="student_grid"):
        alignment_loss(feats(1, 2, 4, 4), t)
    with pytest.raises(ValueError, match="batch"):
        alignment_loss(feats(2, 2, 2, 2, 4), t)
    with pytest.raises(ValueError, match="reduction"):
        alignment_loss(t, t, reduction="sum")
