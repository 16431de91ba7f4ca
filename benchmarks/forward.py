"""Forward time and peak memory of a VGGT3D architecture (default: VGGT-1B).

    python benchmarks/forward.py --frames 4 --height 252 --width 336 --threads 2 \
        --out benchmarks/results/forward_cpu.json

CPU memory is the peak resident set size (VmHWM) during the forward pass minus
the resident size just before it (weights and everything else already
allocated); the peak is reset through ``/proc/self/clear_refs`` before each
pass. On CUDA, ``torch.cuda.max_memory_allocated`` minus the allocation before
the pass. Timings are the best of ``--repeats`` passes after one warm-up.
Weights are PyTorch's default initialization (values do not change the cost).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
from pathlib import Path

import torch

from vggt3d import ModelConfig, VGGT3D


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="vggt-1b")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--height", type=int, default=252)
    ap.add_argument("--width", type=int, default=336)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = VGGT3D(ModelConfig.preset(args.preset)).eval().to(device)
    weights_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    images = torch.rand(1, args.frames, 3, args.height, args.width, device=device)
    times, extra = [], []
    for i in range(args.repeats + 1):
        gc.collect()
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        else:
            _reset_peak()
            before = _rss_kib("VmRSS") * 1024
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = _rss_kib("VmHWM") * 1024
        dt = time.perf_counter() - t0
        del out
        if i > 0:  # the first pass is the warm-up
            times.append(dt)
            extra.append((peak - before) / 2**20)
        print(f"pass {i}: {dt:.2f} s, +{(peak - before) / 2**20:.0f} MiB")
    result = {
        "preset": args.preset, "frames": args.frames, "height": args.height, "width": args.width,
        "device": str(device), "threads": args.threads, "dtype": "float32", "torch": torch.__version__,
        "machine": platform.machine(), "weights_mib": round(weights_mb, 1),
        "best_time_s": round(min(times), 3), "times_s": [round(t, 3) for t in times],
        "extra_peak_mib": round(min(extra), 1), "extra_peak_mib_all": [round(e, 1) for e in extra],
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
