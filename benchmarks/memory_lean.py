"""The lean exact pass against the plain and the original-style pass: extra peak memory and time (CPU).

    OMP_NUM_THREADS=2 python benchmarks/memory_lean.py --frames 2 8 24 --size 140x196 --threads 2 \
        --out benchmarks/results/memory_lean_cpu.json

The VGGT-1B architecture with rule weights (:mod:`vggt3d.testing`), fp32, one
process, the three modes interleaved at every frame count (so that the load
of a shared machine hits them alike), ``--repeats`` rounds:

- ``lean``: :func:`vggt3d.aggregator.lean_hooks`: encoder and frame blocks
  ``frame_chunk`` frames at a time (default: as many as fit in ``token_chunk``
  tokens), the global blocks' norms, ``qkv``,
  projection and MLP ``token_chunk`` tokens at a time; only SDPA sees all
  tokens; the heads decode one frame at a time; only the heads' layers are kept.
- ``plain``: ``model(images)`` with the lean pass off (``token_chunk=0``): no chunking in the trunk (the
  heads still decode frame by frame), only the heads' layers kept.
- ``original``: original-style: no chunking and every one of the 24 layers'
  outputs kept (the original VGGT keeps its whole ``output_list``), then the
  heads. It is our implementation run the original's way, not the original
  code (which is not shipped here; ``benchmarks/forward.py --impl original``
  measures a checkout of it).

Memory: extra peak resident memory of the pass (VmHWM after a reset minus
the resident size before; ``benchmarks/forward.py``), with
``MALLOC_MMAP_THRESHOLD_=65536`` so that freed blocks leave (see
``benchmarks/memory_model.py``). MiB/frame: least-squares slope over the
frame counts. Time: the best of the rounds, wall clock and process CPU time
(on a shared machine the CPU time is the steadier of the two: other jobs
stretch the wall clock of one pass and not of the next). Writes JSON and a
PNG beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from forward import _release_and_reset_peak, _rss_kib  # noqa: E402

from vggt3d import ModelConfig, VGGT3D  # noqa: E402
from vggt3d.aggregator import AggregatorHooks, lean_hooks  # noqa: E402
from vggt3d.testing import rule_tensor  # noqa: E402

MODES = ("lean", "plain", "original")


def load_rule_weights_lean(model: torch.nn.Module) -> torch.nn.Module:
    """:func:`vggt3d.testing.load_rule_weights`, one tensor at a time (no second copy of the weights)."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            t.copy_(rule_tensor(name, t.shape))
    return model


def run(model: VGGT3D, images: torch.Tensor, mode: str, frame_chunk: int | None, token_chunk: int) -> dict:
    if mode == "lean":
        return model(images, hooks=lean_hooks(frame_chunk=frame_chunk, token_chunk=token_chunk))
    off = AggregatorHooks(token_chunk=0)  # the lean pass is the default without gradients: switch it off
    if mode == "plain":
        return model(images, hooks=off)
    tokens = model.forward_intermediates(images, list(range(model.config.aggregator.depth)), hooks=off)
    return model.forward_heads(tokens, images.shape[-2:])


