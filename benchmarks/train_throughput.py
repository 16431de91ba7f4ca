"""Training throughput (images/s) of a training config, data excluded.

    python benchmarks/train_throughput.py --config configs/tiny_synthetic.yaml --steps 20 \
        --out benchmarks/results/train_throughput_cpu.json
    python benchmarks/train_throughput.py --config configs/tiny_synthetic.yaml --threads 2 --frames 8

One batch of the config's training data (``--frames`` frames, ``images_per_batch``
images, the config's image size) is rendered once and fed to the trainer
``--steps`` times, so the number is the optimizer-step cost alone (forward,
loss, backward, clipping, AdamW): compare it with the ``img/s`` of a real run
to see what the data loading costs. The first ``--warmup`` steps are not timed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("overrides", nargs="*", help="config overrides key.path=value")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--frames", type=int, default=None, help="frames per sequence (default: the range's maximum)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the config's)")
    ap.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = ap.parse_args()

    from vggt3d import data as vdata
    from vggt3d.training.config import load_config
    from vggt3d.training.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(args.config, [*args.overrides, f"run.output_dir={tmp}", "run.progress=false",
                                        "run.export_final=false", "data.val=[]",
                                        f"run.max_steps={args.steps + args.warmup}",
                                        f"run.ckpt_every={10 * (args.steps + args.warmup)}", "run.image_every=0"])
        if args.threads is not None:
            cfg.accel.num_threads = args.threads
        frames = args.frames or cfg.data.num_frames[1]
        entry = cfg.data.train[0]
        dataset = vdata.build_dataset(entry.name, **entry.kwargs)
        size = cfg.data.image_size if isinstance(cfg.data.image_size, int) else tuple(cfg.data.image_size)
        loader = vdata.make_dataloader(dataset, cfg.data.images_per_batch, (frames, frames), size, train=True,
                                       seed=0, normalize=True)
        batch = next(iter(loader))

        class Repeat:
            def __iter__(self):
                while True:
                    yield batch

        trainer = Trainer(cfg, train_loader=Repeat())
        times = []
        original = trainer.train_step

        def timed(raw):
            start = time.perf_counter()
            out = original(raw)
            times.append(time.perf_counter() - start)
            return out

        trainer.train_step = timed
        trainer.fit()
    steady = times[args.warmup:]
    images = int(batch["images"].shape[0] * batch["images"].shape[1])
    result = {
        "config": args.config, "overrides": args.overrides, "images_per_step": images,
        "batch_shape": list(batch["images"].shape), "steps": len(steady),
        "seconds_per_step_median": statistics.median(steady), "images_per_s": images / statistics.median(steady),
        "threads": torch.get_num_threads(), "device": str(trainer.accelerator.device),
        "precision": trainer.accelerator.mixed_precision, "torch": torch.__version__,
        "machine": platform.machine(), "processor": platform.processor() or platform.machine(),
        "trainable_parameters": trainer.counts["trainable"],
    }
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
