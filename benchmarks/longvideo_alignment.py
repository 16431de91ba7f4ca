"""Chunk alignment and loop closure: ATE and end-to-start drift on synthetic trajectories and with the shipped model.

    OMP_NUM_THREADS=1 python benchmarks/longvideo_alignment.py --out benchmarks/results/longvideo_alignment.json

``synthetic``: exact long trajectories (a 300-frame corridor walk, a 360-frame
loop around a room; :mod:`vggt3d.longvideo.synthetic`) whose per-chunk geometry
is ground truth in a random Sim(3) frame with drift, noise and outliers (the
setting of ``tests/longvideo/test_trajectories.py``), seeds 1-8: ATE after a
Sim(3) relative to the path length, end-to-start drift with and without loop
closure. ``shipped``: the tiny shipped model on a rendered synthetic room orbit
(held-out seed), one pass against chunks: camera ATE against ground truth.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "longvideo"))
from test_trajectories import DRIFT, _descriptors, ate, end_to_start  # noqa: E402

from vggt3d.longvideo import plan_chunks, umeyama  # noqa: E402
from vggt3d.longvideo.pipeline import align_sequence  # noqa: E402
from vggt3d.longvideo.synthetic import corridor, room_loop, simulate_chunks  # noqa: E402


def synthetic(seeds: list[int]) -> list[dict]:
    rows = []
    for seed in seeds:
        traj = corridor(300)
        plan = plan_chunks(300, 40, 10)
        res = align_sequence(plan, simulate_chunks(traj, plan, seed=seed, **DRIFT))
        room = room_loop(360)
        rplan = plan_chunks(360, 32, 8)
        chunks = simulate_chunks(room, rplan, seed=seed, **DRIFT)
        counter = iter(range(1000, 2000))

        def predict(frames):
            return simulate_chunks(room, [frames], seed=next(counter), drift_rot_deg=0, drift_scale=0,
                                   drift_trans=0)[0]

        open_loop = align_sequence(rplan, chunks)
        closed = align_sequence(rplan, chunks, descriptors=_descriptors(room), predict=predict)
        row = {"seed": seed, "corridor_ate": ate(traj, res.frames["cam_from_world"]),
               "room_ate_open": ate(room, open_loop.frames["cam_from_world"]),
               "room_ate_closed": ate(room, closed.frames["cam_from_world"]),
               "room_drift_open": end_to_start(room, open_loop.frames["cam_from_world"]),
               "room_drift_closed": end_to_start(room, closed.frames["cam_from_world"]),
               "loops": len(closed.loops)}
        row["drift_reduction"] = row["room_drift_open"] / row["room_drift_closed"]
        rows.append({k: round(v, 5) if isinstance(v, float) else v for k, v in row.items()})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def shipped(frames: int, chunk: int, overlap: int) -> dict:
    import torch

    import vggt3d
    from vggt3d.data.synthetic import SyntheticConfig, SyntheticScenes

    torch.set_num_threads(1)
    sample = SyntheticScenes(SyntheticConfig(num_scenes=1, num_frames=frames, image_size=(84, 112),
                                             scene_types=("room",), camera_paths=("orbit",), seed=11))[0]
    images = [(im.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for im in sample["images"]]
    gt = sample["cam_from_world"].numpy().astype(np.float64)
    g = -np.einsum("tji,tj->ti", gt[:, :3, :3], gt[:, :3, 3])
    path = np.linalg.norm(np.diff(g, axis=0), axis=1).sum()

    def cam_ate(rec) -> float:
        c = -np.einsum("tji,tj->ti", rec.cam_from_world[:, :3, :3], rec.cam_from_world[:, :3, 3])
        fit = umeyama(c, g)
        return float(np.sqrt(((fit.apply(c) - g) ** 2).sum(1).mean()) / path)

    exact = vggt3d.reconstruct(images, model="tiny-synthetic", device="cpu")
    chunked = vggt3d.reconstruct(images, model="tiny-synthetic", device="cpu", chunk=chunk, overlap=overlap)
    return {"frames": frames, "chunk": chunk, "overlap": overlap, "ate_exact": round(cam_ate(exact), 4),
            "ate_chunked": round(cam_ate(chunked), 4), "seconds_exact": round(exact.info["timings"]["inference"], 2),
            "seconds_chunked": round(chunked.info["timings"]["inference"], 2),
            "alignment": chunked.info["chunks"]["alignment"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 9)))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/longvideo_alignment.json"))
    args = ap.parse_args()
    rows = synthetic(args.seeds)
    real = shipped(48, 16, 4)
    print(json.dumps(real), flush=True)
    summary = {k: {"max": max(r[k] for r in rows), "min": min(r[k] for r in rows)}
               for k in ("corridor_ate", "room_ate_closed", "room_drift_open", "room_drift_closed", "drift_reduction")}
    result = {"synthetic": rows, "synthetic_summary": summary, "shipped": real,
              "command": "OMP_NUM_THREADS=1 python benchmarks/longvideo_alignment.py " + " ".join(sys.argv[1:])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
