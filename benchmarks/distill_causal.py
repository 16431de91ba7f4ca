"""Causal distillation demo: held-out metrics of the bidirectional model, the same model run causally, and the
causal student after distillation, side by side.

    vggt3d train --config configs/distill_causal.yaml                       # writes runs/distill-causal/final
    python benchmarks/distill_causal.py --teacher tiny-synthetic --student runs/distill-causal/final \
        --out benchmarks/results/distill_causal_cpu.json

Each model is evaluated with :func:`vggt3d.evaluation.evaluate` on the same
held-out synthetic scenes (``--num-scenes`` scenes of ``--num-frames`` frames,
seed 1: the validation scenes, never trained on) at 112x112, the cameras and
depth of every frame (the ``vggt3d evaluate`` protocol: camera pair AUC and
relative rotation / translation accuracy, depth AbsRel and delta < 1.25 after
per-frame median scaling). The same numbers come from ``vggt3d evaluate
--data synthetic --data-arg num_scenes=32 --data-arg seed=1 --data-arg
num_frames=8 --data-arg image_size=[112,112] --weights W [--causal]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

METRICS = ("AUC@30", "RRA@30", "RTA@30", "ATE", "abs_rel", "delta_1.25")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", default="tiny-synthetic", help="the bidirectional model (from_pretrained source)")
    ap.add_argument("--student", required=True, help="the distilled causal model")
    ap.add_argument("--num-scenes", type=int, default=32)
    ap.add_argument("--num-frames", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from vggt3d import VGGT3D
    from vggt3d.data import build_dataset
    from vggt3d.evaluation import EvalSettings, evaluate

    dataset = build_dataset("synthetic", num_scenes=args.num_scenes, seed=1, num_frames=args.num_frames,
                            image_size=[112, 112])
    runs = {"bidirectional": (args.teacher, False), "causal, no fine-tuning": (args.teacher, True),
            "causal, distilled": (args.student, True)}
    rows = {}
    for name, (weights, causal) in runs.items():
        model = VGGT3D.from_pretrained(weights)
        result = evaluate(model, dataset, EvalSettings(causal=causal))
        mean = result.to_dict()["mean"]["model"]
        rows[name] = {"weights": weights, "causal": causal, **{k: mean.get(k) for k in METRICS}}
        print(name, json.dumps(rows[name]), flush=True)
    header = "| model | weights | AUC@30 (%) | RRA@30 (%) | RTA@30 (%) | ATE | Depth AbsRel | δ<1.25 (%) |"
    lines = [header, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in rows.items():
        lines.append(f"| {name} | `{r['weights']}` | {100 * r['AUC@30']:.1f} | {100 * r['RRA@30']:.1f} | "
                     f"{100 * r['RTA@30']:.1f} | {r['ATE']:.3f} | {r['abs_rel']:.3f} | {100 * r['delta_1.25']:.1f} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": " ".join(["python"] + sys.argv), "scenes": args.num_scenes,
                                        "frames": args.num_frames, "image_size": [112, 112], "seed": 1,
                                        "torch": torch.__version__, "machine": platform.machine(),
                                        "rows": rows, "table": table}, indent=2) + "\n")


if __name__ == "__main__":
    main()
