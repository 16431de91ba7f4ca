"""Training losses of VGGT (``shared/spec/TRAINING.md`` section 4).

- :func:`camera_loss`: pose encodings of every refinement iteration against the
  ground-truth encoding, stage weights ``gamma^(n-1-k)`` (0.6), translation,
  quaternion and field-of-view terms (L1 by default; L2 norms or Huber).
- :func:`regression_loss`: the confidence-weighted ("aleatoric") dense loss
  ``gamma * r * c - alpha * log c`` plus the plain residual and a gradient
  term (``"grad"`` for depth, ``"normal"`` for point maps), with the 0.98
  quantile filter. :func:`depth_loss` and :func:`point_loss` wrap it.
- :func:`track_loss`: track coordinates over the iterations (decay 0.8),
  visibility and confidence binary cross-entropy on logits.
- :class:`MultitaskLoss`: the weighted sum over the heads that are trained.

Every function returns zero (with a gradient path, never NaN) when its mask
selects nothing. Shapes follow the model outputs: ``depth [B, S, H, W, 1]``,
``depth_conf [B, S, H, W]``, ``world_points [B, S, H, W, 3]``, pose encodings
``[B, S, 9]``, tracks ``[B, S, N, 2]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

CameraLossType = Literal["l1", "l2", "huber"]
GradientLoss = Literal["none", "grad", "grad+conf", "normal", "normal+conf"]

#: Hard bound of every loss element (the original's ``check_and_fix_inf_nan``).
HARD_MAX = 100.0


def fix_non_finite(x: Tensor, hard_max: float | None = HARD_MAX) -> Tensor:
    """NaN and +-inf -> 0, then clamp to ``[-hard_max, hard_max]`` (the original's ``check_and_fix_inf_nan``)."""
    x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return x.clamp(-hard_max, hard_max) if hard_max is not None else x


def _zero(*like: Tensor) -> Tensor:
    """A scalar 0 connected to ``like`` (keeps every parameter in the graph, e.g. for DDP)."""
    return sum((t.sum() * 0.0 for t in like), torch.zeros((), device=like[0].device))


# ---------------------------------------------------------------------------------------------- camera
def _camera_terms(pred: Tensor, gt: Tensor, loss_type: CameraLossType, huber_delta: float) -> tuple[Tensor, ...]:
    """Translation, rotation and field-of-view losses of ``[..., 9]`` encodings (means over elements)."""
    dt, dq, df = pred[..., :3] - gt[..., :3], pred[..., 3:7] - gt[..., 3:7], pred[..., 7:] - gt[..., 7:]
    if loss_type == "l1":
        terms = dt.abs(), dq.abs(), df.abs()
    elif loss_type == "l2":
        terms = dt.norm(dim=-1), dq.norm(dim=-1), df.norm(dim=-1)
    elif loss_type == "huber":
        terms = tuple(F.huber_loss(d, torch.zeros_like(d), reduction="none", delta=huber_delta) for d in (dt, dq, df))
    else:
        raise ValueError(f"unknown camera loss type {loss_type!r}; choose l1, l2 or huber")
    loss_t, loss_r, loss_f = (fix_non_finite(t) for t in terms)
    return loss_t.clamp(max=HARD_MAX).mean(), loss_r.mean(), loss_f.mean()


def camera_loss(pose_enc_list: Sequence[Tensor], gt_pose_enc: Tensor, valid: Tensor | None = None, *,
                loss_type: CameraLossType = "l1", gamma: float = 0.6, weight_trans: float = 1.0,
                weight_rot: float = 1.0, weight_fov: float = 0.5, huber_delta: float = 1.0) -> dict[str, Tensor]:
    """Camera loss over the refinement iterations (TRAINING.md 4.1).

    ``L_X = (1/n) sum_k gamma^(n-1-k) L_X,k`` for X in translation (elements
    clamped at 100), quaternion (raw prediction vs. the unit, ``qw >= 0``
    ground truth) and the two fields of view; ``loss_camera = w_T L_T + w_R L_R
    + w_F L_F``.

    Args:
        pose_enc_list: n predictions ``[B, S, 9]`` (``[tx, ty, tz, qx, qy, qz, qw, fov_h, fov_w]``).
        gt_pose_enc: ``[B, S, 9]``.
        valid: ``[B]`` bool, sequences that count (TRAINING.md: frame 0 has more
            than 100 valid depth pixels); ``None`` = all.

    Returns:
        ``loss_camera``, ``loss_T``, ``loss_R``, ``loss_FL`` (scalars).
    """
    n = len(pose_enc_list)
    if n == 0:
        raise ValueError("pose_enc_list is empty")
    gt = fix_non_finite(gt_pose_enc, None)
    if valid is None:
        valid = torch.ones(gt.shape[0], dtype=torch.bool, device=gt.device)
    totals = [_zero(*pose_enc_list)] * 3
    if bool(valid.any()):
        for k, pred in enumerate(pose_enc_list):
            w = gamma ** (n - 1 - k)
            terms = _camera_terms(pred[valid], gt[valid], loss_type, huber_delta)
            totals = [acc + w * t for acc, t in zip(totals, terms)]
    loss_t, loss_r, loss_f = (t / n for t in totals)
    total = weight_trans * loss_t + weight_rot * loss_r + weight_fov * loss_f
    return {"loss_camera": total, "loss_T": loss_t, "loss_R": loss_r, "loss_FL": loss_f}


# ----------------------------------------------------------------------------------------- dense terms
def quantile_filter(values: Tensor, valid_range: float, min_elements: int = 1000, hard_max: float = HARD_MAX,
                    max_elements: int = 100_000_000, subsample: int = 1_000_000) -> Tensor:
    """Keep the values below the ``valid_range`` quantile (TRAINING.md 4.2, step 3).

    With ``n <= min_elements`` values everything is kept unchanged. Otherwise
    values are clamped at ``hard_max``, the threshold is the detached
    ``valid_range`` quantile (``kthvalue``, ``k = round(q (n - 1)) + 1``), and the
    values strictly below ``min(threshold, hard_max)`` are kept if more than
    ``min_elements`` remain (else all clamped values are).
    """
    if valid_range <= 0 or values.numel() <= min_elements:
        return values
    values = values.reshape(-1)
    if values.numel() > max_elements:
        values = values[torch.randperm(values.numel(), device=values.device)[:subsample]]
    values = values.clamp(max=hard_max)
    k = round(valid_range * (values.numel() - 1)) + 1
    threshold = min(float(torch.kthvalue(values.detach().float().cpu(), k).values), hard_max)
    keep = values < threshold
    if int(keep.sum()) > min_elements:
        return values[keep]
    return values


def gradient_loss(pred: Tensor, gt: Tensor, mask: Tensor, conf: Tensor | None = None, gamma: float = 1.0,
                  alpha: float = 0.2) -> Tensor:
    """One scale of the ``grad`` term: L1 of neighbour differences of the masked residual.

    Args:
        pred, gt: ``[N, H, W, C]``; mask: ``[N, H, W]`` bool; conf: ``[N, H, W]`` or None.

    Returns:
        ``(sum g_x + sum g_y) / (valid pixels * C)``; with ``conf`` each edge
        becomes ``gamma g c - alpha log c`` with the later pixel's confidence.
    """
    m = mask[..., None].expand_as(pred).to(pred.dtype)  # [N, H, W, C]
    diff = (pred - gt) * m
    grad_x = (diff[:, :, 1:] - diff[:, :, :-1]).abs() * m[:, :, 1:] * m[:, :, :-1]  # [N, H, W-1, C]
    grad_y = (diff[:, 1:] - diff[:, :-1]).abs() * m[:, 1:] * m[:, :-1]  # [N, H-1, W, C]
    grad_x, grad_y = grad_x.clamp(max=HARD_MAX), grad_y.clamp(max=HARD_MAX)
    if conf is not None:
        c = conf[..., None].expand_as(pred)
        cx, cy = c[:, :, 1:], c[:, 1:]
        grad_x = gamma * grad_x * cx - alpha * torch.log(cx)
        grad_y = gamma * grad_y * cy - alpha * torch.log(cy)
    return (grad_x.sum() + grad_y.sum()) / m.sum().clamp_min(1.0)


def point_map_to_normals(points: Tensor, mask: Tensor, eps: float = 1e-8) -> tuple[Tensor, Tensor]:
    """Four unit normals per pixel from neighbour cross products.

    Args:
        points: ``[N, H, W, 3]``; mask: ``[N, H, W]`` bool.

    Returns:
        ``(normals [4, N, H, W, 3], valid [4, N, H, W])`` for the pairs
        up x left, left x down, down x right, right x up; a normal is valid iff
        the centre and both neighbours are valid (borders are invalid).
    """
    pts = F.pad(points.permute(0, 3, 1, 2), (1, 1, 1, 1)).permute(0, 2, 3, 1)  # [N, H+2, W+2, 3]
    m = F.pad(mask, (1, 1, 1, 1), value=False)  # [N, H+2, W+2]
    center, mc = pts[:, 1:-1, 1:-1], m[:, 1:-1, 1:-1]
    up, mu = pts[:, :-2, 1:-1] - center, m[:, :-2, 1:-1]
    left, ml = pts[:, 1:-1, :-2] - center, m[:, 1:-1, :-2]
    down, md = pts[:, 2:, 1:-1] - center, m[:, 2:, 1:-1]
    right, mr = pts[:, 1:-1, 2:] - center, m[:, 1:-1, 2:]
    normals = torch.stack([torch.cross(up, left, dim=-1), torch.cross(left, down, dim=-1),
                           torch.cross(down, right, dim=-1), torch.cross(right, up, dim=-1)])  # [4, N, H, W, 3]
    valid = torch.stack([mu & ml, ml & md, md & mr, mr & mu]) & mc  # [4, N, H, W]
    return F.normalize(normals, p=2, dim=-1, eps=eps), valid


def normal_loss(pred: Tensor, gt: Tensor, mask: Tensor, conf: Tensor | None = None, gamma: float = 1.0,
                alpha: float = 0.2, cos_eps: float = 1e-8) -> Tensor:
    """One scale of the ``normal`` term: ``mean(1 - cos)`` between predicted and true normals (fp32).

    Args: as :func:`gradient_loss` with ``C = 3``. Zero when fewer than 10 normals are valid.
    """
    with torch.autocast(pred.device.type, enabled=False):
        n_pred, v_pred = point_map_to_normals(pred.float(), mask, cos_eps)
        n_gt, v_gt = point_map_to_normals(gt.float(), mask, cos_eps)
        valid = v_pred & v_gt  # [4, N, H, W]
        if int(valid.sum()) < 10:
            return _zero(pred)
        dot = (n_pred[valid] * n_gt[valid]).sum(-1).clamp(-1 + cos_eps, 1 - cos_eps)
        loss = fix_non_finite(1 - dot)
        if conf is not None:
            c = conf.float()[None].expand_as(valid)[valid]
            loss = gamma * loss * c - alpha * torch.log(c)
        return loss.mean()


def multi_scale(fn, pred: Tensor, gt: Tensor, mask: Tensor, conf: Tensor | None, scales: int, **kw) -> Tensor:
    """Average ``fn`` over strides ``1, 2, 4, ...`` (``[:, ::s, ::s]`` subsampling), ``scales`` of them."""
    total = _zero(pred)
    for i in range(scales):
        s = 2**i
        total = total + fn(pred[:, ::s, ::s], gt[:, ::s, ::s], mask[:, ::s, ::s],
                           conf[:, ::s, ::s] if conf is not None else None, **kw)
    return total / scales


def regression_loss(pred: Tensor, gt: Tensor, mask: Tensor, conf: Tensor, *, gradient: GradientLoss = "grad",
                    gamma: float = 1.0, alpha: float = 0.2, valid_range: float = 0.98,
                    min_valid: int = 100) -> dict[str, Tensor]:
    """Confidence-weighted dense regression (TRAINING.md 4.2).

    Args:
        pred, gt: ``[B, S, H, W, C]`` (C = 1 depth, 3 points).
        mask: ``[B, S, H, W]`` bool, valid ground truth.
        conf: ``[B, S, H, W]`` confidence ``> 1`` (``1 + exp(x)``).
        gradient: ``"grad"`` (4 scales), ``"normal"`` (3 scales), either with
            ``"+conf"`` to weight it by confidence, or ``"none"``.

    Returns:
        ``conf`` = mean of ``gamma r c - alpha log c``, ``reg`` = mean of ``r``
        (``r = ||gt - pred||_2`` per pixel, clamped at 100), both after the
        quantile filter, and ``grad``. All zero if fewer than ``min_valid``
        pixels are valid.
    """
    if pred.shape != gt.shape or pred.shape[:-1] != mask.shape or conf.shape != mask.shape:
        raise ValueError(f"shape mismatch: pred {list(pred.shape)}, gt {list(gt.shape)}, mask {list(mask.shape)}, "
                         f"conf {list(conf.shape)}")
    gt = fix_non_finite(gt, None)
    mask = mask.bool()
    if int(mask.sum()) < min_valid:
        zero = _zero(pred, conf)
        return {"conf": zero, "reg": zero, "grad": zero}
    residual = fix_non_finite(torch.linalg.vector_norm(gt[mask] - pred[mask], dim=-1))  # [n]
    c = conf[mask]
    aleatoric = fix_non_finite(gamma * residual * c - alpha * torch.log(c))  # [n]
    out = {
        "conf": fix_non_finite(quantile_filter(aleatoric, valid_range)).mean(),
        "reg": fix_non_finite(quantile_filter(residual, valid_range)).mean(),
    }
    B, S, H, W, C = pred.shape
    kind = gradient.split("+")[0]
    use_conf = "conf" in gradient
    flat = (pred.reshape(B * S, H, W, C), gt.reshape(B * S, H, W, C), mask.reshape(B * S, H, W),
            conf.reshape(B * S, H, W) if use_conf else None)
    if kind == "grad":
        out["grad"] = multi_scale(gradient_loss, *flat, scales=4, gamma=gamma, alpha=alpha)
    elif kind == "normal":
        if C != 3:
            raise ValueError(f"the normal gradient loss needs 3-channel point maps, got {C} channels")
        out["grad"] = multi_scale(normal_loss, *flat, scales=3, gamma=gamma, alpha=alpha)
    elif kind == "none":
        out["grad"] = _zero(pred)
    else:
        raise ValueError(f"unknown gradient loss {gradient!r}; choose none, grad, normal (optionally +conf)")
    return out


def depth_loss(depth: Tensor, depth_conf: Tensor, gt_depth: Tensor, mask: Tensor, **kw) -> dict[str, Tensor]:
    """:func:`regression_loss` for ``depth [B, S, H, W, 1]`` against ``gt_depth [B, S, H, W]``."""
    kw.setdefault("gradient", "grad")
    parts = regression_loss(depth, gt_depth[..., None].to(depth.dtype), mask, depth_conf, **kw)
    return {"loss_conf_depth": parts["conf"], "loss_reg_depth": parts["reg"], "loss_grad_depth": parts["grad"]}


def point_loss(points: Tensor, points_conf: Tensor, gt_points: Tensor, mask: Tensor, **kw) -> dict[str, Tensor]:
    """:func:`regression_loss` for ``world_points [B, S, H, W, 3]`` (gradient term ``normal`` by default)."""
    kw.setdefault("gradient", "normal")
    parts = regression_loss(points, gt_points.to(points.dtype), mask, points_conf, **kw)
    return {"loss_conf_point": parts["conf"], "loss_reg_point": parts["reg"], "loss_grad_point": parts["grad"]}


# ------------------------------------------------------------------------------------------------ track
def track_loss(track_list: Sequence[Tensor], vis_logits: Tensor, conf_logits: Tensor, gt_tracks: Tensor,
               gt_visibility: Tensor, *, gamma: float = 0.8, conf_threshold: float = 3.0) -> dict[str, Tensor]:
    """Track loss (TRAINING.md 4.3): coordinates over iterations, visibility and confidence BCE.

    A track is valid if it is visible in frame 0 (the query frame); validity is
    broadcast over frames, so occluded frames of valid tracks are visibility
    negatives.

    Args:
        track_list: n predictions ``[B, S, N, 2]`` pixels ``(x, y)``.
        vis_logits, conf_logits: ``[B, S, N]`` pre-sigmoid.
        gt_tracks: ``[B, S, N, 2]``; gt_visibility: ``[B, S, N]`` bool.

    Returns:
        ``loss_track`` = ``(1/n) sum_k gamma^(n-1-k) mean|pred_k - gt|`` over
        valid and visible entries (0 if at most 2), ``loss_vis``, ``loss_track_conf``
        (target: last prediction within ``conf_threshold`` px of the truth).
    """
    n = len(track_list)
    gt_tracks = fix_non_finite(gt_tracks, None)
    vis = gt_visibility.bool()
    valid = vis[:, :1].expand_as(vis)  # [B, S, N]: visible in the query frame
    zero = _zero(track_list[-1], vis_logits, conf_logits)
    if not bool(valid.any()):
        return {"loss_track": zero, "loss_vis": zero, "loss_track_conf": zero}
    entries = valid & vis
    coord = zero
    if int(entries.sum()) > 2:
        for k, pred in enumerate(track_list):
            err = fix_non_finite((pred - gt_tracks).abs(), None).mean(-1)  # [B, S, N]
            coord = coord + gamma ** (n - 1 - k) * err[entries].mean()
        coord = coord / n
    vis_loss = F.binary_cross_entropy_with_logits(vis_logits[valid], vis[valid].to(vis_logits.dtype))
    close = (gt_tracks - track_list[-1].detach()).norm(dim=-1) < conf_threshold  # [B, S, N]
    conf_loss = F.binary_cross_entropy_with_logits(conf_logits[valid], close[valid].to(conf_logits.dtype))
    return {"loss_track": coord, "loss_vis": fix_non_finite(vis_loss, None),
            "loss_track_conf": fix_non_finite(conf_loss, None)}


# ------------------------------------------------------------------------------------------- multitask
@dataclass
class LossConfig:
    """Weights and options of :class:`MultitaskLoss`; defaults are the released fine-tuning config.

    A head contributes only if it is trained and its weight is positive.
    """

    camera_weight: float = 5.0
    camera_loss_type: CameraLossType = "l1"
    camera_gamma: float = 0.6
    weight_trans: float = 1.0
    weight_rot: float = 1.0
    weight_fov: float = 0.5
    huber_delta: float = 1.0
    #: a sequence counts for the camera loss if frame 0 has more valid depth pixels than this
    camera_min_valid_pixels: int = 100
    depth_weight: float = 1.0
    depth_gradient: GradientLoss = "grad"
    point_weight: float = 1.0
    point_gradient: GradientLoss = "normal"
    conf_gamma: float = 1.0
    conf_alpha: float = 0.2
    valid_range: float = 0.98
    #: dense losses are 0 when the batch has fewer valid pixels than this
    min_valid_pixels: int = 100
    track_weight: float = 0.05
    track_gamma: float = 0.8
    track_vis_weight: float = 1.0
    track_conf_weight: float = 1.0
    track_conf_threshold: float = 3.0

    def __post_init__(self) -> None:
        if self.camera_loss_type not in ("l1", "l2", "huber"):
            raise ValueError(f"loss.camera_loss_type must be l1, l2 or huber, got {self.camera_loss_type!r}")
        for name in ("depth_gradient", "point_gradient"):
            value = getattr(self, name)
            if value.split("+")[0] not in ("none", "grad", "normal") or value.count("+") > 1 or (
                    "+" in value and not value.endswith("+conf")):
                raise ValueError(f"loss.{name} must be none, grad, normal or grad+conf / normal+conf, got {value!r}")
        if not 0.0 <= self.valid_range <= 1.0:
            raise ValueError(f"loss.valid_range must be in [0, 1], got {self.valid_range}")


@dataclass
class MultitaskLoss:
    """Weighted sum of the losses of the trained heads.

    ``heads`` lists the trained heads (``camera``, ``depth``, ``point``,
    ``track``). ``__call__(predictions, batch)`` returns every term plus
    ``objective`` (the weighted total). ``batch`` holds normalised ground
    truth in the keys of :mod:`vggt3d.data.sample` plus ``gt_pose_enc``
    ``[B, S, 9]`` (see :func:`vggt3d.training.batch.prepare_batch`).
    """

    config: LossConfig = field(default_factory=LossConfig)
    heads: Sequence[str] = ("camera", "depth")

    def __call__(self, predictions: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        c = self.config
        out: dict[str, Tensor] = {}
        terms: list[Tensor] = []
        dense = dict(gamma=c.conf_gamma, alpha=c.conf_alpha, valid_range=c.valid_range, min_valid=c.min_valid_pixels)
        mask = batch["point_masks"]
        if "camera" in self.heads and c.camera_weight > 0:
            valid = mask[:, 0].flatten(1).sum(-1) > c.camera_min_valid_pixels  # [B]
            part = camera_loss([p.float() for p in predictions["pose_enc_list"]], batch["gt_pose_enc"], valid,
                               loss_type=c.camera_loss_type, gamma=c.camera_gamma, weight_trans=c.weight_trans,
                               weight_rot=c.weight_rot, weight_fov=c.weight_fov, huber_delta=c.huber_delta)
            out.update(part)
            terms.append(c.camera_weight * part["loss_camera"])
        if "depth" in self.heads and c.depth_weight > 0:
            part = depth_loss(predictions["depth"].float(), predictions["depth_conf"].float(), batch["depths"], mask,
                              gradient=c.depth_gradient, **dense)
            out.update(part)
            terms.append(c.depth_weight * sum(part.values()))
        if "point" in self.heads and c.point_weight > 0:
            part = point_loss(predictions["world_points"].float(), predictions["world_points_conf"].float(),
                              batch["world_points"], mask, gradient=c.point_gradient, **dense)
            out.update(part)
            terms.append(c.point_weight * sum(part.values()))
        if "track" in self.heads and c.track_weight > 0 and "track_list" in predictions:
            part = track_loss([t.float() for t in predictions["track_list"]], predictions["vis_logits"].float(),
                              predictions["conf_logits"].float(), batch["query_tracks"], batch["query_visibility"],
                              gamma=c.track_gamma, conf_threshold=c.track_conf_threshold)
            out.update(part)
            terms.append(c.track_weight * (part["loss_track"] + c.track_vis_weight * part["loss_vis"]
                                           + c.track_conf_weight * part["loss_track_conf"]))
        if not terms:
            raise ValueError(f"no loss term is active for heads {list(self.heads)} (check the loss weights)")
        out["objective"] = sum(terms[1:], terms[0])
        return out
