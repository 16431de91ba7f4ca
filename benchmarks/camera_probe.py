"""Is the relative pose in the camera tokens? A linear probe against the camera head (the issue #9 diagnosis).

For checkpoints, on held-out synthetic clips (dataset seed 1000 by default):
the last aggregator layer's camera tokens of frames 1..S-1 (``[2C]`` each,
with frame 0's token of the same clip beside them) are mapped to the true
pose encoding of that frame (rotation quaternion, scalar-last; translation
direction) by ridge regression fitted on the first half of the clips (its weight
chosen on a split of that half), and scored on the other half (R^2 per target group, and the rotation error in
degrees of the probe's quaternion). The camera head's own prediction is
scored the same way. A probe far above the head means the tokens carry the
pose and the head does not read it; a probe near 0 means the tokens do not
carry it. ``pointmap``: each frame's rotation recovered from the point map
(a weighted similarity fit of the back-projected predicted depth onto the
predicted points in frame 0's coordinates), on all clips::

    python benchmarks/camera_probe.py runs/tiny-synthetic-next/checkpoints/step-00001000 \\
        --out benchmarks/results/camera_probe.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def _r2(pred: np.ndarray, true: np.ndarray) -> float:
    """Coefficient of determination over all entries of ``[N, k]`` (per-column means)."""
    ss_res = float(((pred - true) ** 2).sum())
    ss_tot = float(((true - true.mean(0)) ** 2).sum())
    return 1.0 - ss_res / max(ss_tot, 1e-12)


def _angle_deg(q_pred: np.ndarray, q_true: np.ndarray) -> np.ndarray:
    """Rotation angle between unit quaternions ``[N, 4]`` (either sign), degrees."""
    q_pred = q_pred / np.maximum(np.linalg.norm(q_pred, axis=-1, keepdims=True), 1e-9)
    dot = np.clip(np.abs((q_pred * q_true).sum(-1)), 0.0, 1.0)
    return np.degrees(2 * np.arccos(dot))


def _pointmap_rotation_errors(out: dict, k: int, sample: dict) -> list[float]:
    """Rotation errors (deg) of frames 1.. recovered from the point map: a confidence-weighted rigid fit
    (with scale) of the predicted depth, back-projected through the true intrinsics (camera frame), onto the
    predicted point map (frame 0's coordinates), against the true ``cam_i_from_cam_0`` rotation."""
    from vggt3d.geometry import depth_to_cam_points, relative_to_first
    from vggt3d.longvideo import umeyama
    from vggt3d.metrics import rotation_angle_deg

    cam = depth_to_cam_points(out["depth"][k].double(), sample["intrinsics"].double())  # [S, H, W, 3]
    points = out["world_points"][k].double()  # [S, H, W, 3] frame 0's coordinates
    conf = out["world_points_conf"][k].double()  # [S, H, W]
    rel = relative_to_first(sample["cam_from_world"].double())  # [S, 3, 4] cam_i_from_cam_0
    errors = []
    for f in range(1, len(rel)):
        fit = umeyama(cam[f].reshape(-1, 3).numpy(), points[f].reshape(-1, 3).numpy(), conf[f].reshape(-1).numpy())
        pred = torch.from_numpy(fit.rotation.T)  # cam_0_from_cam_f -> cam_f_from_cam_0
        errors.append(float(rotation_angle_deg(pred, rel[f, :, :3])))
    return errors


def _ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Weights ``[D + 1, k]`` of ridge regression with a bias column."""
    xb = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    return np.linalg.solve(xb.T @ xb + lam * np.eye(xb.shape[1]), xb.T @ y)


def _apply(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.ones((len(x), 1))], axis=1) @ w


@torch.no_grad()
def probe(source: str, clips: int = 96, frames: int = 8, size: int = 112, seed: int = 1000) -> dict:
    from vggt3d import VGGT3D
    from vggt3d.data import build_dataset
    from vggt3d.geometry import cameras_to_pose_encoding, relative_to_first

    model = VGGT3D.from_pretrained(source).eval()
    ds = build_dataset("synthetic", num_scenes=clips, num_frames=frames, image_size=[size, size], seed=seed)
    feats, targets, heads, pm_errors = [], [], [], []
    last = model.head_layers()[-1]
    for start in range(0, clips, 8):
        batch = [ds[i] for i in range(start, min(start + 8, clips))]
        images = torch.stack([b["images"] for b in batch])  # [B, S, 3, H, W]
        tokens = model.forward_intermediates(images, model.head_layers())
        cam = tokens[last][:, :, 0]  # [B, S, 2C] camera tokens
        feats.append(torch.cat([cam[:, 1:], cam[:, :1].expand_as(cam[:, 1:])], dim=-1).flatten(0, 1))
        out = model.forward_heads(tokens, (size, size))
        heads.append(out["pose_enc"][:, 1:].flatten(0, 1))
        if "world_points" in out and "depth" in out:
            for k, b in enumerate(batch):
                pm_errors += _pointmap_rotation_errors(out, k, b)
        for b in batch:
            rel = relative_to_first(b["cam_from_world"].double())  # cam_i_from_cam_0, as the model predicts
            enc = cameras_to_pose_encoding(rel, b["intrinsics"].double(), (size, size))
            targets.append(enc[1:])  # [S-1, 9]: translation, quaternion (scalar-last, w >= 0), field of view
    x = torch.cat(feats).double().numpy()  # [N, 4C]
    y = torch.cat(targets).double().numpy()  # [N, 9]
    head = torch.cat(heads).double().numpy()
    y = np.concatenate([y[:, :3] / np.maximum(np.linalg.norm(y[:, :3], axis=1, keepdims=True), 1e-9), y[:, 3:7]],
                       axis=1)  # translation direction, quaternion
    head = np.concatenate([head[:, :3] / np.maximum(np.linalg.norm(head[:, :3], axis=1, keepdims=True), 1e-9),
                           head[:, 3:7]], axis=1)
    n_fit = (clips // 2) * (frames - 1)
    mu, sd = x[:n_fit].mean(0), x[:n_fit].std(0) + 1e-6
    xs = (x - mu) / sd
    inner = (clips // 4) * (frames - 1)  # choose lambda on a split of the fit clips
    lam = min((1.0, 10.0, 100.0, 1e3, 1e4, 1e5), key=lambda lm: -_r2(
        _apply(_ridge(xs[:inner], y[:inner], lm), xs[inner:n_fit]), y[inner:n_fit]))
    w = _ridge(xs[:n_fit], y[:n_fit], lam)
    pred = _apply(w, xs[n_fit:])
    true = y[n_fit:]
    head_test = head[n_fit:]
    head_test[:, 3:7] *= np.sign(head_test[:, 6:7] + 1e-12)
    identity = np.tile(np.array([0, 0, 0, 1.0]), (len(true), 1))
    out = {"source": source, "clips": clips, "frames": frames, "seed": seed, "fit_samples": n_fit,
           "test_samples": len(true), "ridge_lambda": lam}  # the chosen one
    for name, p in (("probe", pred), ("head", head_test)):
        ang = _angle_deg(p[:, 3:7], true[:, 3:7])
        out[name] = {"r2_rotation": round(_r2(p[:, 3:7], true[:, 3:7]), 3),
                     "r2_translation_direction": round(_r2(p[:, :3], true[:, :3]), 3),
                     "rotation_error_deg_median": round(float(np.median(ang)), 2),
                     "rotation_within_30deg": round(float((ang < 30).mean()), 3)}
    if pm_errors:  # all clips (no fit involved)
        pm = np.array(pm_errors)
        out["pointmap"] = {"rotation_error_deg_median": round(float(np.median(pm)), 2),
                           "rotation_within_30deg": round(float((pm < 30).mean()), 3)}
    ang = _angle_deg(identity, true[:, 3:7])
    out["identity"] = {"rotation_error_deg_median": round(float(np.median(ang)), 2),
                       "rotation_within_30deg": round(float((ang < 30).mean()), 3)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", help="checkpoints (any from_pretrained source)")
    p.add_argument("--clips", type=int, default=96)
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    results = [probe(s, clips=args.clips, seed=args.seed) for s in args.sources]
    for r in results:
        print(json.dumps(r))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": "python benchmarks/camera_probe.py " + " ".join(
            [*args.sources, "--clips", str(args.clips), "--seed", str(args.seed)]), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
