"""Learning curves of the shipped model's recipe and of variants (held-out AUC@30, RRA@30, RTA@30, AbsRel).

Two modes:

- ``run``: train a variant config for ``--steps`` steps (the schedule of its own
  ``run.max_steps``, so curves of different lengths are comparable step by step)
  and validate every ``--every`` steps on the config's validation scenes::

      python benchmarks/learning_curves.py run --config configs/variants/joint_l1.yaml --steps 500 \\
          --out benchmarks/results/learning_curves_joint_l1.json

- ``plot``: read the validation lines of training logs (``vggt3d train`` output)
  and variant JSON files into one ``learning_curves.json`` and a PNG::

      python benchmarks/learning_curves.py plot --log main=runs/tiny-synthetic-main.log \\
          --json benchmarks/results/learning_curves_joint_l1.json --out benchmarks/results/learning_curves

Metrics come from :meth:`vggt3d.training.Trainer.validate`: pairs of all frames
of each validation sequence (8 frames of held-out seed-1 scenes in the configs).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import tempfile
import time
from pathlib import Path

METRICS = ("auc30", "rra30", "rta30", "abs_rel")
_VAL = re.compile(r"validation at step (\d+): (.*)$")


def run_variant(config: str, steps: int, every: int, overrides: list[str]) -> list[dict]:
    """Train ``config`` for ``steps`` steps; validation metrics every ``every`` steps."""
    from vggt3d.training.config import load_config
    from vggt3d.training.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(config, [f"run.output_dir={tmp}", "run.val_every=0", "run.ckpt_every=1000000",
                                   "run.image_every=0", "run.progress=false", "run.export_final=false", *overrides])
        trainer = Trainer(cfg)
        history, start = [], time.perf_counter()
        while trainer.step < steps:
            trainer.train_step(next(trainer.stream))
            trainer.step += 1
            if trainer.step % every == 0:
                values = trainer.validate()
                history.append({"step": trainer.step, "seconds": round(time.perf_counter() - start, 1),
                                **{k: values[k] for k in METRICS if k in values}})
                logging.info("%s", history[-1])
        if trainer._writer is not None:
            trainer._writer.close()
    return history


def parse_log(path: str | Path) -> list[dict]:
    """Validation metrics per step from a ``vggt3d train`` log."""
    out = []
    for line in Path(path).read_text(errors="replace").replace("\r", "\n").splitlines():
        m = _VAL.search(line)
        if m:
            values = dict(zip(m.group(2).split()[::2], m.group(2).split()[1::2]))
            out.append({"step": int(m.group(1)), **{k: float(values[k]) for k in METRICS if k in values}})
    return out


def plot(curves: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
    titles = {"auc30": "AUC@30", "rra30": "RRA@30", "rta30": "RTA@30", "abs_rel": "depth AbsRel (lower is better)"}
    for ax, key in zip(axes, METRICS):
        for name, hist in curves.items():
            pts = [(h["step"], h[key]) for h in hist if key in h]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, label=name)
        ax.set_title(titles[key])
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if key != "abs_rel":
            ax.set_ylim(0, 1)  # fractions: the full range, so that noise around the identity stays flat
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    fig.suptitle("held-out validation (8 frames, synthetic seed 1)")
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("run")
    r.add_argument("--config", required=True)
    r.add_argument("--steps", type=int, default=500)
    r.add_argument("--every", type=int, default=250)
    r.add_argument("--name", default=None)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("overrides", nargs="*")
    q = sub.add_parser("plot")
    q.add_argument("--log", action="append", default=[], help="NAME=PATH of a vggt3d train log")
    q.add_argument("--json", action="append", default=[],
                   help="a JSON file written by the run mode, or an earlier output of this mode (all its curves)")
    q.add_argument("--out", type=Path, required=True, help="output stem: STEM.json and STEM.png")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if a.mode == "run":
        hist = run_variant(a.config, a.steps, a.every, a.overrides)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"name": a.name or Path(a.config).stem, "config": a.config,
                                     "overrides": a.overrides, "steps": a.steps, "history": hist}, indent=1))
        return
    curves: dict[str, list[dict]] = {}
    sources: dict[str, str] = {}
    for item in a.log:
        name, _, path = item.partition("=")
        curves[name], sources[name] = parse_log(path), path
    for path in a.json:
        data = json.loads(Path(path).read_text())
        if "curves" in data:  # an earlier output of this mode: keep its curves and their sources
            for name, hist in data["curves"].items():
                curves[name], sources[name] = hist, data.get("sources", {}).get(name, path)
        else:
            curves[data["name"]], sources[data["name"]] = data["history"], path
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps({"metrics": list(METRICS), "sources": sources,
                                                      "curves": curves}, indent=1))
    plot(curves, a.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
