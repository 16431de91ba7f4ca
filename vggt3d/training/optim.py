"""Optimizer, learning-rate schedule, freezing and per-module gradient clipping."""

from __future__ import annotations

import fnmatch
import logging
import math
from typing import Iterable, Mapping, Sequence

import torch
from torch import nn

from vggt3d.config import HEAD_NAMES

log = logging.getLogger(__name__)

#: clip group -> parameter-name prefix (VGGT-1B names; a model's ``head_prefixes()`` overrides the heads')
GROUP_PREFIXES = {"aggregator": "aggregator.", **{h: f"{h}_head." for h in HEAD_NAMES}}


def _group_prefixes(model: nn.Module) -> dict[str, str]:
    """Clip group -> prefix for ``model`` (VGGT-Omega's depth head is ``dense_head.``)."""
    heads = getattr(model, "head_prefixes", None)
    return {**GROUP_PREFIXES, **heads()} if callable(heads) else dict(GROUP_PREFIXES)


def warmup_cosine_lr(step: int, total_steps: int, peak_lr: float, warmup: float = 0.05, start_lr: float = 1e-8,
                     final_lr: float = 1e-8) -> float:
    """Learning rate of optimizer step ``step`` (0-based) of ``total_steps``.

    Progress ``p = step / total_steps``. For ``p < warmup``: linear from
    ``start_lr`` to ``peak_lr``; then ``final_lr + (peak_lr - final_lr)
    (1 + cos(pi (p - warmup) / (1 - warmup))) / 2`` (TRAINING.md 5, "LR schedule").
    """
    p = min(max(step / max(total_steps, 1), 0.0), 1.0)
    if p < warmup:
        return start_lr + (peak_lr - start_lr) * p / warmup
    q = (p - warmup) / (1.0 - warmup)
    return final_lr + 0.5 * (peak_lr - final_lr) * (1.0 + math.cos(math.pi * q))


class WarmupCosineSchedule:
    """Sets the learning rate of every parameter group before each step; ``state_dict`` holds the step."""

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int, peak_lr: float, warmup: float = 0.05,
                 start_lr: float = 1e-8, final_lr: float = 1e-8) -> None:
        self.optimizer = optimizer
        self.total_steps, self.peak_lr, self.warmup = total_steps, peak_lr, warmup
        self.start_lr, self.final_lr = start_lr, final_lr
        self.step_count = 0

    def lr_at(self, step: int) -> float:
        return warmup_cosine_lr(step, self.total_steps, self.peak_lr, self.warmup, self.start_lr, self.final_lr)

    def set_lr(self) -> float:
        """Write the learning rate of the current step into the optimizer and return it."""
        lr = self.lr_at(self.step_count)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def step(self) -> None:
        self.step_count += 1

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "total_steps": self.total_steps, "peak_lr": self.peak_lr}

    def load_state_dict(self, state: Mapping) -> None:
        self.step_count = int(state["step_count"])


def apply_freezing(model: nn.Module, patterns: Sequence[str], train_heads: Sequence[str]) -> dict[str, int]:
    """Set ``requires_grad``: frozen are names matching ``patterns`` (fnmatch), heads not in ``train_heads``
    and the DINOv2 ``mask_token`` (never used). Returns counts of trainable and frozen parameters.

    Patterns that match nothing are an error (a typo would otherwise silently train everything).
    """
    names = [n for n, _ in model.named_parameters()]
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            raise ValueError(f"freeze pattern {pattern!r} matches no parameter (names look like {names[0]!r})")
    trainable = frozen = 0
    prefixes = _group_prefixes(model)
    for name, p in model.named_parameters():
        head = next((h for h in HEAD_NAMES if name.startswith(prefixes[h])), None)
        freeze = (any(fnmatch.fnmatchcase(name, pat) for pat in patterns) or name.endswith("mask_token")
                  or (head is not None and head not in train_heads))
        p.requires_grad_(not freeze)
        if freeze:
            frozen += p.numel()
        else:
            trainable += p.numel()
    if trainable == 0:
        raise ValueError("every parameter is frozen: check optim.freeze and optim.train_heads")
    return {"trainable": trainable, "frozen": frozen}


def frozen_modules(model: nn.Module) -> list[str]:
    """Top-level children (aggregator, heads) with no trainable parameter; the trainer keeps them in eval()."""
    return [name for name, child in model.named_children()
            if any(True for _ in child.parameters()) and not any(p.requires_grad for p in child.parameters())]


def build_optimizer(model: nn.Module, lr: float, weight_decay: float, betas: Sequence[float], eps: float,
                    no_decay_1d: bool = False) -> torch.optim.AdamW:
    """AdamW over the trainable parameters: one group, or two when 1-d parameters are exempt from decay."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if no_decay_1d:
        decay = [p for n, p in params if p.ndim > 1]
        rest = [p for n, p in params if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    else:
        groups = [{"params": [p for _, p in params], "weight_decay": weight_decay}]
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps)


def clip_groups(model: nn.Module,
                max_norms: Mapping[str, float | None]) -> dict[str, tuple[list[nn.Parameter], float]]:
    """Trainable parameters by clip group (aggregator, camera, depth, point, track).

    Every trainable parameter must fall in a group that has an entry in
    ``max_norms`` (the original raises for parameters outside the groups);
    a ``None`` or ``0`` norm leaves that group unclipped.
    """
    groups: dict[str, tuple[list[nn.Parameter], float]] = {}
    orphans = []
    prefixes = _group_prefixes(model)
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        group = next((g for g, prefix in prefixes.items() if name.startswith(prefix)), None)
        if group is None or group not in max_norms:
            orphans.append(name)
            continue
        groups.setdefault(group, ([], float(max_norms[group] or 0.0)))[0].append(p)
    if orphans:
        raise ValueError(f"trainable parameters outside the gradient clipping groups {sorted(max_norms)}: "
                         f"{orphans[:5]}{' ...' if len(orphans) > 5 else ''} (add the group to optim.grad_clip)")
    return groups


def clip_gradients(groups: Mapping[str, tuple[list[nn.Parameter], float]]) -> dict[str, float]:
    """Clip each group to its own max L2 norm; return each group's norm before clipping."""
    norms = {}
    for name, (params, max_norm) in groups.items():
        grads = [p for p in params if p.grad is not None]
        if not grads:
            continue
        if max_norm > 0:
            norms[name] = float(torch.nn.utils.clip_grad_norm_(grads, max_norm, norm_type=2.0))
        else:
            norms[name] = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in grads])))
    return norms


def init_vit_weights(model: nn.Module, std: float = 0.02, layer_scale: float | None = None,
                     token_std: float = 1e-6) -> nn.Module:
    """From-scratch initialisation in the DINOv2 / VGGT manner.

    Linear layers: truncated normal (std 0.02), zero bias; the encoder's
    position embedding: truncated normal (0.02); class, register, camera and
    register tokens: normal (``token_std``) so that frame 0's slot differs from the
    others'; every LayerScale ``gamma`` set to ``layer_scale`` when given.
    LayerNorms and convolutions keep their defaults.
    """
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    for name, p in model.named_parameters():
        if name.endswith("pos_embed"):
            nn.init.trunc_normal_(p, std=std)
        elif name.endswith(("cls_token", "register_tokens", "camera_token", "register_token")):
            nn.init.normal_(p, std=token_std)
        elif layer_scale is not None and name.endswith(("ls1.gamma", "ls2.gamma")):
            nn.init.constant_(p, layer_scale)
    return model


def parameter_count(params: Iterable[nn.Parameter]) -> int:
    return sum(p.numel() for p in params)
