"""Losses against numbers computed by hand on tiny tensors (TRAINING.md section 4)."""

from __future__ import annotations

import math

import pytest
import torch

from vggt3d.training.losses import (LossConfig, MultitaskLoss, camera_loss, depth_loss, point_loss, quantile_filter,
                                    regression_loss, track_loss)

IDENTITY = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]


def enc(*values):
    return torch.tensor([[values]], dtype=torch.float32)  # [B=1, S=1, 9]


def test_camera_loss_l1_two_stages():
    gt = enc(*IDENTITY)
    stage0 = enc(1.0, 0, 0, 0, 0, 0, 1, 1, 1)  # |dT| = (1, 0, 0) -> mean 1/3
    stage1 = enc(0, 0, 0, 0.5, 0, 0, 1, 1.2, 1)  # |dq| mean 0.125, |dfov| mean 0.1
    out = camera_loss([stage0, stage1], gt)
    # weights 0.6^(n-1-k): 0.6, 1.0; every term divided by n = 2
    assert out["loss_T"].item() == pytest.approx(0.6 * (1 / 3) / 2)
    assert out["loss_R"].item() == pytest.approx(0.125 / 2)
    assert out["loss_FL"].item() == pytest.approx(0.1 / 2, rel=1e-5)
    assert out["loss_camera"].item() == pytest.approx(0.1 + 0.0625 + 0.5 * 0.05, rel=1e-5)


def test_camera_loss_l2_and_huber():
    gt = enc(*IDENTITY)
    pred = enc(3.0, 4.0, 0, 0, 0, 0, 1, 1, 1)
    assert camera_loss([pred], gt, loss_type="l2")["loss_T"].item() == pytest.approx(5.0)
    # Huber (delta 1): 0.5 x^2 below 1, |x| - 0.5 above: (2.5 + 3.5 + 0) / 3
    assert camera_loss([pred], gt, loss_type="huber")["loss_T"].item() == pytest.approx(2.0)
    small = enc(0.5, 0, 0, 0, 0, 0, 1, 1, 1)
    assert camera_loss([small], gt, loss_type="huber")["loss_T"].item() == pytest.approx(0.125 / 3)


def test_camera_translation_elements_clamped_at_100():
    out = camera_loss([enc(300.0, 0, 0, 0, 0, 0, 1, 1, 1)], enc(*IDENTITY))
    assert out["loss_T"].item() == pytest.approx(100 / 3, rel=1e-6)


def test_camera_loss_no_valid_sequence_is_zero_with_gradient():
    pred = enc(1.0, 2, 3, 0, 0, 0, 1, 1, 1).requires_grad_()
    out = camera_loss([pred], enc(*IDENTITY), valid=torch.tensor([False]))
    assert out["loss_camera"].item() == 0.0
    out["loss_camera"].backward()
    assert torch.isfinite(pred.grad).all() and (pred.grad == 0).all()


def test_camera_loss_only_valid_sequences_count():
    gt = torch.tensor([IDENTITY, IDENTITY])[:, None]  # [B=2, S=1, 9]
    pred = gt.clone()
    pred[1, 0, 0] = 3.0  # only the invalid sequence is wrong
    out = camera_loss([pred], gt, valid=torch.tensor([True, False]))
    assert out["loss_camera"].item() == 0.0


def small_depth_case():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2, 1)
    gt = torch.ones(1, 1, 2, 2)
    mask = torch.tensor([[True, True], [True, False]]).view(1, 1, 2, 2)
    conf = torch.full((1, 1, 2, 2), 2.0)  # 1 + exp(0)
    return pred, gt, mask, conf


def test_depth_loss_by_hand():
    pred, gt, mask, conf = small_depth_case()
    out = depth_loss(pred, conf, gt, mask, min_valid=0)
    # residuals 0, 1, 2; aleatoric r*c - 0.2 log c = (0, 2, 4) - 0.2 log 2
    assert out["loss_conf_depth"].item() == pytest.approx(2.0 - 0.2 * math.log(2.0), rel=1e-6)
    assert out["loss_reg_depth"].item() == pytest.approx(1.0)
    # scale 1: edges (0,0)-(0,1): |1 - 0| = 1, (0,0)-(1,0): |2 - 0| = 2, over 3 valid pixels; scales 2, 4, 8: no edge
    assert out["loss_grad_depth"].item() == pytest.approx((3.0 / 3.0) / 4)


