"""Overfit check: the real trainer and data path on 1-2 fixed synthetic scenes.

Trains ``configs/tiny_synthetic.yaml`` (plus overrides) on ``--scenes`` fixed
scenes of ``--frames`` frames without augmentation and reports, every
``--every`` steps, the relative rotation / translation-direction errors over
frame pairs (degrees) and the depth AbsRel on those same scenes.

    OMP_NUM_THREADS=1 python benchmarks/overfit.py --steps 300 --out benchmarks/results/overfit.json
    python benchmarks/overfit.py --steps 300 optim.lr=1e-3      # any config override
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import torch

from vggt3d.data import build_dataset
from vggt3d.data.loader import collate_samples
from vggt3d.data.normalize import normalize_sample
from vggt3d.geometry import pose_encoding_to_cameras
from vggt3d.metrics import camera_pair_errors, depth_metrics
from vggt3d.training.batch import prepare_batch
from vggt3d.training.config import load_config
from vggt3d.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


@torch.no_grad()
def evaluate_fixed(model, batch) -> dict[str, float]:
    """Max pair rotation / translation-direction errors (deg) and mean depth AbsRel on a prepared batch."""
    model.eval()
    pred = model(batch["images"])
    model.train()
    H, W = batch["images"].shape[-2:]
    rot, trans, rel = [], [], []
    for b in range(batch["images"].shape[0]):
        cams, _ = pose_encoding_to_cameras(pred["pose_enc"][b].float(), (H, W))
        r, t = camera_pair_errors(cams, batch["cam_from_world"][b])
        rot.append(r)
        trans.append(t)
        rel.append(depth_metrics(pred["depth"][b], batch["depths"][b], batch["point_masks"][b])["abs_rel"])
    rot, trans = torch.cat(rot), torch.cat(trans)
    return {"rot_err_max": float(rot.max()), "rot_err_mean": float(rot.mean()), "trans_err_max": float(trans.max()),
            "trans_err_mean": float(trans.mean()), "abs_rel": float(sum(rel) / len(rel))}


def run_overfit(steps: int = 300, scenes: int = 1, frames: int = 4, size: int = 112, every: int = 50,
                overrides: list[str] | None = None, seed: int = 3, run_dir: str | None = None,
                config: str | Path = ROOT / "configs" / "tiny_synthetic.yaml") -> list[dict]:
    """Train on ``scenes`` fixed scenes; returns the metric history (one entry per ``every`` steps)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(config, [f"run.output_dir={run_dir or tmp}", "run.name=overfit", f"run.max_steps={steps}",
                                   "run.val_every=0", "run.ckpt_every=100000", "run.image_every=0",
                                   "run.progress=false", "run.export_final=false", *(overrides or [])])
        kwargs = dict(num_scenes=scenes, num_frames=frames, image_size=[size, size], seed=seed)
        heads = cfg.optim.train_heads
        num_tracks = cfg.data.track_queries if "track" in heads else 0
        ds = build_dataset("synthetic", **kwargs, num_tracks=num_tracks)
        # the scenes' own frames in their own order (frame 0 first), validation processing, normalised
        batch = collate_samples([normalize_sample(ds.get_sample(i, ds.default_frame_ids(i), (size, size),
                                                                num_tracks=num_tracks)) for i in range(scenes)])
        loader = [batch]  # one fixed batch: every "epoch" is this batch again
        fixed = prepare_batch(batch)
        trainer = Trainer(cfg, train_loader=loader, val_loader=None)
        trainer._writer = None
        history = []
        start = time.perf_counter()
        while trainer.step < steps:
            values = trainer.train_step(next(trainer.stream))
            trainer.step += 1
            if trainer.step % every == 0 or trainer.step == steps:
                m = evaluate_fixed(trainer.unwrapped, fixed)
                m.update(step=trainer.step, seconds=round(time.perf_counter() - start, 1),
                         loss=values.get("objective"), loss_T=values.get("loss_T"), loss_R=values.get("loss_R"))
                history.append(m)
                logging.info("%s", {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()})
        return history


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--scenes", type=int, default=1)
    p.add_argument("--frames", type=int, default=4)
    p.add_argument("--size", type=int, default=112)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("overrides", nargs="*", help="config overrides key.path=value")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(a.threads)
    hist = run_overfit(a.steps, a.scenes, a.frames, a.size, a.every, a.overrides + [f"accel.num_threads={a.threads}"],
                       a.seed)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"command": "python benchmarks/overfit.py " + " ".join(
            f"--{k} {v}" for k, v in (("steps", a.steps), ("scenes", a.scenes), ("frames", a.frames),
                                      ("size", a.size), ("seed", a.seed))) + " " + " ".join(a.overrides),
            "history": hist}, indent=1))


if __name__ == "__main__":
    main()
