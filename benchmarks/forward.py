"""Forward time and peak memory of the VGGT-1B architecture, ours or the original's.

    python benchmarks/forward.py --frames 4 --height 252 --width 336 --threads 2 \
        --out benchmarks/results/forward_cpu.json
    python benchmarks/forward.py --impl original --original-path /path/to/vggt-checkout ...

``--impl original`` measures the original implementation (facebookresearch/vggt)
the same way. It is NOT shipped with this repository: pass the root of a
checkout (the folder holding the ``vggt/`` package); it is imported from there
at run time only. Run each implementation in its own process.

Memory (CPU): before every pass the allocator's free memory is returned to the
system (``malloc_trim``), the peak resident set size is reset through
``/proc/self/clear_refs``, and the pass's extra memory is the peak (VmHWM)
minus the resident size just before it: what the forward pass needs beyond the
weights. On CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation
before the pass. Time: the best of ``--repeats`` passes after one warm-up.
Weights are PyTorch's default initialization (values do not change the cost).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import platform
import sys
import time
from pathlib import Path

import torch


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _release_and_reset_peak() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed memory resident otherwise
    except (OSError, AttributeError):
        pass
    Path("/proc/self/clear_refs").write_text("5")


def build(impl: str, preset: str, original_path: Path | None) -> torch.nn.Module:
    if impl == "ours":
        from vggt3d import ModelConfig, VGGT3D

        return VGGT3D(ModelConfig.preset(preset))
    if original_path is None:
        raise SystemExit("--impl original needs --original-path (a checkout of facebookresearch/vggt)")
    if preset != "vggt-1b":
        raise SystemExit("--impl original measures the VGGT-1B architecture only")
    sys.path.insert(0, str(original_path))
    from vggt.models.vggt import VGGT

    return VGGT()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", choices=("ours", "original"), default="ours")
    ap.add_argument("--original-path", type=Path, default=None)
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
    model = build(args.impl, args.preset, args.original_path).eval().to(device)
    weights_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    images = torch.rand(1, args.frames, 3, args.height, args.width, generator=torch.Generator().manual_seed(0))
    images = images.to(device)
    times, cpu, extra = [], [], []
    for i in range(args.repeats + 1):
        if device.type == "cuda":
            gc.collect()
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        else:
            _release_and_reset_peak()
            before = _rss_kib("VmRSS") * 1024
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.no_grad():
            out = model(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = _rss_kib("VmHWM") * 1024
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        del out
        times.append(dt)
        cpu.append(dc)
        extra.append((peak - before) / 2**20)
        print(f"[{args.impl}] pass {i}{' (warm-up)' if i == 0 else ''}: {dt:.2f} s (CPU {dc:.1f} s), "
              f"+{extra[-1]:.0f} MiB", flush=True)
    result = {
        "impl": args.impl, "preset": args.preset, "frames": args.frames, "height": args.height,
        "width": args.width, "device": str(device), "threads": args.threads, "dtype": "float32",
        "torch": torch.__version__, "machine": platform.machine(), "weights_mib": round(weights_mb, 1),
        "best_time_s": round(min(times[1:]), 3), "times_s": [round(t, 3) for t in times],
        "cpu_times_s": [round(c, 2) for c in cpu],
        "extra_peak_mib": round(max(extra), 1), "extra_peak_mib_all": [round(e, 1) for e in extra],
        "load_average": [round(x, 2) for x in __import__("os").getloadavg()],
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
