"""Token merging in the global attention: FLOPs, time, deviation and accuracy against the exact path (CPU).

    OMP_NUM_THREADS=1 python benchmarks/token_merging.py --out benchmarks/results/token_merging_cpu.json
    OMP_NUM_THREADS=1 python benchmarks/token_merging.py --part deviation \
        --out benchmarks/results/token_merging_1b_cpu.json

``--part speed`` (default): the shipped model (``tiny-synthetic``) on held-out
synthetic rooms (seed 11, not a training seed) at 84x112, for 16/32/64 frames
and each ratio: wall time of the forward pass and of its global blocks (merging included; best
of ``--repeats``), the
global blocks' FLOPs (counted from the token counts: ``2 N 12 C^2`` for the
linear layers with mlp ratio 4, ``4 N^2 C`` for the attention), depth AbsRel
(median-scaled) and camera-centre ATE (after a Sim(3), relative to the path).
``--part deviation``: the VGGT-1B architecture with rule weights
(:mod:`vggt3d.testing`), 8 random frames at 70x98: max |merged - exact| per
output and the median relative depth change.
Writes JSON and a PNG beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vggt3d import ModelConfig, VGGT3D
from vggt3d.merging import merge_hooks

RATIOS = (0.0, 0.3, 0.5, 0.7, 0.9)


def global_flops(config, tokens_per_call: list[int]) -> float:
    C, r = config.aggregator.embed_dim, config.aggregator.mlp_ratio
    return float(sum(2 * n * (4 + 2 * r) * C * C + 4 * n * n * C for n in tokens_per_call))


def _ate(pose_enc: torch.Tensor, cam_gt: np.ndarray, hw) -> float:
    from vggt3d.geometry import pose_encoding_to_cameras
    from vggt3d.longvideo import umeyama

    cam, _ = pose_encoding_to_cameras(pose_enc.double(), hw)
    cam = cam.numpy()
    c = -np.einsum("tji,tj->ti", cam[:, :3, :3], cam[:, :3, 3])
    g = -np.einsum("tji,tj->ti", cam_gt[:, :3, :3], cam_gt[:, :3, 3])
    fit = umeyama(c, g)
    return float(np.sqrt(((fit.apply(c) - g) ** 2).sum(1).mean()) / np.linalg.norm(np.diff(g, axis=0), axis=1).sum())


class _Timed:
    """An ``inter_frame`` hook that adds up the wall time of the global blocks it runs."""

    def __init__(self, fn) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args):
        t0 = time.perf_counter()
        y = self.fn(*args)
        self.seconds += time.perf_counter() - t0
        return y


def speed(args) -> dict:
    from vggt3d.data.synthetic import SyntheticConfig, SyntheticScenes

    model = VGGT3D.from_pretrained("tiny-synthetic").eval()
    start = model.aggregator.patch_start_idx
    rows = []
    for frames in args.frames:
        sample = SyntheticScenes(SyntheticConfig(num_scenes=1, num_frames=frames, image_size=(84, 112),
                                                 scene_types=("room",), camera_paths=("orbit",), seed=11))[0]
        images, gt = sample["images"], sample["depths"]
        exact = None
        for ratio in RATIOS:
            times, global_times = [], []
            for _ in range(args.repeats):
                hooks = merge_hooks(ratio, frames, start)
                merger = hooks.inter_frame
                timed = _Timed(merger)
                t0 = time.perf_counter()
                with torch.inference_mode():
                    out = model(images, hooks=dataclasses.replace(hooks, inter_frame=timed))
                times.append(time.perf_counter() - t0)
                global_times.append(timed.seconds)
            depth = out["depth"][0, ..., 0]
            mask = gt > 0
            scale = (gt[mask] / depth[mask]).median()
            per_call = merger.tokens_attended // model.config.aggregator.depth
            row = {"frames": frames, "ratio": ratio, "seconds": round(min(times), 3),
                   "global_seconds": round(min(global_times), 3),
                   "global_gflops": round(global_flops(model.config, [per_call] * model.config.aggregator.depth)
                                          / 1e9, 3),
                   "tokens_attended": per_call, "tokens": merger.tokens_in // model.config.aggregator.depth,
                   "depth_absrel": round(float(((depth[mask] * scale - gt[mask]).abs() / gt[mask]).mean()), 4),
                   "camera_ate": round(_ate(out["pose_enc"][0], sample["cam_from_world"].numpy(), (84, 112)), 4)}
            if exact is None:
                exact = row
            row["speedup"] = round(exact["seconds"] / row["seconds"], 2)
            row["global_speedup"] = round(exact["global_seconds"] / row["global_seconds"], 2)
            row["flops_ratio"] = round(row["global_gflops"] / exact["global_gflops"], 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"part": "speed", "model": "tiny-synthetic", "size": [84, 112], "rows": rows}


def deviation(args) -> dict:
    from vggt3d.testing import rule_tensor

    config = ModelConfig.preset("vggt-1b")
    model = VGGT3D(config).eval()
    with torch.no_grad():  # load_rule_weights' values, one tensor at a time (half the peak memory)
        for name, tensor in model.state_dict().items():
            tensor.copy_(rule_tensor(name, tensor.shape))
    height, width = args.size
    images = torch.rand(8, 3, height, width, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        exact = model(images)
        rows = []
        for ratio in RATIOS[1:]:
            out = model(images, hooks=merge_hooks(ratio, 8, model.aggregator.patch_start_idx))
            row = {"ratio": ratio, **{f"max_abs_{k}": float((out[k] - exact[k]).abs().max())
                                      for k in ("pose_enc", "depth", "world_points")},
                   "rel_depth": float(((out["depth"] - exact["depth"]).abs() / exact["depth"].abs()).median())}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"part": "deviation", "model": "vggt-1b architecture, rule weights", "frames": 8, "size": [height, width],
            "rows": rows}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for ratio in RATIOS[1:]:
        sel = [r for r in rows if r["ratio"] == ratio]
        axes[0].plot([r["frames"] for r in sel], [r["speedup"] for r in sel], "o-", label=f"merge {ratio}")
        axes[1].plot([r["frames"] for r in sel], [r.get("global_speedup", float("nan")) for r in sel], "o-",
                     label=f"merge {ratio}")
        axes[2].plot([r["frames"] for r in sel], [1 / r["flops_ratio"] for r in sel], "o-", label=f"merge {ratio}")
    axes[0].set_ylabel("forward speed-up vs exact (CPU)")
    axes[1].set_ylabel("global blocks' wall time: exact / merged")
    axes[2].set_ylabel("global-attention FLOPs: exact / merged")
    for ax in axes:
        ax.set_xlabel("frames")
        ax.legend(fontsize=7)
    fig.suptitle("token merging, tiny-synthetic, 84x112, 1 CPU thread")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("speed", "deviation"), default="speed")
    ap.add_argument("--frames", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--size", type=int, nargs=2, default=[70, 98], metavar=("H", "W"), help="--part deviation")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/token_merging_cpu.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    result = speed(args) if args.part == "speed" else deviation(args)
    result.update({"device": "cpu", "threads": 1, "torch": torch.__version__, "machine": platform.machine(),
                   "command": "OMP_NUM_THREADS=1 python benchmarks/token_merging.py " + " ".join(sys.argv[1:])})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.part == "speed":
        plot(result, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
