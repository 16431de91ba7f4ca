"""Training: losses, the config tree, the trainer on accelerate, checkpoints (``vggt3d train``).

Nothing here is imported by ``import vggt3d`` or the inference API.

- :mod:`vggt3d.training.losses`: camera, depth / point-map and track losses (TRAINING.md 4).
- :mod:`vggt3d.training.config`: :class:`TrainConfig`, ``load_config(path, overrides)``.
- :mod:`vggt3d.training.trainer`: :class:`Trainer` (``fit``, ``validate``, checkpoints, resume).
- :mod:`vggt3d.training.setup`: ``build_model``, ``build_loader``, ``BatchStream``, ``build_accelerator``.
- :mod:`vggt3d.training.checkpoint`: atomic checkpoints, keep last K + best.
- :mod:`vggt3d.training.optim`: AdamW, warmup + cosine, freezing, per-module clipping.
"""

from __future__ import annotations

from vggt3d._lazy import lazy_getattr

_LAZY = {
    "TrainConfig": "vggt3d.training.config",
    "load_config": "vggt3d.training.config",
    "LossConfig": "vggt3d.training.losses",
    "MultitaskLoss": "vggt3d.training.losses",
    "Trainer": "vggt3d.training.trainer",
    "CheckpointManager": "vggt3d.training.checkpoint",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
