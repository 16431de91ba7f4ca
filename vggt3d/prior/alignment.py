"""Align another network's features to the geometry prior's ("geometry forcing", REPA-style).

A video or world model is trained with an extra loss that pulls a projection
of its intermediate features towards the frozen prior's features of the same
frames::

    prior = GeometryPrior.from_pretrained("facebook/VGGT-1B", layers=[17], device="cuda")
    projector = FeatureProjector(student_dim=1152, prior_dim=2048).cuda()   # trained with the student
    optimizer = torch.optim.AdamW([*student.parameters(), *projector.parameters()], lr=1e-4)

    for frames in loader:                                   # [B, T, 3, H, W] in [0, 1]
        target = prior(frames).patch_tokens[17]             # [B, T, h, w, 2048], no grad
        out, hidden = student(frames, return_hidden=True)   # hidden: [B, T', h', w', 1152]
        loss = student_loss(out) + 0.5 * alignment_loss(hidden, target, projector)
        optimizer.zero_grad(); loss.backward(); optimizer.step()

Convention: features are channels-last, ``[B, T, h, w, C]`` (or ``[B, T, N, C]``
with the grid given, N = h*w row-major); a channels-first ``[B, C, T, h, w]``
tensor becomes channels-last with ``x.permute(0, 2, 3, 4, 1)``. The student's
grid may differ from the prior's in time and space: the projected student
features are averaged where their grid is finer and interpolated
(trilinear, ``align_corners=False``) where it is coarser, onto the prior's grid,
so both describe the same frame regions.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FeatureProjector", "alignment_loss", "resample_features"]


class FeatureProjector(nn.Module):
    """A small MLP from the student's width to the prior's: ``[..., student_dim] -> [..., prior_dim]``.

    ``num_layers`` linear layers with SiLU between them (2 by default, as REPA);
    ``hidden_dim`` defaults to ``max(student_dim, prior_dim)``. ``num_layers=1``
    is a linear map.
    """

    def __init__(self, student_dim: int, prior_dim: int, hidden_dim: int | None = None, num_layers: int = 2) -> None:
        super().__init__()
        if min(student_dim, prior_dim) < 1 or num_layers < 1:
            raise ValueError("student_dim, prior_dim and num_layers must be >= 1")
        hidden = hidden_dim or max(student_dim, prior_dim)
        dims = [student_dim] + [hidden] * (num_layers - 1) + [prior_dim]
        layers: list[nn.Module] = []
        for k in range(num_layers):
            layers.append(nn.Linear(dims[k], dims[k + 1]))
            if k < num_layers - 1:
                layers.append(nn.SiLU())
        self.net = nn.Sequential(*layers)
        self.student_dim, self.prior_dim = student_dim, prior_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _as_grid(x: Tensor, grid: tuple[int, int] | None, name: str) -> Tensor:
    """``[B, T, h, w, C]`` from ``[B, T, h, w, C]`` or ``[B, T, N, C]`` + grid."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 5:
        if grid is not None and tuple(x.shape[2:4]) != tuple(grid):
            raise ValueError(f"{name} has grid {tuple(x.shape[2:4])} but {name}_grid={tuple(grid)} was given")
        return x
    if x.dim() == 4:
        if grid is None:
            raise ValueError(f"{name} is [B, T, N, C] ({list(x.shape)}): pass {name}_grid=(h, w) with h*w = N")
        h, w = grid
        if h * w != x.shape[2]:
            raise ValueError(f"{name}_grid {tuple(grid)} has {h * w} cells but {name} has N={x.shape[2]} tokens")
        return x.reshape(x.shape[0], x.shape[1], h, w, x.shape[3])
    raise ValueError(f"{name} must be [B, T, h, w, C] or [B, T, N, C], got shape {list(x.shape)}")


def resample_features(x: Tensor, size: tuple[int, int, int]) -> Tensor:
    """Channels-last ``[B, T, h, w, C]`` onto a ``size = (T', h', w')`` grid.

    Convention: cells are areas (``align_corners=False``); axes where the input
    is finer are averaged (adaptive average pooling), axes where it is coarser
    are interpolated linearly.
    """
    if tuple(x.shape[1:4]) == tuple(size):
        return x
    y = x.permute(0, 4, 1, 2, 3)  # [B, C, T, h, w]
    pooled = tuple(min(a, b) for a, b in zip(y.shape[2:], size))
    if pooled != tuple(y.shape[2:]):
        y = F.adaptive_avg_pool3d(y, pooled)
    if pooled != tuple(size):
        y = F.interpolate(y, size=size, mode="trilinear", align_corners=False)
    return y.permute(0, 2, 3, 4, 1)  # [B, T', h', w', C]


def alignment_loss(student: Tensor, target: Tensor, projector: nn.Module | None = None, *,
                   student_grid: tuple[int, int] | None = None, target_grid: tuple[int, int] | None = None,
                   scale_weight: float = 0.0, mask: Tensor | None = None,
                   reduction: Literal["mean", "none"] = "mean", eps: float = 1e-6) -> Tensor:
    """Cosine (and optionally scale) alignment of a student's features to the prior's.

    Args:
        student: ``[B, T_s, h_s, w_s, C_s]`` (or ``[B, T_s, N_s, C_s]`` with
            ``student_grid``): the student's features, any width and grid.
        target: ``[B, T, h, w, C]`` (or ``[B, T, N, C]`` with ``target_grid``):
            the prior's features, e.g. ``GeometryFeatures.patch_tokens[layer]``.
            Always detached: gradients reach only the student and the projector.
        projector: maps ``C_s`` to ``C`` (e.g. :class:`FeatureProjector`);
            required when the widths differ.
        scale_weight: weight of the scale term ``(log |s| - log |t|)^2``
            (feature norms); 0 gives the pure cosine loss.
        mask: ``[B, T, h, w]`` (broadcastable) weights on the prior's grid,
            e.g. 0 for padded frames.
        reduction: ``"mean"`` (a scalar, weighted by ``mask``) or ``"none"``
            (the per-token loss ``[B, T, h, w]``).

    Returns:
        ``1 - cos(projector(student), target)`` (+ ``scale_weight`` x scale
        term), averaged over tokens: 0 when aligned, at most 2.
    """
    s = _as_grid(student, student_grid, "student")
    t = _as_grid(target, target_grid, "target").detach()
    if s.shape[0] != t.shape[0]:
        raise ValueError(f"student batch {s.shape[0]} differs from target batch {t.shape[0]}")
    if projector is not None:
        s = projector(s)
    if s.shape[-1] != t.shape[-1]:
        raise ValueError(
            f"student width {s.shape[-1]} differs from the prior's {t.shape[-1]}: pass a projector, e.g. "
            f"FeatureProjector({s.shape[-1]}, {t.shape[-1]})"
        )
    s = resample_features(s, tuple(t.shape[1:4]))  # [B, T, h, w, C]
    t = t.to(s.dtype)
    loss = 1.0 - F.cosine_similarity(s, t, dim=-1, eps=eps)  # [B, T, h, w]
    if scale_weight:
        log_ratio = torch.log(s.norm(dim=-1) + eps) - torch.log(t.norm(dim=-1) + eps)
        loss = loss + scale_weight * log_ratio.square()
    if reduction == "none":
        return loss if mask is None else loss * mask
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if mask is None:
        return loss.mean()
    weights = mask.to(loss.dtype).expand_as(loss)
    return (loss * weights).sum() / weights.sum().clamp_min(eps)
