"""Camera accuracy of the refinement (``vggt3d.refine``) on held-out synthetic scenes with exact ground truth.

    python benchmarks/refine.py --scenes 8 --frames 8 --out benchmarks/results/refine.json

Scenes are :class:`vggt3d.data.SyntheticScenes` renders (real images, exact
cameras and depth) of seed >= 1000 (held out from training, which uses seed 0).
Four measurements, each per scene and summarised (median, mean):

1. ``ba_from_perturbed_truth``: every camera but the first rotated by 3 degrees
   (random axis) and moved by 5 % of the mean camera distance; the refinement
   pipeline (``refine_reconstruction``: SIFT feature tracks, bundle adjustment
   with the true intrinsics held fixed, re-triangulation, adjustment again) on
   the exact geometry with those cameras. Mean relative rotation error over all frame pairs
   (degrees, independent of the world frame) before and after, reprojection error.
2. ``shipped_model``: ``vggt3d.reconstruct`` with the shipped model (``--weights``,
   default ``tiny-synthetic``) without and with ``refine="ba"`` (``shared_camera``:
   the scenes share intrinsics): AUC@30, @5, @3 of the VGGT protocol (relative
   rotation and translation angles over all pairs), the mean reprojection error
   after BA, and how often BA succeeded.
3. ``known_intrinsics``: the shipped model with the true intrinsics given
   (``intrinsics=K``; the model has no point map, so the predicted poses stay),
   alone and with ``refine="ba"`` (intrinsics held fixed): focal error (0 by
   construction) and AUC / rotation error.
4. ``known_poses``: the true poses in metric units (x ``--metric-scale``) given
   (``poses=...``): camera centre error after the Sim(3) alignment relative to the
   spread of the cameras, and the recovered scale (median ratio of output depth to
   true metric depth), for the exact geometry (the true depth maps at an unknown
   scale: the mechanics) and for the shipped model, aligned only, and with
   ``fix_poses=True, intrinsics=K, tracks_from="features"`` (the given cameras used
   exactly, each depth map rescaled to the feature tracks triangulated with them).

The shipped model is whatever ``vggt3d/assets/`` holds when this runs (the
JSON records its file size and modification time); rerun after retraining.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np
import torch
from vggt3d.data import SyntheticConfig, SyntheticScenes

from vggt3d.metrics import auc, camera_pair_errors


def render(seed: int, index: int, frames: int, size: tuple[int, int]) -> dict:
    ds = SyntheticScenes(SyntheticConfig(num_scenes=index + 1, num_frames=frames, image_size=size, seed=seed))
    s = ds[index]
    cams = np.tile(np.eye(4), (frames, 1, 1))
    cams[:, :3] = s["cam_from_world"].numpy().astype(np.float64)
    cams = cams @ np.linalg.inv(cams[0])  # world = first camera
    images = np.round(s["images"].numpy().transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    scene = ds.scene(index)
    return {"images": images, "cam_from_world": cams, "K": s["intrinsics"].numpy().astype(np.float64),
            "depth": s["depths"].numpy().astype(np.float64), "name": f"s{seed}-{index}",
            "kind": f"{scene.scene_type}/{scene.camera_path}"}


def perturb(cams: np.ndarray, degrees: float, fraction: float, seed: int) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    out = cams.copy()
    spread = np.linalg.norm(np.linalg.inv(cams)[:, :3, 3], axis=1).mean()
    for i in range(1, len(cams)):
        axis = rng.normal(size=3)
        out[i, :3, :3] = Rotation.from_rotvec(axis / np.linalg.norm(axis) * np.radians(degrees)).as_matrix() @ \
            cams[i, :3, :3]
        step = rng.normal(size=3)
        out[i, :3, 3] += fraction * spread * step / np.linalg.norm(step)
    return out


def pose_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    rot, trans = camera_pair_errors(torch.from_numpy(pred), torch.from_numpy(truth))
    return {"AUC@30": auc(rot, trans, 30)[0], "AUC@5": auc(rot, trans, 5)[0], "AUC@3": auc(rot, trans, 3)[0],
            "rot_err_deg": float(rot.mean()), "trans_err_deg": float(trans.mean())}


def ba_from_truth(scene: dict, seed: int) -> dict:
    """The pipeline (``refine_reconstruction``) on the exact geometry with perturbed cameras, intrinsics fixed."""
    from vggt3d.refine import BAConfig, RefineConfig, refine_reconstruction

    truth = scene["cam_from_world"]
    start = perturb(truth, 3.0, 0.05, seed)
    rec = exact_reconstruction({**scene, "cam_from_world": start})
    t0 = time.perf_counter()
    out = refine_reconstruction(rec, tracks_from="features", refine="ba",
                                config=RefineConfig(ba=BAConfig(refine_focal=False)))
    info = out.info["refine"]
    row = {"scene": scene["name"], "kind": scene["kind"], "tracks_found": out.info["tracks_from"]["found"],
           "rot_err_before_deg": pose_metrics(start, truth)["rot_err_deg"], "status": info["status"],
           "seconds": time.perf_counter() - t0}
    if info["status"] != "refined":
        return row
    return row | {"rot_err_after_deg": pose_metrics(out.cam_from_world, truth)["rot_err_deg"],
                  "reprojection_error_px": info["reprojection_error_after"], "tracks": info["tracks"],
                  "observations": info["observations"]}


def shipped(scene: dict, weights: str, metric_scale: float) -> dict:
    import vggt3d

    truth = scene["cam_from_world"]
    images = list(scene["images"])
    row: dict = {"scene": scene["name"], "kind": scene["kind"]}
    plain = vggt3d.reconstruct(images, model=weights)
    row["plain"] = pose_metrics(plain.cam_from_world, truth)
    row["plain_focal_error"] = float(np.mean(np.abs(plain.intrinsics[:, 0, 0] / scene["K"][:, 0, 0] - 1)))
    refined = vggt3d.reconstruct(images, model=weights, refine="ba", shared_camera=True)
    info = refined.info["refine"]
    row["ba"] = pose_metrics(refined.cam_from_world, truth) | {"status": info["status"]}
    if info["status"] == "refined":
        row["ba"] |= {"reprojection_error_before_px": info["reprojection_error_before"],
                      "reprojection_error_after_px": info["reprojection_error_after"], "tracks": info["tracks"],
                      "observations": info["observations"]}
    known_k = vggt3d.reconstruct(images, model=weights, intrinsics=scene["K"])
    row["known_intrinsics"] = pose_metrics(known_k.cam_from_world, truth) | {
        "focal_error": float(np.abs(known_k.intrinsics[:, 0, 0] / scene["K"][:, 0, 0] - 1).max())}
    known_k_ba = vggt3d.reconstruct(images, model=weights, intrinsics=scene["K"], refine="ba")
    row["known_intrinsics_ba"] = pose_metrics(known_k_ba.cam_from_world, truth) | {
        "status": known_k_ba.info["refine"]["status"]}
    given = truth.copy()
    given[:, :3, 3] *= metric_scale
    posed = vggt3d.reconstruct(images, model=weights, poses=given)
    row["known_poses"] = known_pose_metrics(posed, given, scene, metric_scale)
    fixed = vggt3d.reconstruct(images, model=weights, poses=given, fix_poses=True, intrinsics=scene["K"],
                               tracks_from="features")
    row["known_poses_fixed"] = known_pose_metrics(fixed, given, scene, metric_scale)
    return row


def known_pose_metrics(rec, given: np.ndarray, scene: dict, metric_scale: float) -> dict:
    centres = np.linalg.inv(rec.cam_from_world)[:, :3, 3]
    truth = np.linalg.inv(given)[:, :3, 3]
    spread = float(np.linalg.norm(truth - truth.mean(axis=0), axis=1).mean())
    err = np.linalg.norm(centres - truth, axis=1) / spread
    depth = np.stack([rec.depth_at_original(i) for i in range(rec.num_frames)])
    gt = scene["depth"] * metric_scale
    ok = (depth > 0) & (gt > 0)
    return {"centre_error_median_rel": float(np.median(err)), "centre_error_max_rel": float(err.max()),
            "scale_ratio": float(np.median(depth[ok] / gt[ok])), "outliers": rec.info["known_poses"]["outliers"]}


def exact_reconstruction(scene: dict):
    """A reconstruction holding the true cameras and depth maps (what an exact model would predict)."""
    from PIL import Image

    from vggt3d.io.images import ImageTransform
    from vggt3d.pointcloud import content_mask, depth_points, point_cloud, select_points
    from vggt3d.result import Reconstruction

    images, cams, K = scene["images"], scene["cam_from_world"], scene["K"]
    S, H, W = images.shape[:3]
    t = ImageTransform(W, H, W, H, 0, 0, W, H)
    depth = scene["depth"].astype(np.float32)
    conf = np.where(depth > 0, 2.0, 0.0).astype(np.float32)
    world, valid = depth_points(depth, cams, K)
    valid &= content_mask([t] * S, H, W)
    keep, _, _ = select_points(world, conf, valid, 0.0, False, 20000, 0)
    cloud = point_cloud(world, valid, keep, cams, K, K, [t] * S)
    return Reconstruction(
        image_names=[f"{i:03d}.png" for i in range(S)], sources=["<memory>"] * S, image_sizes=np.array([[W, H]] * S),
        intrinsics=K.copy(), cam_from_world=cams.copy(), transforms=[t] * S, model_intrinsics=K.copy(), depth=depth,
        depth_conf=conf, model_colors=images, points=cloud["points"], colors=images.reshape(-1, 3)[cloud["keep"]],
        point_conf=conf.reshape(-1)[cloud["keep"]], point_normals=cloud["normals"],
        point_spacing=cloud["spacing"].astype(np.float32), point_frame=cloud["frame"], point_uv=cloud["uv"],
        info={"conf_threshold": 0.0, "max_points": 20000, "seed": 0},
        image_data=[Image.fromarray(im) for im in images])


def exact_known_poses(scene: dict, metric_scale: float) -> dict:
    """The mechanics: the true geometry in unknown units (x 0.37), aligned to the given metric poses."""
    from vggt3d.refine.known import align_to_poses
    from vggt3d.refine.update import apply_similarity

    rec = apply_similarity(exact_reconstruction(scene), 0.37, np.eye(3), np.zeros(3))
    given = scene["cam_from_world"].copy()
    given[:, :3, 3] *= metric_scale
    return known_pose_metrics(align_to_poses(rec, given), given, scene, metric_scale)


def summary(values: list[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"n": 0}
    return {"n": int(v.size), "median": float(np.median(v)), "mean": float(v.mean()), "max": float(v.max())}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    rows = result["ba_from_perturbed_truth"]["scenes"]
    names = [r["scene"] for r in rows]
    before = [r["rot_err_before_deg"] for r in rows]
    after = [r.get("rot_err_after_deg", np.nan) for r in rows]
    x = np.arange(len(rows))
    axes[0].bar(x - 0.2, before, 0.4, label="perturbed (3 deg, 5 %)")
    axes[0].bar(x + 0.2, after, 0.4, label="after BA (feature tracks)")
    axes[0].axhline(0.1, color="k", lw=0.8, ls="--")
    axes[0].set_yscale("log")
    axes[0].set_xticks(x, names, rotation=45, ha="right", fontsize=7)
    axes[0].set_ylabel("mean relative rotation error (deg)")
    axes[0].legend(fontsize=8)
    m = result["shipped_model"]["summary"]
    keys = ["AUC@30", "AUC@5", "AUC@3"]
    x = np.arange(len(keys))
    for k, (label, offset) in enumerate((("model", -0.3), ("+ BA", -0.1), ("+ known K", 0.1),
                                         ("+ known K + BA", 0.3))):
        field = ("plain", "ba", "known_intrinsics", "known_intrinsics_ba")[k]
        axes[1].bar(x + offset, [m[field][key].get("mean", np.nan) for key in keys], 0.2, label=label)
    axes[1].set_xticks(x, keys)
    axes[1].set_ylabel(f"mean over scenes ({result['weights']})")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--seed", type=int, default=1000, help="synthetic seed (>= 1000: held out)")
    parser.add_argument("--weights", default="tiny-synthetic")
    parser.add_argument("--metric-scale", type=float, default=2.5, help="units of the given poses vs the renderer's")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/refine.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()
    ba_rows, model_rows, exact_rows = [], [], []
    for index in range(args.scenes):
        scene = render(args.seed, index, args.frames, (args.height, args.width))
        ba_rows.append(ba_from_truth(scene, seed=index))
        model_rows.append(shipped(scene, args.weights, args.metric_scale))
        exact_rows.append({"scene": scene["name"]} | exact_known_poses(scene, args.metric_scale))
        print(json.dumps(ba_rows[-1]), flush=True)
    weights_file = None
    from vggt3d.hub import shipped_models

    root = shipped_models().get(args.weights)
    if root is not None and (root / "model.safetensors").is_file():
        st = (root / "model.safetensors").stat()
        weights_file = {"bytes": st.st_size, "modified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime))}
    refined = [r for r in ba_rows if r["status"] == "refined"]
    ba_model = [r["ba"] for r in model_rows]

    def field(rows, part, key):
        return summary([r[part].get(key) for r in rows])

    result = {
        "command": "python benchmarks/refine.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out") + f" --out {args.out}",
        "weights": args.weights, "weights_file": weights_file, "seed": args.seed, "frames": args.frames,
        "image_size": [args.width, args.height], "platform": platform.platform(), "threads": args.threads,
        "ba_from_perturbed_truth": {
            "summary": {"rot_err_before_deg": summary([r["rot_err_before_deg"] for r in ba_rows]),
                        "rot_err_after_deg": summary([r["rot_err_after_deg"] for r in refined]),
                        "reprojection_error_px": summary([r["reprojection_error_px"] for r in refined]),
                        "tracks": summary([r.get("tracks") for r in ba_rows]),
                        "refined": len(refined), "scenes": len(ba_rows),
                        "below_0.1_deg": sum(r["rot_err_after_deg"] < 0.1 for r in refined)},
            "scenes": ba_rows},
        "shipped_model": {
            "summary": {part: {k: field(model_rows, part, k) for k in ("AUC@30", "AUC@5", "AUC@3", "rot_err_deg")}
                        for part in ("plain", "ba", "known_intrinsics", "known_intrinsics_ba")}
            | {"ba_refined": sum(r["status"] == "refined" for r in ba_model), "scenes": len(ba_model),
               "ba_reprojection_error_after_px": summary([r.get("reprojection_error_after_px") for r in ba_model]),
               "known_intrinsics_focal_error": summary([r["known_intrinsics"]["focal_error"] for r in model_rows]),
               "plain_focal_error": summary([r["plain_focal_error"] for r in model_rows]),
               "known_poses": {k: summary([r["known_poses"][k] for r in model_rows])
                               for k in ("centre_error_median_rel", "scale_ratio")},
               "known_poses_and_intrinsics_fixed_with_feature_tracks": {
                   k: summary([r["known_poses_fixed"][k] for r in model_rows])
                   for k in ("centre_error_median_rel", "scale_ratio")}},
            "scenes": model_rows},
        "known_poses_exact_geometry": {
            "summary": {k: summary([r[k] for r in exact_rows])
                        for k in ("centre_error_median_rel", "centre_error_max_rel", "scale_ratio")},
            "scenes": exact_rows},
        "seconds": time.perf_counter() - start,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, args.out.with_suffix(".png"))
    print(json.dumps({k: v["summary"] for k, v in result.items() if isinstance(v, dict) and "summary" in v},
                     indent=1))


if __name__ == "__main__":
    main()
