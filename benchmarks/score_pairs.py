"""``vggt3d score`` separates consistent clips from shuffled ones (issue #9 target: >= 15 of 16 pairs).

For each of ``--clips`` held-out synthetic clips (dataset seed ``--seed`` >= 1000,
8 frames in path order) the 3D-consistency score of the clip is compared with
the score of the same frames in a random order (a fixed permutation per clip
that moves frame 0 away)::

    python benchmarks/score_pairs.py --weights tiny-synthetic --out benchmarks/results/score_pairs.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="tiny-synthetic")
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=112)
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    torch.set_num_threads(1)
    from vggt3d import VGGT3D
    from vggt3d.data import build_dataset
    from vggt3d.prior.consistency import consistency

    model = VGGT3D.from_pretrained(a.weights)
    ds = build_dataset("synthetic", num_scenes=a.clips, num_frames=a.frames, image_size=[a.size, a.size],
                       seed=a.seed)
    rows = []
    for i in range(a.clips):
        frames = ds[i]["images"]  # [T, 3, H, W] in path order
        rng = np.random.default_rng([a.seed, i])
        perm = rng.permutation(a.frames)
        while perm[0] == 0:
            perm = rng.permutation(a.frames)
        good = consistency(frames, model).score
        bad = consistency(frames[torch.from_numpy(perm)], model).score
        rows.append({"clip": i, "consistent": good, "shuffled": bad, "order": perm.tolist()})
        print(f"clip {i:2d}: consistent {good:.3f}  shuffled {bad:.3f}", flush=True)
    wins = sum(r["consistent"] > r["shuffled"] for r in rows)
    summary = {"weights": a.weights, "wins": wins, "pairs": len(rows),
               "mean_consistent": float(np.mean([r["consistent"] for r in rows])),
               "mean_shuffled": float(np.mean([r["shuffled"] for r in rows])),
               "command": f"python benchmarks/score_pairs.py --weights {a.weights} --clips {a.clips} --seed {a.seed}",
               "clips": rows}
    print(f"consistent above shuffled in {wins}/{len(rows)} pairs "
          f"(means {summary['mean_consistent']:.3f} vs {summary['mean_shuffled']:.3f})")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
