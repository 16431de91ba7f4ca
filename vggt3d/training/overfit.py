"""Overfit check: the real trainer, model, loss and data path on 1-2 fixed synthetic scenes.

A model that cannot memorise a handful of fixed frames will not learn from many,
so this is the first thing to run after changing the model, the losses, the
pose encoding or the data path (``tests/training/test_overfit.py`` keeps it as a
slow test; ``benchmarks/overfit.py`` prints the curve).

The scenes are rendered with their own frames in their own order (frame 0 is
the reference), validation processing (no augmentation) and the training
normalisation, then fed to :class:`~vggt3d.training.Trainer` as a one-batch loader.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch

log = logging.getLogger(__name__)

__all__ = ["fixed_scene_errors", "overfit"]


@torch.no_grad()
def fixed_scene_errors(model, batch) -> dict[str, float]:
    """Pair rotation / translation-direction errors (degrees, all frame pairs) and depth AbsRel.

    ``batch`` is a :func:`~vggt3d.training.batch.prepare_batch` output; errors are the
    mean and max over pairs of every sequence, AbsRel the mean over frames
    (median-aligned, as :func:`vggt3d.metrics.depth_metrics`).
    """
    from vggt3d.geometry import pose_encoding_to_cameras
    from vggt3d.metrics import camera_pair_errors, depth_metrics

    was_training = model.training
    model.eval()
    pred = model(batch["images"])
    model.train(was_training)
    H, W = batch["images"].shape[-2:]
    rot, trans, rel = [], [], []
    for b in range(batch["images"].shape[0]):
        cams, _ = pose_encoding_to_cameras(pred["pose_enc"][b].float(), (H, W))
        r, t = camera_pair_errors(cams, batch["cam_from_world"][b])
        rot.append(r)
        trans.append(t)
        rel.append(depth_metrics(pred["depth"][b], batch["depths"][b], batch["point_masks"][b])["abs_rel"])
    rot_all, trans_all = torch.cat(rot), torch.cat(trans)
    return {"rot_err_mean": float(rot_all.mean()), "rot_err_max": float(rot_all.max()),
            "trans_err_mean": float(trans_all.mean()), "trans_err_max": float(trans_all.max()),
            "abs_rel": float(sum(rel) / len(rel))}


def overfit(config: str | Path, steps: int = 300, scenes: int = 1, frames: int = 4, size: int = 112, seed: int = 3,
            every: int = 50, overrides: Sequence[str] = ()) -> list[dict]:
    """Train ``config`` (plus ``overrides``) on ``scenes`` fixed scenes; returns the metric history.

    One entry per ``every`` steps (and the last step): :func:`fixed_scene_errors`
    plus ``step``, ``seconds`` and the step's losses. The schedule is the
    config's with ``run.max_steps = steps``.
    """
    from vggt3d.data import build_dataset, collate_samples, normalize_sample

    from .batch import prepare_batch
    from .config import load_config
    from .trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(config, [f"run.output_dir={tmp}", "run.name=overfit", f"run.max_steps={steps}",
                                   "run.val_every=0", "run.ckpt_every=1000000", "run.image_every=0",
                                   "run.progress=false", "run.export_final=false", *overrides])
        ds = build_dataset("synthetic", num_scenes=scenes, num_frames=frames, image_size=[size, size], seed=seed)
        batch = collate_samples([normalize_sample(ds.get_sample(i, ds.default_frame_ids(i), (size, size)))
                                 for i in range(scenes)])
        fixed = prepare_batch(batch)
        trainer = Trainer(cfg, train_loader=[batch], val_loader=None)  # every "epoch" is the same batch
        history: list[dict] = []
        start = time.perf_counter()
        while trainer.step < steps:
            values = trainer.train_step(next(trainer.stream))
            trainer.step += 1
            if trainer.step % every == 0 or trainer.step == steps:
                entry = fixed_scene_errors(trainer.unwrapped, fixed)
                entry.update(step=trainer.step, seconds=round(time.perf_counter() - start, 1),
                             **{k: v for k, v in values.items() if k in ("objective", "loss_T", "loss_R", "loss_FL")})
                history.append(entry)
                log.info("overfit step %d: %s", trainer.step, {k: round(v, 4) for k, v in entry.items()})
        return history
