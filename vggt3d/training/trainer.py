"""The training loop on ``accelerate``: one CPU, one GPU, DDP or FSDP (``accelerate launch``).

Step order (TRAINING.md 5): zero the gradients; for each micro-batch (the batch
split along B), forward under autocast (heads in fp32), loss, backward; set the
learning rate; unscale; clip each module group; optimizer step. A non-finite
loss or gradient skips the whole step (counted in ``skipped_steps``); nothing
is applied.

Checkpoints (:mod:`vggt3d.training.checkpoint`) hold the model, optimizer,
schedule, grad scaler, step, counters, every process's RNG states and the data
position, so ``--resume`` continues exactly where the run stopped.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from vggt3d.model import VGGT3D

from . import checkpoint as ckpt
from .batch import num_images, prepare_batch, slice_batch
from .config import TrainConfig
from .losses import MultitaskLoss
from .optim import WarmupCosineSchedule, apply_freezing, build_optimizer, clip_gradients, clip_groups, frozen_modules
from .setup import BatchStream, build_accelerator, build_loader, build_model

__all__ = ["BatchStream", "Trainer", "build_accelerator", "build_loader", "build_model"]

log = logging.getLogger(__name__)


class Trainer:
    """Trains a :class:`vggt3d.VGGT3D` as ``cfg`` says.

    ``model``, ``train_loader`` and ``val_loader`` may be given (tests do);
    by default they are built from ``cfg`` (:func:`build_model`,
    :func:`build_loader`). ``fit()`` runs to ``cfg.run.max_steps`` and returns a
    summary dict.
    """

    def __init__(self, cfg: TrainConfig, *, model: VGGT3D | None = None, train_loader: Iterable | None = None,
                 val_loader: Iterable | None = None, accelerator=None) -> None:
        from accelerate.utils import set_seed

        self.cfg = cfg
        if cfg.accel.num_threads is not None:
            torch.set_num_threads(cfg.accel.num_threads)
        self.accelerator = accelerator or build_accelerator(cfg)
        acc = self.accelerator
        self.run_dir = cfg.run_dir
        set_seed(cfg.run.seed)  # same model init on every process
        model = model if model is not None else build_model(cfg)
        self.counts = apply_freezing(model, cfg.optim.freeze, cfg.optim.train_heads)
        self.train_heads = [h for h in cfg.optim.train_heads if h in model.config.heads]
        if not self.train_heads:
            raise ValueError(f"none of optim.train_heads {cfg.optim.train_heads} exists in the model "
                             f"(heads {model.config.heads})")
        self.frozen = frozen_modules(model)
        model.set_grad_checkpointing(cfg.model.grad_checkpointing and "aggregator" not in self.frozen)
        self.clip = clip_groups(model, cfg.optim.grad_clip)
        optimizer = build_optimizer(model, cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.betas, cfg.optim.eps,
                                    cfg.optim.no_decay_1d)
        self.model, self.optimizer = acc.prepare(model, optimizer)
        if acc.distributed_type.name == "FSDP":  # parameters were re-wrapped
            self.clip = None
        self.schedule = WarmupCosineSchedule(self.optimizer, cfg.run.max_steps, cfg.optim.lr, cfg.optim.warmup,
                                             cfg.optim.start_lr, cfg.optim.final_lr)
        self.loss_fn = MultitaskLoss(cfg.loss, self.train_heads)
        self.distill = None
        if cfg.distill.enabled:  # a frozen teacher; the student may run causally
            from .distill import Distillation

            self.distill = Distillation(cfg.distill, cfg.loss, self.train_heads, default_source=cfg.model.pretrained,
                                        device=acc.device)
        set_seed(cfg.run.seed + acc.process_index)  # per-process randomness from here on
        tracks = cfg.data.track_queries if "track" in self.train_heads else 0
        if train_loader is None:  # each process draws its own data order
            train_loader = build_loader(cfg, "train", cfg.run.seed + 1000 * acc.process_index, tracks,
                                        model.config.patch_size)
        if val_loader is None and cfg.data.val:
            val_loader = build_loader(cfg, "val", cfg.run.seed + 1 + 1000 * acc.process_index, tracks,
                                      model.config.patch_size)
        self.stream = BatchStream(train_loader)
        self.val_loader = val_loader
        self.checkpoints = ckpt.CheckpointManager(self.run_dir / "checkpoints", cfg.run.keep_last, cfg.run.best_mode)
        self.step = 0
        self.skipped_steps = 0
        self.images_seen = 0
        self.best_value: float | None = None
        self.history: list[dict] = []  # per-step losses of this process (tests compare them)
        self._writer = None

    # -------------------------------------------------------------------------------------- helpers
    @property
    def unwrapped(self) -> VGGT3D:
        return self.accelerator.unwrap_model(self.model)

    @property
    def writer(self):
        if self._writer is None and self.accelerator.is_main_process:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        return self._writer

    def _any_process(self, flag: bool) -> bool:
        """True if ``flag`` holds on any process (so every process takes the same branch)."""
        if self.accelerator.num_processes == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.accelerator.device)
        return bool(self.accelerator.reduce(t, reduction="sum").item() > 0)

    def _set_train_mode(self) -> None:
        self.model.train()
        for name in self.frozen:  # frozen modules stay in eval(): no dropout, no checkpointing
            getattr(self.unwrapped, name).eval()

    def _forward_loss(self, batch: Mapping[str, Any], model: nn.Module | None = None):
        """``(losses, predictions)`` of ``batch``; ``model`` defaults to the (possibly DDP-wrapped) training model."""
        queries = batch.get("query_points") if "track" in self.train_heads else None
        kwargs = self.distill.student_kwargs if self.distill is not None else {}
        with self.accelerator.autocast():
            # precision=None: autocast comes from accelerate (mixed_precision); heads always run in fp32
            predictions = (model or self.model)(batch["images"], query_points=queries, precision=None, **kwargs)
            targets = self.distill.targets(batch["images"]) if self.distill is not None else None
        if self.distill is not None:
            return self.distill(predictions, batch, self.loss_fn, targets), predictions
        return self.loss_fn(predictions, batch), predictions

    # ------------------------------------------------------------------------------------ one step
    def train_step(self, raw_batch: Mapping[str, Any]) -> dict[str, float]:
        """One optimizer step on ``raw_batch``; returns the logged values (``skipped`` = 1.0 when skipped)."""
        acc, cfg = self.accelerator, self.cfg
        batch = prepare_batch(raw_batch, acc.device, cfg.data.track_queries if "track" in self.train_heads else 0)
        self._set_train_mode()
        self.optimizer.zero_grad(set_to_none=True)
        B = batch["images"].shape[0]
        chunks = min(cfg.optim.accum_steps, B)
        if acc.num_processes > 1:  # the same number of backward passes (gradient all-reduces) on every process
            chunks = int(acc.gather(torch.tensor([chunks], device=acc.device)).min())
        size = B // chunks
        totals: dict[str, float] = {}
        finite = True
        predictions = None
        for c in range(chunks):
            part = slice_batch(batch, c * size, (c + 1) * size) if chunks > 1 else batch
            sync = contextlib.nullcontext() if c == chunks - 1 or acc.num_processes == 1 else acc.no_sync(self.model)
            with sync:
                losses, predictions = self._forward_loss(part)
                objective = losses["objective"]
                if self._any_process(not bool(torch.isfinite(objective.detach()))):
                    finite = False
                    break
                acc.backward(objective / chunks)
            for k, v in losses.items():
                totals[k] = totals.get(k, 0.0) + float(v.detach()) / chunks
        lr = self.schedule.set_lr()
        norms: dict[str, float] = {}
        if finite:
            acc.unscale_gradients()
            if self.clip is not None:
                norms = clip_gradients(self.clip)
            else:
                max_norm = min((v for v in cfg.optim.grad_clip.values() if v), default=0.0)
                total = acc.clip_grad_norm_(self.model.parameters(), max_norm) if max_norm else None
                norms = {"total": float(total)} if total is not None else {}
            grads_ok = all(math.isfinite(v) for v in norms.values())
            scaler_handles_it = acc.scaler is not None  # fp16: the scaler skips non-finite steps itself
            if grads_ok or scaler_handles_it:
                self.optimizer.step()
                if acc.optimizer_step_was_skipped:
                    finite = False
            else:
                finite = False
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step()
        if not finite:
            self.skipped_steps += 1
        out = {**totals, "lr": lr, "skipped": 0.0 if finite else 1.0}
        out.update({f"grad_norm/{k}": v for k, v in norms.items()})
        self._last = (batch, predictions)
        return out

    # ------------------------------------------------------------------------------------- training
    def fit(self, resume: str | Path | None = None) -> dict[str, Any]:
        """Train to ``run.max_steps`` (resuming from a checkpoint if given) and return a summary."""
        from tqdm.auto import tqdm

        acc, cfg = self.accelerator, self.cfg
        if resume is not None:
            self.load_checkpoint(self.checkpoints.resolve(resume))
        if acc.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            cfg.to_yaml(self.run_dir / "config.yaml")
            log.info("run %s: %d trainable / %d frozen parameters, heads trained %s, device %s, precision %s, "
                     "%d process(es)", self.run_dir, self.counts["trainable"], self.counts["frozen"], self.train_heads,
                     acc.device, acc.mixed_precision, acc.num_processes)
        bar = tqdm(total=cfg.run.max_steps, initial=self.step, disable=not (cfg.run.progress and acc.is_main_process),
                   dynamic_ncols=True, desc="train", unit="step", mininterval=2.0)
        window_images, window_start = 0, time.perf_counter()
        start_step, start_time = self.step, time.perf_counter()
        last: dict[str, float] = {}
        while self.step < cfg.run.max_steps:
            raw = next(self.stream)
            values = self.train_step(raw)
            self.step += 1
            n = num_images(raw) * acc.num_processes
            self.images_seen += n
            window_images += n
            self.history.append({"step": self.step, **values})
            last = values
            now = time.perf_counter()
            ips = window_images / max(now - window_start, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{values.get('objective', float('nan')):.4f}", img_s=f"{ips:.1f}",
                            skipped=self.skipped_steps, refresh=False)
            if self.step % cfg.run.log_every == 0 or self.step == cfg.run.max_steps:
                eta = (now - start_time) / max(self.step - start_step, 1) * (cfg.run.max_steps - self.step)
                self._log_scalars("train", values, extra={"images_per_s": ips, "skipped_steps": self.skipped_steps,
                                                         "epoch": self.stream.epoch})
                if acc.is_main_process:
                    log.info("step %d/%d  loss %.4f  %s  lr %.3g  %.2f img/s  skipped %d  eta %s", self.step,
                             cfg.run.max_steps, values.get("objective", float("nan")),
                             " ".join(f"{k[5:]} {v:.3f}" for k, v in values.items() if k.startswith("loss_")),
                             values["lr"], ips, self.skipped_steps, _fmt_time(eta))
                window_images, window_start = 0, now
            if cfg.run.image_every and self.step % cfg.run.image_every == 0:
                self._log_panels()
            val = None
            if self.val_loader is not None and (
                    (cfg.run.val_every and self.step % cfg.run.val_every == 0) or self.step == cfg.run.max_steps):
                val = self.validate()
            if self.step % cfg.run.ckpt_every == 0 or self.step == cfg.run.max_steps:
                self.save_checkpoint(val)
        bar.close()
        summary = {"step": self.step, "skipped_steps": self.skipped_steps, "images_seen": self.images_seen,
                   "last": last, "best": self.checkpoints.best(), "run_dir": str(self.run_dir)}
        if cfg.run.export_final and acc.is_main_process:
            self.unwrapped.save_pretrained(self.run_dir / "final")
            summary["final"] = str(self.run_dir / "final")
        acc.wait_for_everyone()
        if self._writer is not None:
            self._writer.flush()
        return summary

    # ----------------------------------------------------------------------------------- validation
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean losses and quick metrics (depth AbsRel, camera AUC@30, RRA@30, RTA@30) over ``run.val_batches`` batches."""
        from vggt3d.geometry import pose_encoding_to_cameras
        from vggt3d.metrics import auc, camera_pair_errors, depth_metrics

        acc, cfg = self.accelerator, self.cfg
        fsdp = acc.distributed_type.name == "FSDP"
        self.model.eval()
        sums: dict[str, float] = {}
        count = 0
        rot_errors, trans_errors, abs_rel = [], [], []
        if hasattr(self.val_loader, "set_epoch"):
            self.val_loader.set_epoch(0)  # the same validation batches every time
        iterator = iter(self.val_loader)
        for i in range(cfg.run.val_batches):
            try:
                raw = next(iterator)
            except StopIteration:
                break
            batch = prepare_batch(raw, acc.device, cfg.data.track_queries if "track" in self.train_heads else 0)
            # the unwrapped model: no DDP synchronisation, processes may run different numbers of batches
            losses, pred = self._forward_loss(batch, self.unwrapped if not fsdp else self.model)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            count += 1
            H, W = batch["images"].shape[-2:]
            for b in range(batch["images"].shape[0]):
                if "pose_enc" in pred:
                    cams, _ = pose_encoding_to_cameras(pred["pose_enc"][b].float(), (H, W))
                    r, t = camera_pair_errors(cams.cpu(), batch["cam_from_world"][b].cpu())
                    rot_errors.append(r)
                    trans_errors.append(t)
                if "depth" in pred:
                    abs_rel.append(depth_metrics(pred["depth"][b].cpu(), batch["depths"][b].cpu(),
                                                 batch["point_masks"][b].cpu())["abs_rel"])
        self._set_train_mode()
        out = {("loss" if k == "objective" else k): v / count for k, v in sums.items()} if count else {}
        if rot_errors:
            rot, trans = torch.cat(rot_errors), torch.cat(trans_errors)
            out["auc30"] = auc(rot, trans, 30)[0]
            out["rra30"] = float((rot < 30).float().mean())
            out["rta30"] = float((trans < 30).float().mean())
        good = [v for v in abs_rel if not math.isnan(v)]
        if good:
            out["abs_rel"] = sum(good) / len(good)
        if acc.num_processes > 1:  # average each value over the processes that have it
            from accelerate.utils import gather_object

            parts = gather_object([out])
            keys = sorted({k for p in parts for k in p})
            out = {k: sum(p[k] for p in parts if k in p) / sum(1 for p in parts if k in p) for k in keys}
        if not out:
            return {}
        self._log_scalars("val", out)
        if acc.is_main_process:
            log.info("validation at step %d: %s", self.step, "  ".join(f"{k} {v:.4f}" for k, v in sorted(out.items())))
        return out

    # ---------------------------------------------------------------------------------------- logging
    def _log_scalars(self, prefix: str, values: Mapping[str, float], extra: Mapping[str, float] | None = None) -> None:
        w = self.writer
        if w is None:
            return
        for k, v in {**values, **(extra or {})}.items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                w.add_scalar(f"{prefix}/{k}", v, self.step)

    def _log_panels(self) -> None:
        w = self.writer
        last = getattr(self, "_last", None)
        if w is None or last is None or last[1] is None or "depth" not in last[1]:
            return
        from .visualize import depth_panel

        batch, pred = last
        w.add_image("panels/depth", depth_panel(batch, pred), self.step, dataformats="HWC")

    # ------------------------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, val: Mapping[str, float] | None = None) -> Path | None:
        """Write a checkpoint of the current step (collective: every process calls it)."""
        acc, cfg = self.accelerator, self.cfg
        metric = (val or {}).get(cfg.run.best_metric)
        is_best = metric is not None and self.checkpoints.is_better(metric, self.best_value)
        if is_best:
            self.best_value = metric
        tmp = self.checkpoints.directory / f".tmp-{ckpt.step_dir_name(self.step)}"
        if acc.is_main_process:
            tmp = self.checkpoints.begin(self.step)
        acc.wait_for_everyone()
        ckpt.save_torch({"rng": ckpt.rng_state(), "data": self.stream.state_dict()},
                        tmp / f"rank-{acc.process_index}.pt")
        fsdp = acc.distributed_type.name == "FSDP"
        if fsdp:
            acc.save_state(str(tmp / "accelerate"))
        state_dict = acc.get_state_dict(self.model)
        final = None
        if acc.is_main_process:
            from safetensors.torch import save_file

            save_file({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, tmp / "model.safetensors",
                      metadata={"format": "pt"})
            self.unwrapped.config.to_json(tmp / "config.json")
            cfg.to_yaml(tmp / "train_config.yaml")
            state = {
                "step": self.step, "skipped_steps": self.skipped_steps, "images_seen": self.images_seen,
                "best_value": self.best_value, "schedule": self.schedule.state_dict(),
                "optimizer": None if fsdp else self.optimizer.state_dict(),
                "scaler": acc.scaler.state_dict() if acc.scaler is not None else None,
                "val": dict(val or {}), "num_processes": acc.num_processes,
            }
            ckpt.save_torch(state, tmp / ckpt.TRAINING_STATE)
            final = self.checkpoints.commit(self.step, tmp)
            if is_best:
                self.checkpoints.record_best(self.step, metric)
                self.checkpoints.prune()
            log.info("checkpoint %s%s", final, " (best)" if is_best else "")
        acc.wait_for_everyone()
        return final

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore model, optimizer, schedule, scaler, counters, RNG states and data position from ``path``."""
        from safetensors.torch import load_file

        acc = self.accelerator
        path = Path(path)
        state, rank_state = ckpt.load_training_state(path, acc.process_index)
        if state.get("num_processes", 1) != acc.num_processes:
            log.warning("checkpoint %s was written by %d processes, resuming with %d: RNG and data order differ",
                        path, state.get("num_processes", 1), acc.num_processes)
        if acc.distributed_type.name == "FSDP":
            acc.load_state(str(path / "accelerate"))
        else:
            weights = load_file(path / "model.safetensors")
            self.unwrapped.load_state_dict(weights, strict=True)
            self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if acc.scaler is not None and state.get("scaler") is not None:
            acc.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.skipped_steps = int(state["skipped_steps"])
        self.images_seen = int(state.get("images_seen", 0))
        self.best_value = state.get("best_value")
        if rank_state is not None:
            ckpt.set_rng_state(rank_state["rng"])
            self.stream.load_state_dict(rank_state["data"])
        if acc.is_main_process:
            log.info("resumed from %s at step %d", path, self.step)


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}"
