"""Overfit check (:mod:`vggt3d.training.overfit`): the real trainer and data path on fixed synthetic scenes.

Trains ``configs/variants/joint_l1.yaml`` (plus overrides) on ``--scenes`` fixed
scenes of ``--frames`` frames without augmentation and reports, every
``--every`` steps, the pair rotation / translation-direction errors (degrees)
and the depth AbsRel on those same scenes::

    OMP_NUM_THREADS=1 python benchmarks/overfit.py --steps 300 --out benchmarks/results/overfit.json
    python benchmarks/overfit.py --steps 300 model.init_layer_scale=0.1     # any config override
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from vggt3d.training.overfit import overfit

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "configs" / "variants" / "joint_l1.yaml"))
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
    hist = overfit(a.config, a.steps, a.scenes, a.frames, a.size, a.seed, a.every,
                   [*a.overrides, f"accel.num_threads={a.threads}"])
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        cmd = (f"python benchmarks/overfit.py --steps {a.steps} --scenes {a.scenes} --frames {a.frames} "
               f"--size {a.size} --seed {a.seed} " + " ".join(a.overrides))
        a.out.write_text(json.dumps({"command": cmd.strip(), "history": hist}, indent=1))


if __name__ == "__main__":
    main()
