"""Causal fine-tuning by distillation: a causal student learns from a bidirectional teacher (and ground truth).

Enabled by the ``distill`` section of a training config (``configs/distill_causal.yaml``)::

    distill:
      enabled: true
      teacher: null          # any VGGT3D.from_pretrained source; null = model.pretrained (the student's start)
      student_causal: true   # the student runs model(images, causal=True): frame t sees frames 0..t
      teacher_weight: 1.0    # weight of the loss against the teacher's outputs
      gt_weight: 1.0         # weight of the usual loss against ground truth (0: teacher only)

The teacher runs once per batch, frozen (eval mode, no gradient, under the
same autocast as the student) on the same images, bidirectionally. Its
outputs become pseudo ground truth for the same losses as training
(:class:`vggt3d.training.losses.MultitaskLoss` with ``loss.*``): its pose
encodings for the camera loss, its depth (and point maps) for the
confidence-weighted dense losses on every pixel where they are finite and
positive. Both models predict in the normalised frame-0 scale of training,
so no alignment is needed. The objective is ``gt_weight * L(student, ground
truth) + teacher_weight * L(student, teacher)``; the teacher's terms are logged
with a ``teacher/`` prefix.

Everything else is the ordinary trainer: checkpoints hold the student only
(the teacher is reloaded from its source on ``--resume``), accelerate handles
devices and precision, and validation measures the causal student against
ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from vggt3d.config import ConfigError

from .losses import LossConfig, MultitaskLoss

__all__ = ["DistillConfig", "Distillation", "teacher_targets"]


@dataclass
class DistillConfig:
    """The ``distill`` section of a training config (see the module docstring)."""

    enabled: bool = False
    #: a ``VGGT3D.from_pretrained`` source; None = ``model.pretrained``
    teacher: str | None = None
    #: run the student with causal global attention (frame t attends to frames <= t)
    student_causal: bool = True
    #: weight of the loss against the teacher's outputs
    teacher_weight: float = 1.0
    #: weight of the usual loss against ground truth
    gt_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.teacher_weight < 0 or self.gt_weight < 0:
            raise ConfigError(f"distill.teacher_weight and distill.gt_weight must be >= 0, got "
                              f"{self.teacher_weight} and {self.gt_weight}")
        if self.enabled and self.teacher_weight == 0 and self.gt_weight == 0:
            raise ConfigError("distill: teacher_weight and gt_weight are both 0, nothing would be learned")


def teacher_targets(teacher_out: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Pseudo ground truth in the keys of a training batch from a teacher's outputs (detached, fp32).

    ``gt_pose_enc [B, S, 9]``, ``depths [B, S, H, W]``, ``point_masks [B, S,
    H, W]`` (finite, positive teacher depth) and ``world_points [B, S, H, W,
    3]`` where the teacher has a point head.
    """
    out: dict[str, Tensor] = {}
    if "pose_enc" in teacher_out:
        out["gt_pose_enc"] = teacher_out["pose_enc"].detach().float()
    if "depth" in teacher_out:
        depth = teacher_out["depth"].detach().float()[..., 0]  # [B, S, H, W]
        out["depths"] = depth
        out["point_masks"] = torch.isfinite(depth) & (depth > 0)
    if "world_points" in teacher_out:
        points = teacher_out["world_points"].detach().float()  # [B, S, H, W, 3]
        out["world_points"] = points
        finite = torch.isfinite(points).all(-1)
        out["point_masks"] = out["point_masks"] & finite if "point_masks" in out else finite
    return out


class Distillation:
    """The frozen teacher and the combined objective.

    Args:
        config: the ``distill`` section.
        loss: the ``loss`` section (the same losses serve ground truth and teacher).
        heads: the trained heads; each must exist in the teacher.
        teacher: the teacher model (tests pass one); default: loaded from
            ``config.teacher`` or ``default_source``.
        default_source: ``model.pretrained`` of the run.
    """

    def __init__(self, config: DistillConfig, loss: LossConfig, heads: list[str], *, teacher: nn.Module | None = None,
                 default_source: str | None = None, device: torch.device | str = "cpu") -> None:
        self.config = config
        if teacher is None:
            source = config.teacher or default_source
            if source is None:
                raise ConfigError("distill.teacher is not set and there is no model.pretrained to use as the teacher; "
                                  "set distill.teacher to a checkpoint (e.g. tiny-synthetic or facebook/VGGT-1B)")
            from vggt3d.model import VGGT3D

            teacher = VGGT3D.from_pretrained(source, device=device)
        missing = [h for h in heads if getattr(teacher, f"{h}_head", None) is None]
        if missing:
            raise ConfigError(f"distill: the teacher has no {', '.join(missing)} head for the trained heads {heads}; "
                              f"drop them from optim.train_heads or use another teacher")
        self.teacher = teacher.to(device).eval().requires_grad_(False)
        self.teacher_loss = MultitaskLoss(loss, [h for h in heads if h != "track"])
        self.student_kwargs: dict[str, Any] = {"causal": True} if config.student_causal else {}

    @torch.no_grad()
    def targets(self, images: Tensor) -> dict[str, Tensor]:
        """The teacher's pseudo ground truth for ``images [B, S, 3, H, W]`` (bidirectional, no gradient)."""
        self.teacher.eval()
        return teacher_targets(self.teacher(images, precision=None))  # the caller's (accelerate's) autocast

    def __call__(self, predictions: Mapping[str, Tensor], batch: Mapping[str, Any], gt_loss: MultitaskLoss,
                 targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """All loss terms: ground-truth terms as usual, teacher terms prefixed ``teacher/``, and ``objective``."""
        c = self.config
        out: dict[str, Tensor] = {}
        objective = None
        if c.gt_weight > 0:
            gt = gt_loss(predictions, batch)
            objective = c.gt_weight * gt.pop("objective")
            out.update(gt)
        if c.teacher_weight > 0:
            pseudo = {**batch, **targets}
            if "point_masks" not in targets:  # camera only: the GT mask only gates the camera loss by frame 0
                pseudo["point_masks"] = torch.ones_like(batch["point_masks"], dtype=torch.bool)
            terms = self.teacher_loss(predictions, pseudo)
            part = c.teacher_weight * terms.pop("objective")
            out.update({f"teacher/{k}": v for k, v in terms.items()})
            out["teacher/objective"] = part.detach()
            objective = part if objective is None else objective + part
        out["objective"] = objective
        return out
