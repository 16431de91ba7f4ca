"""Chunked reconstruction: peak memory flat in the video length (100 vs 1000 frames at the same chunk size).

    OMP_NUM_THREADS=1 python benchmarks/memory_chunked.py --frames 100 1000 --chunk 16 --overlap 4 \
        --out benchmarks/results/memory_chunked_cpu.json

Each length runs in a fresh process: the shipped tiny model (``tiny-synthetic``)
predicts overlapping chunks of a synthetic room walked around on an orbit
(``vggt3d.data.synthetic``), frames rendered when their chunk needs them (a
decoder that streams); :func:`vggt3d.longvideo.chunked.run_chunked` aligns the
chunks (with loop closure) and keeps per frame only the owned depth and
confidence. Reported: the process's peak resident memory (``ru_maxrss``),
the resident memory after loading the model (the baseline) and the time.
Like ``benchmarks/memory_model.py`` it runs with ``MALLOC_MMAP_THRESHOLD_=65536``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path


def child(frames: int, chunk: int, overlap: int, size: int, loops: bool) -> dict:
    import numpy as np
    import torch

    from vggt3d import VGGT3D
    from vggt3d.data.synthetic import SyntheticConfig, make_synthetic_scene
    from vggt3d.longvideo import LoopConfig, plan_chunks
    from vggt3d.longvideo.chunked import model_predictor, run_chunked

    torch.set_num_threads(1)
    model = VGGT3D.from_pretrained("tiny-synthetic").eval()
    scene = make_synthetic_scene(SyntheticConfig(num_scenes=1, num_frames=frames, image_size=(size, size),
                                                 scene_types=("room",), camera_paths=("orbit",), seed=5), 0)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def source(indices):
        views = [scene.scene.render(scene.cam_from_world[i], scene.intrinsics[i], size, size)[0] for i in indices]
        return torch.from_numpy(np.stack(views)).permute(0, 3, 1, 2).float().clamp(0, 1)

    def run(images):
        with torch.inference_mode():
            out = model(images)
        return {k: out[k][0].float().numpy() for k in ("pose_enc", "depth", "depth_conf")}

    t0 = time.perf_counter()
    result = run_chunked(model_predictor(run, source), plan_chunks(frames, chunk, overlap),
                         loops=LoopConfig(enabled=loops))
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"frames": frames, "peak_mib": round(peak / 2**20, 1), "baseline_mib": round(baseline / 2**20, 1),
            "seconds": round(seconds, 1), "chunks": result.report["chunks"],
            "loops_closed": len(result.report["loops_closed"]), "result_mib": round(
                (result.depth.nbytes + result.conf.nbytes + result.cam_from_world.nbytes) / 2**20, 1)}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    f = [r["frames"] for r in rows]
    ax.plot(f, [r["peak_mib"] for r in rows], "o-", label="peak (process)")
    ax.plot(f, [r["baseline_mib"] for r in rows], "x--", label="after loading the model")
    ax.set_xscale("log")
    ax.set_ylim(0, max(r["peak_mib"] for r in rows) * 1.2)
    ax.set_xlabel("video frames")
    ax.set_ylabel("resident memory (MiB)")
    ax.set_title("chunked reconstruction, tiny-synthetic, CPU")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument("--overlap", type=int, default=4)
    ap.add_argument("--size", type=int, default=56, help="square input size in pixels (multiple of 14)")
    ap.add_argument("--no-loop-closure", action="store_true")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/memory_chunked_cpu.json"))
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.chunk, args.overlap, args.size, not args.no_loop_closure)))
        return
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS="1")
    rows = []
    for frames in args.frames:
        cmd = [sys.executable, __file__, "--child", str(frames), "--chunk", str(args.chunk), "--overlap",
               str(args.overlap), "--size", str(args.size)] + (["--no-loop-closure"] if args.no_loop_closure else [])
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    first, last = rows[0], rows[-1]
    result = {"model": "tiny-synthetic", "device": "cpu", "threads": 1, "chunk": args.chunk, "overlap": args.overlap,
              "size": args.size, "loop_closure": not args.no_loop_closure, "machine": platform.machine(),
              "rows": rows, "peak_ratio_last_vs_first": round(last["peak_mib"] / first["peak_mib"], 3),
              "command": "OMP_NUM_THREADS=1 python benchmarks/memory_chunked.py " + " ".join(sys.argv[1:])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(rows, args.out.with_suffix(".png"))
    print(f"peak {last['frames']} vs {first['frames']} frames: x{result['peak_ratio_last_vs_first']}")


if __name__ == "__main__":
    main()
