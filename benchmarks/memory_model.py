"""Check the planner's memory model against the measured peak of a forward pass (CPU).

    OMP_NUM_THREADS=1 python benchmarks/memory_model.py --frames 2 4 8 16 32 64 \
        --sizes 70x98 112x154 --out benchmarks/results/memory_model_cpu.json

The VGGT-1B architecture with rule weights (:mod:`vggt3d.testing`) runs each
(frames, size) ``--repeats`` times (the last counts: the first pass at a new
shape also fills the CPU kernels' per-shape caches); the extra peak resident memory of the
pass (VmHWM after resetting it, minus the resident size before; see
``benchmarks/forward.py``) is compared with
:func:`vggt3d.planner.estimate_cost`. Inference runs the lean exact pass
(:func:`vggt3d.aggregator.lean_hooks`), so that is what is measured and estimated; it
differs from the plain pass only above ``LEAN_TOKEN_CHUNK`` tokens (frames x tokens per frame). Writes JSON and a PNG plot beside it.
The default sizes (70x98, 112x154) are the smallest where the passes need
well over the measurement's noise (~2 MiB); at 28x42 they need 8-15 MiB.

glibc's allocator keeps freed blocks and moves its mmap threshold up as large
blocks are freed, so the resident size remembers earlier passes (+-10 MiB of
noise at these sizes). The script therefore runs itself with
``MALLOC_MMAP_THRESHOLD_=65536``: every block of 64 KiB or more is its own
mapping, returned to the system when freed, and the peak is that of the pass.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from forward import _release_and_reset_peak, _rss_kib  # noqa: E402

from vggt3d import ModelConfig, VGGT3D  # noqa: E402
from vggt3d.planner import estimate_cost  # noqa: E402
from vggt3d.testing import load_rule_weights  # noqa: E402


def measure(model: torch.nn.Module, frames: int, height: int, width: int) -> tuple[int, float]:
    images = torch.rand(1, frames, 3, height, width, generator=torch.Generator().manual_seed(0))
    _release_and_reset_peak()
    before = _rss_kib("VmRSS") * 1024
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model(images)
    seconds = time.perf_counter() - t0
    peak = _rss_kib("VmHWM") * 1024
    del out
    return peak - before, seconds


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for size in sorted({r["size"] for r in rows}):
        sel = [r for r in rows if r["size"] == size]
        f = [r["frames"] for r in sel]
        line, = ax.plot(f, [r["measured_mib"] for r in sel], "o-", label=f"{size} measured")
        ax.plot(f, [r["estimated_mib"] for r in sel], "x--", color=line.get_color(), label=f"{size} estimated")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("frames")
    ax.set_ylabel("extra peak memory (MiB)")
    ax.set_title("VGGT-1B architecture, fp32 CPU: planner vs. measured")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") != "65536":  # see the module docstring
        os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="vggt-1b")
    ap.add_argument("--frames", type=int, nargs="+", default=[2, 4, 8, 16, 32, 64])
    ap.add_argument("--sizes", nargs="+", default=["70x98", "112x154"], help="HxW, multiples of 14")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/memory_model_cpu.json"))
    ap.add_argument("--update", action="store_true",
                    help="measure only --frames x --sizes and replace those rows of --out (the others are kept)")
    ap.add_argument("--reestimate", action="store_true",
                    help="keep the measurements in --out, recompute the estimates with the current planner")
    args = ap.parse_args()
    if args.reestimate:
        result = json.loads(args.out.read_text())
        config = ModelConfig.preset(result["preset"])
        for row in result["rows"]:
            height, width = (int(v) for v in row["size"].split("x"))
            est = estimate_cost(config, row["frames"], height, width, torch.float32, "cpu", threads=result["threads"])
            row.update(estimated_mib=round(est.memory_bytes / 2**20, 1),
                       error=round(est.memory_bytes / (row["measured_mib"] * 2**20) - 1, 3),
                       terms_mib={k: round(v / 2**20, 1) for k, v in est.terms.items()})
        result["max_abs_error"] = max(abs(r["error"]) for r in result["rows"])
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        plot(result["rows"], args.out.with_suffix(".png"))
        print(f"max |error| {result['max_abs_error']:.1%} (re-estimated); wrote {args.out}")
        return
    torch.set_num_threads(args.threads)
    config = ModelConfig.preset(args.preset)
    t0 = time.perf_counter()
    model = load_rule_weights(VGGT3D(config)).eval()
    print(f"model with rule weights in {time.perf_counter() - t0:.0f} s", flush=True)
    measure(model, 2, 28, 28)  # warm-up: thread pools, first-call allocations
    rows = []
    for size in args.sizes:
        height, width = (int(v) for v in size.split("x"))
        for frames in args.frames:
            for _ in range(args.repeats):
                extra, seconds = measure(model, frames, height, width)
            est = estimate_cost(config, frames, height, width, torch.float32, "cpu", threads=args.threads)
            row = {"size": size, "frames": frames, "measured_mib": round(extra / 2**20, 1),
                   "estimated_mib": round(est.memory_bytes / 2**20, 1),
                   "error": round(est.memory_bytes / extra - 1, 3), "seconds": round(seconds, 2),
                   "estimated_seconds": round(est.seconds, 2),
                   "terms_mib": {k: round(v / 2**20, 1) for k, v in est.terms.items()}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    command = "OMP_NUM_THREADS=1 python benchmarks/memory_model.py " + " ".join(sys.argv[1:])
    commands, kept = [command], {}
    if args.update and args.out.exists():
        old = json.loads(args.out.read_text())
        new = {(r["size"], r["frames"]) for r in rows}
        rows = sorted([r for r in old["rows"] if (r["size"], r["frames"]) not in new] + rows,
                      key=lambda r: (int(r["size"].split("x")[0]), r["frames"]))
        commands = old.get("commands", [old["command"]]) + commands
        kept = {"note": old["note"]} if "note" in old else {}
    result = {"preset": args.preset, "device": "cpu", "dtype": "float32", "threads": args.threads,
              "torch": torch.__version__, "machine": platform.machine(), "weights": "rule (vggt3d.testing)",
              "max_abs_error": max(abs(r["error"]) for r in rows), "rows": rows,
              "command": commands[0], "commands": commands, **kept}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(rows, args.out.with_suffix(".png"))
    print(f"max |error| {result['max_abs_error']:.1%}; wrote {args.out}")


if __name__ == "__main__":
    main()