def test_depth_gradient_with_confidence():
    pred, gt, mask, conf = small_depth_case()
    out = depth_loss(pred, conf, gt, mask, min_valid=0, gradient="grad+conf")
    # every edge (valid or not) gets gamma*g*c - alpha*log c with the later pixel's confidence (2).
    # scale 1: x edges 2 (g = 1, 0), y edges 2 (g = 2, 0): sum = 2*(1+2) - 4*0.2 log 2, over 3 pixels
    scale1 = (2 * 3.0 - 4 * 0.2 * math.log(2.0)) / 3.0
    assert out["loss_grad_depth"].item() == pytest.approx(scale1 / 4, rel=1e-6)


def test_point_normal_loss_tilted_plane():
    ys, xs = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    flat = torch.stack([xs, ys, torch.ones_like(xs)], -1)  # plane z = 1: normal (0, 0, -1) by our cross products
    tilted = torch.stack([xs, ys, 1.0 + xs], -1)  # normal (1, 0, -1)/sqrt(2)
    mask = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    conf = torch.full((1, 1, 4, 4), 2.0)
    out = point_loss(flat.view(1, 1, 4, 4, 3), conf, tilted.view(1, 1, 4, 4, 3), mask, min_valid=0)
    # scale 1: 36 valid normals, each 1 - cos 45deg; scale 2 (2x2): 4 normals < 10 -> 0; scale 4: 0
    assert out["loss_grad_point"].item() == pytest.approx((1 - 1 / math.sqrt(2)) / 3, rel=1e-5)
    same = point_loss(tilted.view(1, 1, 4, 4, 3), conf, tilted.view(1, 1, 4, 4, 3), mask, min_valid=0)
    assert same["loss_grad_point"].item() == pytest.approx(0.0, abs=1e-6)
    assert same["loss_reg_point"].item() == 0.0


def test_quantile_filter_by_hand():
    values = torch.arange(2000.0) / 2000  # k = round(0.98 * 1999) + 1 = 1960 -> threshold 1959/2000
    kept = quantile_filter(values, 0.98)
    assert kept.numel() == 1959
    assert kept.mean().item() == pytest.approx(1958 / 2 / 2000)
    few = torch.arange(1000.0)  # n <= 1000: untouched (not even clamped)
    assert torch.equal(quantile_filter(few, 0.98), few)


def test_regression_loss_quantile_drops_outliers():
    n = 2000
    pred = torch.zeros(1, 1, 1, n, 1)
    gt = (torch.arange(n) / n).view(1, 1, 1, n, 1)
    gt[..., -20:, 0] = 50.0  # 1 % outliers (residual 50) lie above the 0.98 quantile
    mask = torch.ones(1, 1, 1, n, dtype=torch.bool)
    conf = torch.ones(1, 1, 1, n)
    out = regression_loss(pred, gt, mask, conf, gradient="none")
    # threshold: the 1960th smallest residual, 1959/2000; kept: 0 .. 1958 (/2000)
    assert out["reg"].item() == pytest.approx(1958 / 2 / n, rel=1e-5)
    # ties: when the quantile equals most values, too few remain and all (clamped at 100) are kept
    gt = torch.ones(1, 1, 1, n, 1)
    gt[..., :20, 0] = 500.0
    out = regression_loss(pred, gt, mask, conf, gradient="none")
    assert out["reg"].item() == pytest.approx((1980 * 1.0 + 20 * 100.0) / n, rel=1e-5)


@pytest.mark.parametrize("fn", ["depth", "point"])
def test_dense_losses_empty_mask_are_zero(fn):
    pred = torch.rand(1, 2, 4, 4, 1 if fn == "depth" else 3, requires_grad=True)
    conf = (1 + torch.rand(1, 2, 4, 4)).requires_grad_()
    mask = torch.zeros(1, 2, 4, 4, dtype=torch.bool)
    if fn == "depth":
        out = depth_loss(pred, conf, torch.rand(1, 2, 4, 4), mask)
    else:
        out = point_loss(pred, conf, torch.rand(1, 2, 4, 4, 3), mask)
    total = sum(out.values())
    assert total.item() == 0.0
    total.backward()
    assert torch.isfinite(pred.grad).all() and torch.isfinite(conf.grad).all()


