"""Evaluation metrics for cameras, depth, point maps and tracks (pure torch, float64 inside).

Cameras (the VGGT paper's protocol, after the upstream CO3D evaluation
``test_co3d.py``): for every frame pair ``i < j`` the relative poses
``cam_i_from_cam_j = E_i @ inv(E_j)`` (``E`` = ``cam_from_world``) of
prediction and ground truth are compared, the pairing of the upstream
``se3_to_relative_pose_error``, so our numbers compare with published tables;
the rotation error is the angle between the relative rotations, the
translation error the angle between the relative translations folded to
``min(e, 180 - e)`` (a zero vector counts as 90 degrees). ``E_i @ inv(E_j)``
does not depend on the world frame, so neither set of cameras needs
re-expressing. (The other order, ``E_j @ inv(E_i)``, gives the same rotation
errors but other translation angles: the translation of ``cam_j_from_cam_i``
is expressed in camera j, not i; AUC@30 differs by up to about 0.06 at 15
degrees of camera noise.) RRA@t / RTA@t are the fractions of pairs below
t degrees; AUC@30 integrates the fraction of pairs whose larger error is below
t over t = 1..30 (1-degree histogram bins). ATE and RPE follow ``evo``
(``evo_ape`` / ``evo_rpe`` with ``--align --correct_scale``): Umeyama Sim(3)
alignment of the camera centres, then RMSE of position errors (ATE) and of
the translation / rotation of relative-pose errors between frames ``delta``
apart (RPE).

Depth: AbsRel ``mean(|d - d*| / d*)`` and delta < 1.25 ``mean(max(d/d*, d*/d) < 1.25)``
over valid pixels after median scaling (``d <- d * median(d*) / median(d)``, NumPy's median) or
least-squares scale and shift, per frame (default) or per sequence.

Point maps: Sim(3) alignment of predicted to true points over corresponding
valid pixels, then accuracy (mean distance of each predicted point to its
nearest true point), completeness (the converse) and Chamfer distance (their mean).

Tracks (TAP-Vid, Doersch et al. 2022, "query first" mode): coordinates scaled
to 256 x 256, the query frame excluded; ``delta_avg`` = mean over thresholds
1, 2, 4, 8, 16 px of the fraction of visible points within the threshold;
occlusion accuracy; average Jaccard.

Convention: ``cam_from_world`` extrinsics (OpenCV axes: x right, y down,
z forward), ``[..., 3, 4]`` or ``[..., 4, 4]``; errors in degrees.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
from torch import Tensor

from vggt3d.geometry import invert_rigid, rotation_matrix_to_quat_xyzw, to_homogeneous_transform

DepthAlign = Literal["median", "scale_shift", "none"]

__all__ = [
    "ate", "auc", "camera_metrics", "camera_pair_errors", "chamfer_metrics", "depth_metrics", "pair_indices",
    "pointmap_metrics", "rotation_angle_deg", "rpe", "threshold_accuracy", "tapvid_metrics", "umeyama_sim3",
]


# -------------------------------------------------------------------------------------------- cameras
def pair_indices(num_frames: int) -> tuple[Tensor, Tensor]:
    """All pairs ``i < j`` of ``num_frames`` frames (row-major), as two index tensors."""
    i, j = torch.triu_indices(num_frames, num_frames, offset=1)
    return i, j


def rotation_angle_deg(rot_a: Tensor, rot_b: Tensor) -> Tensor:
    """Angle of ``rot_a^T rot_b`` in degrees, ``[...]`` (via quaternions: accurate at small angles)."""
    qa = rotation_matrix_to_quat_xyzw(rot_a.double())
    qb = rotation_matrix_to_quat_xyzw(rot_b.double())
    dot = (qa * qb).sum(-1).abs().clamp(max=1.0)
    return torch.rad2deg(2.0 * torch.acos(dot))


def _translation_angle_deg(t_gt: Tensor, t_pred: Tensor, eps: float = 1e-15) -> Tensor:
    a = t_gt / (t_gt.norm(dim=-1, keepdim=True) + eps)
    b = t_pred / (t_pred.norm(dim=-1, keepdim=True) + eps)
    angle = torch.rad2deg(torch.acos((a * b).sum(-1).abs().clamp(max=1.0)))  # |cos|: already folded to [0, 90]
    return torch.nan_to_num(angle, nan=90.0)


def camera_pair_errors(pred_cam_from_world: Tensor, gt_cam_from_world: Tensor) -> tuple[Tensor, Tensor]:
    """Relative rotation and translation angle errors (degrees) over all pairs ``i < j``.

    Convention: ``cam_from_world`` (OpenCV axes: x right, y down, z forward); the
    two sets of cameras may live in different world frames. Pairs compare
    ``cam_i_from_cam_j = E_i @ inv(E_j)`` (the upstream CO3D evaluation's order).

    Args:
        pred_cam_from_world, gt_cam_from_world: ``[S, 3, 4]`` or ``[S, 4, 4]``.

    Returns:
        ``(rotation_error [P], translation_error [P])``, ``P = S (S - 1) / 2``, float64.
    """
    if pred_cam_from_world.shape[0] != gt_cam_from_world.shape[0]:
        raise ValueError(f"prediction has {pred_cam_from_world.shape[0]} frames, ground truth "
                         f"{gt_cam_from_world.shape[0]}")
    pred = to_homogeneous_transform(pred_cam_from_world.double())
    gt = to_homogeneous_transform(gt_cam_from_world.double())
    i, j = pair_indices(pred.shape[0])
    # cam_i_from_cam_j = E_i inv(E_j), [P, 4, 4], as upstream CO3D evaluation; independent of the world frame
    rel_pred = pred[i] @ invert_rigid(pred[j])
    rel_gt = gt[i] @ invert_rigid(gt[j])
    rot = rotation_angle_deg(rel_gt[:, :3, :3], rel_pred[:, :3, :3])
    trans = _translation_angle_deg(rel_gt[:, :3, 3], rel_pred[:, :3, 3])
    return rot, trans


def threshold_accuracy(errors: Tensor, thresholds: Sequence[float]) -> dict[float, float]:
    """Fraction of ``errors`` strictly below each threshold."""
    return {t: float((errors < t).double().mean()) if errors.numel() else float("nan") for t in thresholds}


def auc(rot_errors: Tensor, trans_errors: Tensor, max_threshold: int = 30) -> tuple[float, Tensor]:
    """AUC@max_threshold of the VGGT protocol, and the curve it integrates.

    The larger of the two errors of each pair is histogrammed in 1-degree bins
    ``[0, 1), ..., [max-1, max]``; the curve is the cumulative fraction of
    pairs (value ``k-1`` = fraction with error below k degrees) and the AUC is its mean.
    """
    worst = torch.maximum(rot_errors.double(), trans_errors.double()).cpu()
    if worst.numel() == 0:
        return float("nan"), torch.full((max_threshold,), float("nan"), dtype=torch.float64)
    counts = torch.zeros(max_threshold, dtype=torch.float64)
    inside = (worst >= 0) & (worst <= max_threshold)
    bins = torch.clamp(torch.floor(worst[inside]).long(), max=max_threshold - 1)  # the last bin is closed
    counts.index_add_(0, bins, torch.ones_like(bins, dtype=torch.float64))
    curve = torch.cumsum(counts / worst.numel(), 0)
    return float(curve.mean()), curve


def umeyama_sim3(src: Tensor, dst: Tensor, with_scale: bool = True) -> tuple[float, Tensor, Tensor]:
    """Least-squares similarity ``dst ~ s R src + t`` (Umeyama 1991).

    Args:
        src, dst: ``[N, 3]`` corresponding points.

    Returns:
        ``(s, R [3, 3], t [3])`` in float64.
    """
    src, dst = src.double(), dst.double()
    n = src.shape[0]
    if n < 2:
        raise ValueError("Sim(3) alignment needs at least 2 points")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / n  # [3, 3]
    U, D, Vh = torch.linalg.svd(cov)
    S = torch.eye(3, dtype=torch.float64)
    if torch.det(U) * torch.det(Vh) < 0:
        S[2, 2] = -1.0
    R = U @ S @ Vh
    var_s = (xs**2).sum() / n
    s = float((D * S.diagonal()).sum() / var_s) if with_scale and var_s > 0 else 1.0
    t = mu_d - s * (R @ mu_s)
    return s, R, t


def _world_from_cam(cam_from_world: Tensor) -> Tensor:
    return invert_rigid(to_homogeneous_transform(cam_from_world.double()))  # [S, 4, 4]


def _aligned_poses(pred_cam_from_world: Tensor, gt_cam_from_world: Tensor, with_scale: bool = True):
    """World-from-camera poses of prediction (Sim(3)-aligned on the camera centres) and ground truth."""
    pred, gt = _world_from_cam(pred_cam_from_world), _world_from_cam(gt_cam_from_world)
    s, R, t = umeyama_sim3(pred[:, :3, 3], gt[:, :3, 3], with_scale)
    aligned = pred.clone()
    aligned[:, :3, :3] = R @ pred[:, :3, :3]
    aligned[:, :3, 3] = s * (pred[:, :3, 3] @ R.T) + t
    return aligned, gt


def ate(pred_cam_from_world: Tensor, gt_cam_from_world: Tensor, with_scale: bool = True) -> float:
    """Absolute trajectory error: RMSE of camera-centre distances after Sim(3) (or SE(3)) alignment."""
    aligned, gt = _aligned_poses(pred_cam_from_world, gt_cam_from_world, with_scale)
    return float(((aligned[:, :3, 3] - gt[:, :3, 3]) ** 2).sum(-1).mean().sqrt())


def rpe(pred_cam_from_world: Tensor, gt_cam_from_world: Tensor, delta: int = 1,
        with_scale: bool = True) -> tuple[float, float]:
    """Relative pose error between frames ``delta`` apart after alignment: ``(RMSE translation, RMSE degrees)``.

    ``E_i = inv(inv(G_i) G_{i+d}) inv(P_i) P_{i+d}`` on world-from-camera poses (evo's definition).
    """
    aligned, gt = _aligned_poses(pred_cam_from_world, gt_cam_from_world, with_scale)
    if aligned.shape[0] <= delta:
        return float("nan"), float("nan")
    i = torch.arange(aligned.shape[0] - delta)
    rel_p = invert_rigid(aligned[i]) @ aligned[i + delta]
    rel_g = invert_rigid(gt[i]) @ gt[i + delta]
    err = invert_rigid(rel_g) @ rel_p  # [P, 4, 4]
    trans = err[:, :3, 3].norm(dim=-1)
    cos = ((err[:, 0, 0] + err[:, 1, 1] + err[:, 2, 2] - 1.0) / 2.0).clamp(-1.0, 1.0)
    rot = torch.rad2deg(torch.acos(cos))
    return float((trans**2).mean().sqrt()), float((rot**2).mean().sqrt())


def camera_metrics(pred_cam_from_world: Tensor, gt_cam_from_world: Tensor,
                   thresholds: Sequence[float] = (5, 15, 30), auc_threshold: int = 30) -> dict[str, float]:
    """RRA@t, RTA@t, AUC@30, ATE and RPE (translation, rotation) of one sequence ``[S, 3, 4]``."""
    rot, trans = camera_pair_errors(pred_cam_from_world, gt_cam_from_world)
    out: dict[str, float] = {}
    for t, v in threshold_accuracy(rot, thresholds).items():
        out[f"RRA@{t:g}"] = v
    for t, v in threshold_accuracy(trans, thresholds).items():
        out[f"RTA@{t:g}"] = v
    out[f"AUC@{auc_threshold}"] = auc(rot, trans, auc_threshold)[0]
    out["rot_err_deg"] = float(rot.mean())
    out["trans_err_deg"] = float(trans.mean())
    if pred_cam_from_world.shape[0] >= 2:
        out["ATE"] = ate(pred_cam_from_world, gt_cam_from_world)
        out["RPE_trans"], out["RPE_rot_deg"] = rpe(pred_cam_from_world, gt_cam_from_world)
    return out


# ---------------------------------------------------------------------------------------------- depth
def _align_depth(pred: Tensor, gt: Tensor, mask: Tensor, align: DepthAlign) -> Tensor:
    """Align ``pred`` to ``gt`` over ``mask`` (all three same shape) and return the aligned prediction."""
    if align == "none" or not bool(mask.any()):
        return pred
    p, g = pred[mask], gt[mask]
    if align == "median":
        scale = _median(g) / _median(p).clamp_min(1e-12)
        return pred * scale
    if align == "scale_shift":
        A = torch.stack([p, torch.ones_like(p)], dim=-1)  # [n, 2]
        sol = torch.linalg.lstsq(A, g[:, None]).solution[:, 0]
        return pred * sol[0] + sol[1]
    raise ValueError(f"unknown depth alignment {align!r}; choose median, scale_shift or none")


def _median(x: Tensor) -> Tensor:
    """The median as NumPy defines it (mean of the two middle values for an even count)."""
    x = x.reshape(-1)
    if x.numel() <= 1 << 24:
        return torch.quantile(x, 0.5)
    return x.median()


def depth_metrics(pred: Tensor, gt: Tensor, mask: Tensor | None = None, align: DepthAlign = "median",
                  per: Literal["frame", "sequence"] = "frame", min_depth: float = 1e-6) -> dict[str, object]:
    """AbsRel and delta < 1.25 of depth maps ``[S, H, W]`` (or ``[S, H, W, 1]``) after alignment.

    Returns the means over frames (``abs_rel``, ``delta_1.25``) and the per-frame
    lists (``abs_rel_per_frame``, ...); a frame without valid pixels gives NaN
    and is left out of the means.
    """
    pred, gt = pred.double(), gt.double()
    if pred.dim() == gt.dim() + 1 and pred.shape[-1] == 1:
        pred = pred[..., 0]
    if pred.shape != gt.shape:
        raise ValueError(f"depth shapes differ: prediction {list(pred.shape)}, ground truth {list(gt.shape)}")
    valid = gt > min_depth
    valid = valid & mask.bool() if mask is not None else valid
    valid = valid & torch.isfinite(pred)
    if per == "sequence":
        pred = _align_depth(pred, gt, valid, align)
    abs_rel, delta = [], []
    for s in range(gt.shape[0]):
        m = valid[s]
        if not bool(m.any()):
            abs_rel.append(float("nan"))
            delta.append(float("nan"))
            continue
        p = _align_depth(pred[s], gt[s], m, align) if per == "frame" else pred[s]
        p, g = p[m], gt[s][m]
        abs_rel.append(float(((p - g).abs() / g).mean()))
        ratio = torch.maximum(p / g, g / p.clamp_min(1e-12))
        delta.append(float((ratio < 1.25).double().mean()))
    return {"abs_rel": _nanmean(abs_rel), "delta_1.25": _nanmean(delta), "abs_rel_per_frame": abs_rel,
            "delta_1.25_per_frame": delta}


def _nanmean(values: Sequence[float]) -> float:
    good = [v for v in values if not math.isnan(v)]
    return sum(good) / len(good) if good else float("nan")


# ------------------------------------------------------------------------------------------ point maps
def _nearest_distances(a: Tensor, b: Tensor, chunk: int = 1024) -> Tensor:
    """Distance from each point of ``a [N, 3]`` to its nearest point of ``b [M, 3]``.

    The nearest neighbour is searched in float32 (a matrix product, centred to
    limit cancellation); the returned distance to it is exact (input precision).
    """
    if b.shape[0] == 0:
        return torch.full((a.shape[0],), float("inf"), dtype=a.dtype)
    centre = b.mean(0)
    a32, b32 = (a - centre).float(), (b - centre).float()
    bb = (b32 * b32).sum(1)  # [M]
    out = []
    for start in range(0, a.shape[0], chunk):
        x = a32[start:start + chunk]
        d2 = torch.addmm(bb[None], x, b32.T, alpha=-2.0)  # |b|^2 - 2 a.b (|a|^2 does not change the argmin)
        nearest = d2.argmin(dim=1)
        out.append((a[start:start + chunk] - b[nearest]).norm(dim=-1))
    return torch.cat(out) if out else a.new_zeros(0)


def chamfer_metrics(pred_points: Tensor, gt_points: Tensor) -> dict[str, float]:
    """Accuracy, completeness and Chamfer distance of two point sets ``[N, 3]``, ``[M, 3]``."""
    acc = float(_nearest_distances(pred_points, gt_points).mean())
    comp = float(_nearest_distances(gt_points, pred_points).mean())
    return {"accuracy": acc, "completeness": comp, "chamfer": 0.5 * (acc + comp)}


def pointmap_metrics(pred_points: Tensor, gt_points: Tensor, mask: Tensor, max_points: int = 10000,
                     seed: int = 0, align: bool = True) -> dict[str, float]:
    """Point-map accuracy / completeness / Chamfer after Sim(3) alignment.

    Args:
        pred_points, gt_points: ``[S, H, W, 3]`` (any leading shape); mask: valid ground truth.
        max_points: random subset used (same pixels for both maps) to keep the distances cheap.
    """
    m = mask.bool() & torch.isfinite(pred_points).all(-1) & torch.isfinite(gt_points).all(-1)
    p, g = pred_points[m].double(), gt_points[m].double()
    if p.shape[0] < 3:
        return {"accuracy": float("nan"), "completeness": float("nan"), "chamfer": float("nan")}
    if p.shape[0] > max_points:
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(p.shape[0], generator=gen)[:max_points]
        p, g = p[idx], g[idx]
    if align:
        s, R, t = umeyama_sim3(p, g)
        p = s * p @ R.T + t
    return chamfer_metrics(p, g)


# ---------------------------------------------------------------------------------------------- tracks
def tapvid_metrics(pred_tracks: Tensor, pred_visible: Tensor, gt_tracks: Tensor, gt_visible: Tensor,
                   image_size: Sequence[int], query_frame: int = 0, resize_to: Sequence[int] = (256, 256),
                   thresholds: Sequence[float] = (1, 2, 4, 8, 16)) -> dict[str, float]:
    """TAP-Vid metrics of tracks ``[S, N, 2]`` (pixels ``(x, y)``) and visibility ``[S, N]`` bool.

    Frames other than ``query_frame`` are evaluated. Returns ``delta_avg``,
    ``pts_within_{t}``, ``occlusion_accuracy`` and ``average_jaccard``.
    """
    H, W = image_size
    scale = torch.tensor([resize_to[1] / W, resize_to[0] / H], dtype=torch.float64)
    pred = pred_tracks.double().cpu() * scale
    gt = gt_tracks.double().cpu() * scale
    pv, gv = pred_visible.bool().cpu(), gt_visible.bool().cpu()
    evaluate = torch.ones_like(gv)
    evaluate[query_frame] = False
    out = {"occlusion_accuracy": float(((pv == gv) & evaluate).sum() / evaluate.sum().clamp_min(1))}
    dist2 = ((pred - gt) ** 2).sum(-1)
    within_all, jaccards = [], []
    visible_eval = gv & evaluate
    for t in thresholds:
        within = dist2 < t * t
        correct = within & gv
        frac = float((correct & evaluate).sum() / visible_eval.sum().clamp_min(1))
        out[f"pts_within_{t:g}"] = frac
        within_all.append(frac)
        tp = (correct & pv & evaluate).sum()
        fp = (((~gv) & pv) | ((~within) & pv)) & evaluate
        jaccards.append(float(tp / (visible_eval.sum() + fp.sum()).clamp_min(1)))
    out["delta_avg"] = sum(within_all) / len(within_all)
    out["average_jaccard"] = sum(jaccards) / len(jaccards)
    return out
