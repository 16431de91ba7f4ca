"""Streaming with a KV cache vs recomputing the causal pass for every new frame: per-frame latency and memory.

    python benchmarks/stream.py --model tiny-synthetic --size 112 --lengths 16 64 256 \
        --out benchmarks/results/stream_tiny_synthetic_cpu.json
    python benchmarks/stream.py --model vggt-1b --size 14 --lengths 16 64 256 --repeats 2 --chunk 64 \
        --out benchmarks/results/stream_vggt1b_rule_cpu.json
    python benchmarks/stream.py --plot benchmarks/results/stream_*_cpu.json --png benchmarks/results/stream_cpu.png

For each length N: a stream that already holds about N frames (filled in
chunks, which gives the same cache as single pushes; one stream grows through
the lengths) takes one more frame; its latency is the median of
``--repeats`` such pushes (the last one sees N + repeats - 1 frames).
Recomputing means running ``model(frames[:n+1], causal=True)`` for the last
pushed frame n (best of ``--repeats``, one run at 256 frames or more, after a
warm-up at the shortest length). The two results for that frame are compared
(``max_abs_diff_*``).

``--model``: ``tiny-synthetic`` (the shipped model) or a preset name
(``vggt-1b``, ``tiny``, ...) filled with the deterministic rule weights of
:mod:`vggt3d.testing` (values do not change the cost). Frames are random
(cost does not depend on them).

Memory (CPU, as ``benchmarks/forward.py``): before each measured call the
allocator's free memory is returned to the system and the peak resident set
is reset (``/proc/self/clear_refs``); ``extra`` is the peak minus the resident
size before the call. The stream's memory is its cache plus the extra of a
push; recomputing keeps no cache. On CUDA the allocator's peak is used.

``--deviation`` (shipped model): a budgeted stream (``--budget`` frames,
eviction on) against the unevicted one over a rendered synthetic clip of
``max(lengths)`` frames: per-frame depth relative difference and camera
(pose encoding) difference, summarised at the lengths.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from forward import _release_and_reset_peak, _rss_kib  # noqa: E402


def load(name: str, device: torch.device):
    from vggt3d import ModelConfig, VGGT3D
    from vggt3d.testing import load_rule_weights

    if name == "tiny-synthetic":
        return VGGT3D.from_pretrained(name, device=device).eval(), "shipped weights"
    return load_rule_weights(VGGT3D(ModelConfig.preset(name))).eval().to(device), "rule weights"


class Meter:
    def __init__(self, device: torch.device) -> None:
        self.device = device

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.before = torch.cuda.memory_allocated()
        else:
            _release_and_reset_peak()
            self.before = _rss_kib("VmRSS") * 1024
        self.t0 = time.perf_counter()

    def stop(self) -> tuple[float, float]:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = _rss_kib("VmHWM") * 1024
        return time.perf_counter() - self.t0, (peak - self.before) / 2**20


def measure(model, lengths: list[int], size: int, repeats: int, chunk: int, device: torch.device) -> list[dict]:
    from vggt3d.stream import GeometryStream

    meter = Meter(device)
    g = torch.Generator().manual_seed(0)
    total = max(lengths) + repeats + 1
    frames = torch.rand(1, total, 3, size, size, generator=g).to(device)
    rows = []
    with torch.no_grad():
        model(frames[:, : min(lengths) + 1], causal=True)  # warm-up
    stream = GeometryStream(model)  # one stream, grown from one length to the next (the same as a fresh one)
    for N in lengths:
        for s in range(stream.num_frames, N, chunk):
            stream.push(frames[:, s: min(N, s + chunk)])
        lat, extra, last = [], [], None
        for r in range(repeats):
            meter.start()
            last = stream.push(frames[:, stream.num_frames: stream.num_frames + 1])
            dt, mb = meter.stop()
            lat.append(dt)
            extra.append(mb)
        cache_mb = stream.cache_bytes / 2**20
        n_last = stream.num_frames - 1  # the last pushed frame
        rec_t, rec_mb, full = [], [], None
        for _ in range(repeats if N < 256 else 1):
            meter.start()
            with torch.no_grad():
                full = model(frames[:, : n_last + 1], causal=True)
            dt, mb = meter.stop()
            rec_t.append(dt)
            rec_mb.append(mb)
        diff_pose = float((last["pose_enc"][:, -1] - full["pose_enc"][:, -1]).abs().max())
        diff_depth = float((last["depth"][:, -1] - full["depth"][:, -1]).abs().max()) if "depth" in last else None
        row = {"frames": N, "stream_latency_s": statistics.median(lat), "stream_latencies_s": lat,
               "stream_push_extra_mib": max(extra), "cache_mib": cache_mb,
               "stream_memory_mib": cache_mb + max(extra),
               "recompute_latency_s": min(rec_t), "recompute_latencies_s": rec_t, "recompute_extra_mib": max(rec_mb),
               "speedup": min(rec_t) / statistics.median(lat),
               "max_abs_diff_pose_enc": diff_pose, "max_abs_diff_depth": diff_depth}
        rows.append(row)
        print(f"N={N}: stream {row['stream_latency_s'] * 1e3:.1f} ms (+{max(extra):.0f} MiB, cache "
              f"{cache_mb:.0f} MiB) | recompute {min(rec_t) * 1e3:.1f} ms (+{max(rec_mb):.0f} MiB) | "
              f"speed-up {row['speedup']:.1f}x | diff pose {diff_pose:.1e}", flush=True)
        del full, last
    return rows


def deviation(model, lengths: list[int], size: int, budget: int, recent: int, keyframe_interval: int,
              device: torch.device) -> dict:
    """A budgeted stream against the unevicted one on a rendered clip (per-frame differences)."""
    from vggt3d.data.synthetic import SyntheticConfig, SyntheticScenes
    from vggt3d.stream import GeometryStream, StreamConfig

    T = max(lengths)
    ds = SyntheticScenes(SyntheticConfig(num_scenes=1, num_frames=T, image_size=(size, size), seed=11,
                                         camera_paths=("orbit",)))
    frames = ds[0]["images"][None].to(device)  # [1, T, 3, H, W]
    full = GeometryStream(model)
    cfg = StreamConfig(max_frames=budget, recent=recent, keyframe_interval=keyframe_interval)
    bounded = GeometryStream(model, cfg)
    depth_rel, pose = [], []
    for t in range(T):
        a, b = full.push(frames[:, t: t + 1]), bounded.push(frames[:, t: t + 1])
        depth_rel.append(float(((a["depth"] - b["depth"]).abs() / a["depth"].abs().clamp_min(1e-6)).mean()))
        pose.append(float((a["pose_enc"] - b["pose_enc"]).abs().max()))
    at = {str(n): {"depth_rel_diff": depth_rel[n - 1], "pose_enc_max_abs_diff": pose[n - 1],
                   "depth_rel_diff_mean_to_here": sum(depth_rel[:n]) / n} for n in lengths}
    print(f"eviction (budget {budget}, recent {recent}, keyframes every {keyframe_interval}): {json.dumps(at)}")
    return {"budget_frames": budget, "recent": recent, "keyframe_interval": keyframe_interval, "clip_frames": T,
            "cache_mib_unevicted": full.cache_bytes / 2**20, "cache_mib_budgeted": bounded.cache_bytes / 2**20,
            "at_frames": at, "depth_rel_diff_per_frame": depth_rel, "pose_enc_diff_per_frame": pose}


def plot(paths: list[Path], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for path in paths:
        r = json.loads(path.read_text())
        rows = r["rows"]
        n = [row["frames"] for row in rows]
        label = f"{r['model']} ({r['size']}px)"
        line, = ax_t.plot(n, [row["stream_latency_s"] * 1e3 for row in rows], "o-", label=f"{label}: stream")
        ax_t.plot(n, [row["recompute_latency_s"] * 1e3 for row in rows], "s--", color=line.get_color(),
                  label=f"{label}: recompute")
        for row in rows:
            ax_t.annotate(f"{row['speedup']:.0f}x", (row["frames"], row["stream_latency_s"] * 1e3),
                          textcoords="offset points", xytext=(4, -12), fontsize=8, color=line.get_color())
        ax_m.plot(n, [row["stream_memory_mib"] for row in rows], "o-", color=line.get_color(),
                  label=f"{label}: stream (cache + push)")
        ax_m.plot(n, [row["recompute_extra_mib"] for row in rows], "s--", color=line.get_color(),
                  label=f"{label}: recompute")
    for ax, title in ((ax_t, "latency of one new frame (ms)"), (ax_m, "memory beyond the weights (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("frames already in the stream")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("KV-cache stream vs recomputing the causal pass per new frame (CPU, 1 thread)")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    print(f"wrote {png}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny-synthetic")
    ap.add_argument("--size", type=int, default=112, help="square frame size in pixels (a multiple of the patch)")
    ap.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=16, help="frames per push while filling the stream")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--deviation", action="store_true", help="also measure eviction against the unevicted stream")
    ap.add_argument("--budget", type=int, default=32)
    ap.add_argument("--recent", type=int, default=8)
    ap.add_argument("--keyframe-interval", type=int, default=8)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--plot", type=Path, nargs="*", default=None, help="only plot these result files")
    ap.add_argument("--png", type=Path, default=Path("benchmarks/results/stream_cpu.png"))
    args = ap.parse_args()
    if args.plot is not None:
        plot(args.plot, args.png)
        return
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model, weights = load(args.model, device)
    rows = measure(model, sorted(args.lengths), args.size, args.repeats, args.chunk, device)
    result = {"model": args.model, "weights": weights, "size": args.size, "device": str(device),
              "threads": args.threads, "dtype": "float32", "torch": torch.__version__,
              "machine": platform.machine(), "load_average": [round(x, 2) for x in os.getloadavg()],
              "command": " ".join(["python"] + sys.argv), "rows": rows}
    if args.deviation:
        result["eviction"] = deviation(model, sorted(args.lengths), args.size, args.budget, args.recent,
                                       args.keyframe_interval, device)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
