"""Metrics against hand-computed cases, NumPy's histogram AUC, and the evo package (ATE / RPE)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vggt3d import metrics as M
from vggt3d.geometry import invert_rigid


def rot_y(deg: float) -> torch.Tensor:
    a = math.radians(deg)
    return torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]],
                        dtype=torch.float64)


def rigid(R: torch.Tensor, t) -> torch.Tensor:
    return torch.cat([R, torch.as_tensor(t, dtype=torch.float64)[:, None]], 1)


def random_rotation(g: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    return q * torch.det(q)


def test_camera_errors_by_hand():
    gt = torch.stack([rigid(torch.eye(3, dtype=torch.float64), [0, 0, 0]), rigid(rot_y(10), [1.0, 0, 0])])
    # prediction: 5 more degrees of rotation, translation direction 20 degrees off (in the x-z plane)
    t = [math.cos(math.radians(20)), 0, math.sin(math.radians(20))]
    pred = torch.stack([rigid(torch.eye(3, dtype=torch.float64), [0, 0, 0]), rigid(rot_y(15), t)])
    rot, trans = M.camera_pair_errors(pred, gt)
    assert rot.tolist() == pytest.approx([5.0], abs=1e-6)
    # pairs are cam_0_from_cam_1 = E_0 inv(E_1) (upstream CO3D order): translation -R_1^T t_1, i.e. the x-z
    # direction turned back by the camera's own rotation: gt at -10 degrees, prediction at 20 - 15 = 5 degrees
    assert trans.tolist() == pytest.approx([25.0], abs=1e-6)
    same_rot, same_trans = M.camera_pair_errors(gt, gt)
    assert same_rot.abs().max() < 1e-5 and same_trans.abs().max() < 1e-5


def test_camera_pairs_follow_the_upstream_co3d_order():
    """Upstream ``se3_to_relative_pose_error`` compares ``E_i @ inv(E_j)`` for i < j (E = cam_from_world)."""
    g = torch.Generator().manual_seed(3)
    gt = torch.stack([rigid(random_rotation(g), torch.randn(3, generator=g)) for _ in range(4)])
    pred = torch.stack([rigid(random_rotation(g), torch.randn(3, generator=g)) for _ in range(4)])
    rot, trans = M.camera_pair_errors(pred, gt)
    i, j = M.pair_indices(4)
    h = lambda e: torch.cat([e, torch.tensor([[[0, 0, 0, 1.0]]], dtype=e.dtype).expand(len(e), 1, 4)], 1)
    rel_gt, rel_pred = h(gt)[i] @ invert_rigid(h(gt)[j]), h(pred)[i] @ invert_rigid(h(pred)[j])
    cos = torch.nn.functional.cosine_similarity(rel_gt[:, :3, 3], rel_pred[:, :3, 3], dim=1).abs().clamp(max=1)
    assert torch.allclose(trans, torch.rad2deg(torch.acos(cos)), atol=1e-6)
    other_gt, other_pred = h(gt)[j] @ invert_rigid(h(gt)[i]), h(pred)[j] @ invert_rigid(h(pred)[i])
    cos_other = torch.nn.functional.cosine_similarity(other_gt[:, :3, 3], other_pred[:, :3, 3], dim=1).abs()
    assert not torch.allclose(trans, torch.rad2deg(torch.acos(cos_other.clamp(max=1))), atol=1e-3)


def test_camera_errors_ignore_the_ground_truth_world_frame():
    g = torch.Generator().manual_seed(0)
    cams = torch.stack([rigid(random_rotation(g), torch.randn(3, generator=g)) for _ in range(5)])
    # the prediction lives in frame 0's camera frame; ground truth in any world frame gives the same errors
    first = torch.cat([cams[0], torch.tensor([[0, 0, 0, 1.0]], dtype=torch.float64)])
    pred = cams @ invert_rigid(first)
    rot, trans = M.camera_pair_errors(pred, cams)
    assert rot.shape == (10,) and rot.max() < 1e-5 and trans.max() < 1e-5


def test_identity_prediction_translation_is_90_degrees():
    gt = torch.stack([rigid(torch.eye(3, dtype=torch.float64), [0, 0, 0]), rigid(rot_y(3), [0.2, 0, 1])])
    pred = torch.eye(4, dtype=torch.float64)[:3].expand(2, 3, 4)
    rot, trans = M.camera_pair_errors(pred, gt)
    assert rot.item() == pytest.approx(3.0, abs=1e-6) and trans.item() == pytest.approx(90.0)


def test_auc_matches_numpy_histogram_and_hand_value():
    rot = torch.tensor([0.5, 1.5, 29.5, 45.0, 30.0], dtype=torch.float64)
    trans = torch.tensor([0.2, 0.1, 3.0, 1.0, 2.0], dtype=torch.float64)
    value, curve = M.auc(rot, trans, 30)
    hist, _ = np.histogram(np.maximum(rot.numpy(), trans.numpy()), bins=np.arange(31))
    assert value == pytest.approx(np.mean(np.cumsum(hist / 5)))
    # by hand: 1/5 below 1, 2/5 below 2..29, 4/5 by 30 (the last bin is closed), 45 never
    assert value == pytest.approx((0.2 + 28 * 0.4 + 0.8) / 30)
    assert curve[0].item() == pytest.approx(0.2) and curve[-1].item() == pytest.approx(0.8)


def test_threshold_accuracy():
    errors = torch.tensor([1.0, 4.9, 5.0, 20.0])
    assert M.threshold_accuracy(errors, (5, 15, 30)) == {5: 0.5, 15: 0.75, 30: 1.0}


def test_umeyama_recovers_a_similarity():
    g = torch.Generator().manual_seed(1)
    src = torch.randn(20, 3, generator=g, dtype=torch.float64)
    R, t, s = random_rotation(g), torch.randn(3, generator=g, dtype=torch.float64), 2.5
    s_hat, R_hat, t_hat = M.umeyama_sim3(src, s * src @ R.T + t)
    assert s_hat == pytest.approx(s) and torch.allclose(R_hat, R) and torch.allclose(t_hat, t)


def trajectories(seed: int = 3, n: int = 12):
    """A ground-truth trajectory and a noisy prediction in another similarity frame (cam_from_world)."""
    g = torch.Generator().manual_seed(seed)
    world_from_cam = []
    for i in range(n):
        R = rot_y(5 * i) @ random_rotation(g) if i == 0 else rot_y(5 * i)
        world_from_cam.append(rigid(R, [math.cos(i / 3), 0.1 * i, math.sin(i / 3)]))
    gt_wfc = torch.stack(world_from_cam)
    S_R, S_t, S_s = random_rotation(g), torch.randn(3, generator=g, dtype=torch.float64), 0.7
    pred_wfc = gt_wfc.clone()
    pred_wfc[:, :, :3] = S_R @ gt_wfc[:, :, :3]
    pred_wfc[:, :, 3] = S_s * gt_wfc[:, :, 3] @ S_R.T + S_t + 0.05 * torch.randn(n, 3, generator=g, dtype=torch.float64)
    noise = torch.stack([rigid(rot_y(float(a)), [0, 0, 0])[:, :3] for a in torch.randn(n, generator=g)])
    pred_wfc[:, :, :3] = pred_wfc[:, :, :3] @ noise
    return invert_rigid(pred_wfc), invert_rigid(gt_wfc), pred_wfc, gt_wfc


def _evo_trajectory(world_from_cam: torch.Tensor):
    from evo.core import lie_algebra as lie
    from evo.core.trajectory import PoseTrajectory3D

    poses = []
    for T in world_from_cam.numpy():
        h = np.eye(4)
        h[:3] = T
        poses.append(h)
    return PoseTrajectory3D(poses_se3=poses, timestamps=np.arange(len(poses), dtype=float)), lie


def test_ate_and_rpe_match_evo():
    pytest.importorskip("evo")
    from evo.core import metrics as evo_metrics

    pred, gt, pred_wfc, gt_wfc = trajectories()
    est, _ = _evo_trajectory(pred_wfc)
    ref, _ = _evo_trajectory(gt_wfc)
    est.align(ref, correct_scale=True)
    ape = evo_metrics.APE(evo_metrics.PoseRelation.translation_part)
    ape.process_data((ref, est))
    assert M.ate(pred, gt) == pytest.approx(ape.get_statistic(evo_metrics.StatisticsType.rmse), rel=1e-6)
    for relation, index in ((evo_metrics.PoseRelation.translation_part, 0),
                            (evo_metrics.PoseRelation.rotation_angle_deg, 1)):
        rpe = evo_metrics.RPE(relation, delta=1, delta_unit=evo_metrics.Unit.frames, all_pairs=False)
        rpe.process_data((ref, est))
        expected = rpe.get_statistic(evo_metrics.StatisticsType.rmse)
        assert M.rpe(pred, gt)[index] == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_ate_zero_for_a_similar_trajectory():
    _, gt, _, gt_wfc = trajectories()
    pred_wfc = gt_wfc.clone()
    pred_wfc[:, :, 3] = 3.0 * gt_wfc[:, :, 3] + torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    assert M.ate(invert_rigid(pred_wfc), gt) == pytest.approx(0.0, abs=1e-9)
    assert M.rpe(invert_rigid(pred_wfc), gt)[0] == pytest.approx(0.0, abs=1e-9)


def test_depth_metrics_by_hand():
    gt = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    scaled = M.depth_metrics(2 * gt, gt)
    assert scaled["abs_rel"] == pytest.approx(0.0) and scaled["delta_1.25"] == 1.0
    # medians 2.5 and 2.5 (NumPy's): no scaling; the last pixel is off by 100 %
    off = M.depth_metrics(torch.tensor([[[1.0, 2.0], [3.0, 8.0]]]), gt)
    assert off["abs_rel"] == pytest.approx(0.25) and off["delta_1.25"] == pytest.approx(0.75)
    assert M.depth_metrics(2 * gt + 1, gt, align="scale_shift")["abs_rel"] == pytest.approx(0.0, abs=1e-9)
    constant = M.depth_metrics(torch.ones_like(gt), gt)  # becomes the median 2.5
    assert constant["abs_rel"] == pytest.approx((1.5 / 1 + 0.5 / 2 + 0.5 / 3 + 1.5 / 4) / 4)


def test_depth_metrics_masks_and_empty_frames():
    gt = torch.tensor([[[1.0, 2.0]], [[0.0, 0.0]]])  # frame 1 has no valid pixel
    out = M.depth_metrics(gt.clone(), gt)
    assert out["abs_rel"] == 0.0 and math.isnan(out["abs_rel_per_frame"][1])
    mask = torch.tensor([[[True, False]], [[True, True]]])
    pred = torch.tensor([[[1.0, 50.0]], [[1.0, 1.0]]])
    assert M.depth_metrics(pred, gt, mask)["abs_rel"] == 0.0


def test_chamfer_by_hand():
    a = torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, 0.0, 0.0], [3.0, 0.0, 0.0]], dtype=torch.float64)
    assert M.chamfer_metrics(a, b) == {"accuracy": 1.0, "completeness": 2.0, "chamfer": 1.5}


def test_pointmap_metrics_after_similarity_are_zero():
    g = torch.Generator().manual_seed(2)
    gt = torch.randn(2, 4, 5, 3, generator=g, dtype=torch.float64)
    R = random_rotation(g)
    pred = 0.3 * gt @ R.T + torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    pred[0, 0, 0] = float("nan")  # non-finite predictions are left out
    out = M.pointmap_metrics(pred, gt, torch.ones(2, 4, 5, dtype=torch.bool))
    assert out["chamfer"] == pytest.approx(0.0, abs=1e-6)
    unaligned = M.pointmap_metrics(pred, gt, torch.ones(2, 4, 5, dtype=torch.bool), align=False)
    assert unaligned["chamfer"] > 0.1


def test_tapvid_by_hand():
    # 3 frames, 2 points, query frame 0 (not evaluated); images 256 x 256 (no rescaling)
    gt = torch.zeros(3, 2, 2)
    gt_vis = torch.tensor([[True, True], [True, False], [True, True]])
    pred = gt.clone()
    pred[1, 0] = torch.tensor([3.0, 0.0])  # 3 px off: within 4, 8, 16 only
    pred[2, 1] = torch.tensor([0.0, 1.5])  # 1.5 px off: within 2, 4, 8, 16
    pred_vis = torch.tensor([[True, True], [True, True], [False, True]])
    out = M.tapvid_metrics(pred, pred_vis, gt, gt_vis, image_size=(256, 256))
    # evaluated: (1,0) vis, (1,1) occluded, (2,0) vis, (2,1) vis -> 3 visible
    # within: thr 1: (2,0) -> 1/3; thr 2: (2,0), (2,1) -> 2/3; thr 4, 8, 16: 3/3
    assert out["delta_avg"] == pytest.approx((1 / 3 + 2 / 3 + 1 + 1 + 1) / 5)
    # occlusion: (1,0) ok, (1,1) wrong (predicted visible), (2,0) wrong, (2,1) ok
    assert out["occlusion_accuracy"] == pytest.approx(0.5)
    # Jaccard at 16: TP = (1,0), (2,1); FP = (1,1) (predicted visible, occluded); GT positives 3 -> 2/4
    assert out["pts_within_16"] == 1.0
    scaled = M.tapvid_metrics(pred * 2, pred_vis, gt * 2, gt_vis, image_size=(512, 512))
    assert scaled["delta_avg"] == pytest.approx(out["delta_avg"])


def test_camera_metrics_keys():
    _, gt, _, _ = trajectories(n=4)
    out = M.camera_metrics(gt, gt)
    assert out["AUC@30"] == pytest.approx(1.0) and out["RRA@5"] == 1.0 and out["ATE"] == pytest.approx(0.0, abs=1e-9)
    assert {"RTA@15", "RPE_trans", "RPE_rot_deg", "rot_err_deg"} <= set(out)
