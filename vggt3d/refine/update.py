"""New cameras into a :class:`~vggt3d.result.Reconstruction`: every output follows them.

:func:`with_cameras` replaces the cameras, rescales the depth maps per frame
and recomputes the dense point cloud from them (with the reconstruction's own
confidence settings), so ``cameras.json``, COLMAP, PLY, GLB,
``transforms.json`` and splats stay consistent. :func:`apply_similarity` moves
the whole reconstruction by a similarity ``X' = s R X + t`` (new world frame and
units).

Convention: ``cam_from_world [S, 4, 4]`` with OpenCV axes (x right, y down, z
forward); intrinsics ``[S, 3, 3]`` in original pixels with pixel centres at
integers; depth is camera z.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from ..pointcloud import content_mask, depth_points, point_cloud, select_points
from ..result import Reconstruction, TrackPoints

__all__ = ["apply_similarity", "similarity_cameras", "with_cameras"]

log = logging.getLogger(__name__)


def _dense_cloud(rec: Reconstruction, cam_from_world: np.ndarray, K_model: np.ndarray, K_orig: np.ndarray,
                 depth: np.ndarray) -> dict[str, np.ndarray]:
    """The confidence-filtered cloud of ``depth`` with these cameras, selected as :func:`vggt3d.reconstruct` does."""
    info = rec.info
    _, H, W = depth.shape
    world, valid = depth_points(depth, cam_from_world, K_model)
    valid &= content_mask(rec.transforms, H, W)
    conf = rec.depth_conf
    max_points = info.get("max_points", None)
    keep, _, n_selected = select_points(world, conf, valid, float(info.get("conf_threshold", 50.0)),
                                        bool(info.get("conf_absolute", False)),
                                        None if max_points is None else int(max_points), int(info.get("seed", 0)))
    cloud = point_cloud(world, valid, keep, cam_from_world, K_model, K_orig, rec.transforms)
    cloud["spacing"] = (cloud["spacing"] * np.sqrt(max(n_selected, 1) / max(keep.size, 1))).astype(np.float32)
    cloud["conf"] = conf.reshape(-1)[cloud["keep"]].astype(np.float32)
    cloud["colors"] = rec.model_colors.reshape(-1, 3)[cloud["keep"]]
    return cloud


def with_cameras(rec: Reconstruction, cam_from_world: np.ndarray, intrinsics: np.ndarray,
                 depth_scale: np.ndarray | None = None, track_points: TrackPoints | None = None) -> Reconstruction:
    """A copy of ``rec`` with new cameras, depth maps scaled by ``depth_scale [S]`` and the dense cloud recomputed.

    Args:
        cam_from_world: ``[S, 4, 4]`` (OpenCV axes).
        intrinsics: ``[S, 3, 3]`` original pixels; the model-grid intrinsics
            follow exactly through each frame's :class:`~vggt3d.io.images.ImageTransform`.
        depth_scale: per-frame factor on the predicted depth (default 1).
        track_points: multi-view points to carry (default: ``rec``'s).
    """
    S = rec.num_frames
    K_model = np.stack([t.intrinsics_to_model(k) for t, k in zip(rec.transforms, intrinsics)])
    scale = np.ones(S) if depth_scale is None else np.asarray(depth_scale, dtype=np.float64)
    depth = (rec.depth * scale[:, None, None]).astype(np.float32)
    cloud = _dense_cloud(rec, cam_from_world, K_model, intrinsics, depth)
    return dataclasses.replace(
        rec, intrinsics=np.asarray(intrinsics, np.float64).copy(), cam_from_world=np.asarray(cam_from_world).copy(),
        model_intrinsics=K_model, depth=depth, points=cloud["points"], colors=cloud["colors"],
        point_conf=cloud["conf"], point_normals=cloud["normals"], point_spacing=cloud["spacing"],
        point_frame=cloud["frame"], point_uv=cloud["uv"], world_points=None,
        track_points=rec.track_points if track_points is None else track_points, info=dict(rec.info))


def similarity_cameras(cam_from_world: np.ndarray, s: float, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cameras ``[S, 4, 4]`` after the world moves by ``X' = s R X + t`` (camera frames scale with it).

    Convention: the new ``cam_from_world`` maps ``X'`` to ``s`` times the old camera
    coordinates, so depths scale by ``s``: ``R_c' = R_c R^T``, ``t_c' = s t_c - R_c' t``.
    """
    out = np.tile(np.eye(4), (len(cam_from_world), 1, 1))
    Rc = cam_from_world[:, :3, :3] @ R.T
    out[:, :3, :3] = Rc
    out[:, :3, 3] = s * cam_from_world[:, :3, 3] - Rc @ t
    return out


def apply_similarity(rec: Reconstruction, s: float, R: np.ndarray, t: np.ndarray) -> Reconstruction:
    """``rec`` moved by ``X' = s R X + t``: cameras, points, normals, spacing, depth (x ``s``), track points."""
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"a similarity needs a positive finite scale, got {s}")
    tp = rec.track_points
    if tp is not None:
        tp = dataclasses.replace(tp, points=s * tp.points @ R.T + t)
    world_points = None if rec.world_points is None else (s * rec.world_points @ R.T.astype(np.float32) + t
                                                          ).astype(np.float32)
    return dataclasses.replace(
        rec, cam_from_world=similarity_cameras(rec.cam_from_world, s, R, t), depth=(rec.depth * s).astype(np.float32),
        points=(s * rec.points.astype(np.float64) @ R.T + t).astype(np.float32),
        point_normals=(rec.point_normals.astype(np.float64) @ R.T).astype(np.float32),
        point_spacing=(rec.point_spacing * s).astype(np.float32), track_points=tp, world_points=world_points,
        info=dict(rec.info))