def test_dense_loss_below_min_valid_is_zero():
    pred, gt, mask, conf = small_depth_case()
    out = depth_loss(pred, conf, gt, mask)  # 3 valid pixels < 100
    assert all(v.item() == 0.0 for v in out.values())


def test_non_finite_ground_truth_is_zeroed():
    pred, gt, mask, conf = small_depth_case()
    gt[0, 0, 1, 1] = float("nan")  # masked anyway; must not leak
    out = depth_loss(pred, conf, gt, mask, min_valid=0)
    assert all(torch.isfinite(v) for v in out.values())


def track_case():
    gt = torch.tensor([[[[0.0, 0.0], [5.0, 5.0]], [[1.0, 1.0], [6.0, 6.0]]]])  # [B=1, S=2, N=2, 2]
    vis = torch.tensor([[[True, True], [True, False]]])  # track 1 occluded in frame 1
    pred = gt.clone()
    pred[0, 1, 0] += torch.tensor([2.0, 0.0])  # error 2 in x -> mean over x, y = 1
    pred[0, 1, 1] += 10.0  # occluded: no coordinate loss
    return gt, vis, pred


def test_track_loss_by_hand():
    gt, vis, pred = track_case()
    vis_logits = torch.zeros(1, 2, 2)
    conf_logits = torch.tensor([[[2.0, 2.0], [2.0, -2.0]]])  # targets: close, close, close (2 px), far
    out = track_loss([pred], vis_logits, conf_logits, gt, vis)
    assert out["loss_track"].item() == pytest.approx(1 / 3)  # entries (0,0), (0,1), (1,0)
    assert out["loss_vis"].item() == pytest.approx(math.log(2.0))
    assert out["loss_track_conf"].item() == pytest.approx(math.log1p(math.exp(-2.0)))


def test_track_loss_iterations_decay():
    gt, vis, pred = track_case()
    first = pred.clone()
    first[0, 1, 0] += torch.tensor([2.0, 0.0])  # error 4 in x -> 2
    out = track_loss([first, pred], torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), gt, vis)
    assert out["loss_track"].item() == pytest.approx((0.8 * 2 / 3 + 1 / 3) / 2)


def test_track_loss_nothing_valid():
    gt, vis, pred = track_case()
    vis[:, 0] = False  # no track visible in the query frame
    pred.requires_grad_()
    out = track_loss([pred], torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), gt, vis)
    total = sum(out.values())
    assert total.item() == 0.0
    total.backward()
    assert torch.isfinite(pred.grad).all()


def test_multitask_weights_and_heads():
    pred, gt, mask, conf = small_depth_case()
    batch = {"point_masks": mask.expand(1, 1, 2, 2), "depths": gt, "gt_pose_enc": enc(*IDENTITY)}
    predictions = {"pose_enc_list": [enc(0.3, 0, 0, 0, 0, 0, 1, 1, 1)], "depth": pred, "depth_conf": conf}
    cfg = LossConfig(min_valid_pixels=0, camera_min_valid_pixels=0)
    out = MultitaskLoss(cfg, ("camera", "depth"))(predictions, batch)
    depth = out["loss_conf_depth"] + out["loss_reg_depth"] + out["loss_grad_depth"]
    assert out["loss_camera"].item() == pytest.approx(0.1)
    assert out["objective"].item() == pytest.approx(5.0 * 0.1 + depth.item(), rel=1e-6)
    only_depth = MultitaskLoss(cfg, ("depth",))(predictions, batch)
    assert "loss_camera" not in only_depth
    assert only_depth["objective"].item() == pytest.approx(depth.item(), rel=1e-6)
    # camera validity: frame 0 needs more than camera_min_valid_pixels valid depth pixels
    strict = MultitaskLoss(LossConfig(min_valid_pixels=0), ("camera",))(predictions, batch)
    assert strict["loss_camera"].item() == 0.0


def test_loss_config_validation():
    with pytest.raises(ValueError, match="camera_loss_type"):
        LossConfig(camera_loss_type="l3")
    with pytest.raises(ValueError, match="depth_gradient"):
        LossConfig(depth_gradient="gradient")