def measure(model: VGGT3D, images: torch.Tensor, mode: str, frame_chunk: int | None,
            token_chunk: int) -> tuple[int, float, float]:
    _release_and_reset_peak()
    before = _rss_kib("VmRSS") * 1024
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        out = run(model, images, mode, frame_chunk, token_chunk)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _rss_kib("VmHWM") * 1024
    del out
    return peak - before, seconds, cpu


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_m, ax_t) = plt.subplots(1, 2, figsize=(9, 3.6))
    for mode in MODES:
        rows = [r for r in result["rows"] if r["mode"] == mode]
        f = [r["frames"] for r in rows]
        ax_m.plot(f, [r["extra_peak_mib"] for r in rows], "o-",
                  label=f"{mode} ({result['mib_per_frame'][mode]:.1f} MiB/frame)")
        ax_t.plot(f, [r["best_seconds"] for r in rows], "o-", label=mode)
    ax_m.set_xlabel("frames")
    ax_m.set_ylabel("extra peak memory (MiB)")
    ax_t.set_xlabel("frames")
    ax_t.set_ylabel("time per pass (s, best)")
    for ax in (ax_m, ax_t):
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"VGGT-1B arch, fp32 CPU, {result['size']}, {result['threads']} threads: lean vs plain vs original-style",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") != "65536":  # see benchmarks/memory_model.py
        os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="vggt-1b")
    ap.add_argument("--frames", type=int, nargs="+", default=[2, 8, 24])
    ap.add_argument("--size", default="140x196", help="HxW, multiples of the patch size")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--frame-chunk", type=int, default=None,
                    help="frames per chunk in the per-frame stages (default: as many as fit in --token-chunk tokens)")
    ap.add_argument("--token-chunk", type=int, default=2048)
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("--weights", choices=("rule", "init"), default="rule",
                    help="rule weights (vggt3d.testing) or PyTorch's initialization (faster to build; same cost)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/memory_lean_cpu.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    height, width = (int(v) for v in args.size.split("x"))
    t0 = time.perf_counter()
    model = VGGT3D(ModelConfig.preset(args.preset)).eval()
    if args.weights == "rule":
        model = load_rule_weights_lean(model)
    print(f"model with {args.weights} weights in {time.perf_counter() - t0:.0f} s", flush=True)
    measure(model, torch.rand(1, 2, 3, 28, 28), "plain", 1, 8)  # warm-up: thread pools, first-call allocations
    rows = []
    for frames in args.frames:
        images = torch.rand(1, frames, 3, height, width, generator=torch.Generator().manual_seed(0))
        got: dict[str, list[tuple[int, float, float]]] = {m: [] for m in args.modes}
        for _ in range(args.repeats):
            for mode in args.modes:
                got[mode].append(measure(model, images, mode, args.frame_chunk, args.token_chunk))
                print(f"{frames} frames {mode}: {got[mode][-1][1]:.1f} s (CPU {got[mode][-1][2]:.1f} s), "
                      f"+{got[mode][-1][0] / 2**20:.0f} MiB", flush=True)
        for mode in args.modes:
            rows.append({"mode": mode, "frames": frames, "extra_peak_mib": round(got[mode][-1][0] / 2**20, 1),
                         "extra_peak_mib_all": [round(m / 2**20, 1) for m, _, _ in got[mode]],
                         "best_seconds": round(min(s for _, s, _ in got[mode]), 2),
                         "seconds_all": [round(s, 2) for _, s, _ in got[mode]],
                         "best_cpu_seconds": round(min(c for _, _, c in got[mode]), 2),
                         "cpu_seconds_all": [round(c, 2) for _, _, c in got[mode]]})
    result = {"preset": args.preset, "size": args.size, "device": "cpu", "dtype": "float32", "threads": args.threads,
              "frame_chunk": args.frame_chunk, "token_chunk": args.token_chunk,
              "weights": "rule (vggt3d.testing)" if args.weights == "rule" else "PyTorch initialization",
              "torch": torch.__version__, "machine": platform.machine(), "rows": rows,
              "load_average": [round(x, 2) for x in os.getloadavg()],
              "command": f"OMP_NUM_THREADS={args.threads} python benchmarks/memory_lean.py " + " ".join(sys.argv[1:])}
    per_frame, ratio = {}, {}
    for mode in args.modes:
        sel = [r for r in rows if r["mode"] == mode]
        per_frame[mode] = float(np.polyfit([r["frames"] for r in sel], [r["extra_peak_mib"] for r in sel], 1)[0]) \
            if len(sel) > 1 else float("nan")
    result["mib_per_frame"] = {m: round(v, 2) for m, v in per_frame.items()}
    if "lean" in args.modes:
        for mode in args.modes:
            if mode != "lean":
                ratio[mode] = {r["frames"]: {"wall": round(r["best_seconds"] / o["best_seconds"], 3),
                                             "cpu": round(r["best_cpu_seconds"] / o["best_cpu_seconds"], 3)}
                               for r in rows if r["mode"] == "lean"
                               for o in rows if o["mode"] == mode and o["frames"] == r["frames"]}
        result["lean_time_ratio"] = ratio
    print(json.dumps({k: result[k] for k in ("mib_per_frame", "lean_time_ratio") if k in result}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if len(args.modes) == len(MODES):
        plot(result, args.out.with_suffix(".png"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
