"""The shipped model on the demo scene ``examples/room``: camera targets and the README picture.

Reconstructs ``examples/room/images`` (as ``vggt3d reconstruct`` does), aligns the
predicted camera centres to ``examples/room/cameras.json`` with a Sim(3)
(Umeyama), and reports per camera: centre error as a fraction of the ground-truth
path length, rotation error after the alignment (degrees) and relative focal
error. Targets (issue #9): centres within 10 % of the path length, rotations
within 5 degrees, focal lengths within 10 %. Also draws ``docs/img/room.png``:
the predicted points and cameras next to the ground-truth cameras::

    python benchmarks/room_check.py --weights tiny-synthetic --out benchmarks/results/room_check.json \\
        --image docs/img/room.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"centre_err_frac": 0.10, "rot_err_deg": 5.0, "focal_err_frac": 0.10}


def load_ground_truth(scene: Path) -> tuple[np.ndarray, np.ndarray]:
    """``cam_from_world [S, 4, 4]`` and ``K [S, 3, 3]`` of a vggt3d scene folder's ``cameras.json``."""
    data = json.loads((scene / "cameras.json").read_text())
    cams, ks = [], []
    for f in data["frames"]:
        m = np.eye(4)
        m[:3] = np.asarray(f["cam_from_world"], dtype=np.float64)
        cams.append(m)
        ks.append(np.asarray(f["K"], dtype=np.float64))
    return np.stack(cams), np.stack(ks)


def check(rec, gt_cams: np.ndarray, gt_k: np.ndarray) -> dict:
    """Sim(3)-aligned camera errors of a :class:`vggt3d.Reconstruction` against ground truth."""
    from vggt3d.metrics import umeyama_sim3

    pred_w = np.linalg.inv(rec.cam_from_world)  # world_from_cam [S, 4, 4]
    gt_w = np.linalg.inv(gt_cams)
    s, R, t = (v.numpy() if isinstance(v, torch.Tensor) else v
               for v in umeyama_sim3(torch.from_numpy(pred_w[:, :3, 3]), torch.from_numpy(gt_w[:, :3, 3])))
    centres = s * pred_w[:, :3, 3] @ R.T + t
    path = float(np.linalg.norm(np.diff(gt_w[:, :3, 3], axis=0), axis=1).sum())
    centre_err = np.linalg.norm(centres - gt_w[:, :3, 3], axis=1) / path
    rot_aligned = R @ pred_w[:, :3, :3]
    rel = np.einsum("sji,sjk->sik", rot_aligned, gt_w[:, :3, :3])  # R_pred^T R_gt
    rot_err = np.degrees(np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    f_pred = (rec.intrinsics[:, 0, 0] + rec.intrinsics[:, 1, 1]) / 2
    f_gt = (gt_k[:, 0, 0] + gt_k[:, 1, 1]) / 2
    focal_err = np.abs(f_pred - f_gt) / f_gt
    out = {
        "path_length": path, "sim3_scale": float(s),
        "centre_err_frac": centre_err.tolist(), "rot_err_deg": rot_err.tolist(), "focal_err_frac": focal_err.tolist(),
        "focal_pred": f_pred.tolist(), "focal_gt": f_gt.tolist(),
        "max": {"centre_err_frac": float(centre_err.max()), "rot_err_deg": float(rot_err.max()),
                "focal_err_frac": float(focal_err.max())},
    }
    out["targets"] = TARGETS
    out["pass"] = {k: out["max"][k] <= v for k, v in TARGETS.items()}
    out["aligned_world_from_cam"] = np.concatenate([rot_aligned, centres[:, :, None]], axis=2).tolist()
    out["_sim3"] = (float(s), R.tolist(), t.tolist())
    return out


def _cameras(ax, world_from_cam: np.ndarray, colour: str, label: str, size: float) -> None:
    c = world_from_cam[:, :3, 3]
    ax.plot(*c.T, color=colour, lw=1.5, label=label)
    ax.scatter(*c.T, color=colour, s=14)
    for cam in world_from_cam:
        ax.plot(*np.stack([cam[:3, 3], cam[:3, 3] + cam[:3, 2] * size]).T, color=colour, lw=1)  # optical axis


def _limits(ax, points: np.ndarray) -> None:
    lo, hi = points.min(0), points.max(0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2 * 1.1, 1e-6)
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(centre[2] - half, centre[2] + half)
    ax.set_xticks([]), ax.set_yticks([]), ax.set_zticks([])


def draw(rec, result: dict, gt_cams: np.ndarray, path: Path, title: str) -> None:
    """Left: the prediction (points and cameras, in its own frame); right: the ground-truth cameras."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = np.random.default_rng(0).choice(len(rec.points), min(len(rec.points), 6000), replace=False)
    pts, cols = rec.points[idx], rec.colors[idx] / 255.0
    pred = np.linalg.inv(rec.cam_from_world)  # world_from_cam [S, 4, 4]
    gt = np.linalg.inv(gt_cams)
    fig = plt.figure(figsize=(11, 5))
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    ax.scatter(*pts.T, c=cols, s=1, alpha=0.6, depthshade=False)
    extent = np.concatenate([np.percentile(pts, [2, 98], axis=0), pred[:, :3, 3]]) if len(pts) else pred[:, :3, 3]
    _cameras(ax, pred, "red", "predicted cameras", 0.1 * float(np.ptp(extent, axis=0).max()))
    _limits(ax, extent)
    ax.view_init(elev=-60, azim=-90)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("prediction: points and cameras", fontsize=9)
    ax = fig.add_subplot(1, 2, 2, projection="3d")
    _cameras(ax, gt, "black", "ground-truth cameras", 0.15 * result["path_length"])
    _limits(ax, gt[:, :3, 3])
    ax.view_init(elev=-60, azim=-90)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("examples/room/cameras.json", fontsize=9)
    m = result["max"]
    fig.suptitle(f"{title}: after Sim(3) alignment, worst camera centre error {100 * m['centre_err_frac']:.0f} % "
                 f"of the path, rotation {m['rot_err_deg']:.0f} deg, focal {100 * m['focal_err_frac']:.0f} %",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="tiny-synthetic")
    p.add_argument("--scene", type=Path, default=ROOT / "examples" / "room")
    p.add_argument("--out", type=Path, default=None, help="JSON report")
    p.add_argument("--image", type=Path, default=None, help="PNG picture (e.g. docs/img/room.png)")
    p.add_argument("--points-from", default="depth", choices=["depth", "pointmap"])
    a = p.parse_args()
    torch.set_num_threads(1)
    from vggt3d import reconstruct

    rec = reconstruct(str(a.scene / "images"), a.weights, device="cpu", points_from=a.points_from)
    gt_cams, gt_k = load_ground_truth(a.scene)
    result = check(rec, gt_cams, gt_k)
    summary = {k: v for k, v in result.items() if not k.startswith("_") and k != "aligned_world_from_cam"}
    summary["command"] = f"python benchmarks/room_check.py --weights {a.weights} --points-from {a.points_from}"
    print(json.dumps({"max": summary["max"], "pass": summary["pass"]}, indent=1))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(summary, indent=1))
    if a.image:
        draw(rec, result, gt_cams, a.image, f"{a.weights} on examples/room")


if __name__ == "__main__":
    main()
