"""Point clouds from dense predictions: unprojection, confidence selection, normals and spacing.

Convention: ``cam_from_world`` 4x4 with OpenCV axes (x right, y down, z
forward); intrinsics in pixels with pixel centres at integer coordinates;
``world [S, H, W, 3]``, ``valid [S, H, W]`` at the model's resolution; flat
pixel indices ``s * H * W + v * W + u``.
"""

from __future__ import annotations

import numpy as np

from .io.images import ImageTransform

__all__ = ["content_mask", "depth_points", "point_cloud", "select_points"]


def _normals_and_spacing(world: np.ndarray, valid: np.ndarray, keep: np.ndarray,
                         centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals (facing their camera) and nearest-neighbour spacing of the kept pixels.

    ``world [S, H, W, 3]`` and ``valid [S, H, W]``; ``keep`` flat pixel indices.
    Normals are the cross product of the central differences along the pixel grid
    (0 where undefined); spacing is the distance to the nearest valid 4-neighbour
    (``inf`` when there is none).
    """
    S, H, W = valid.shape
    s, rest = np.divmod(keep, H * W)
    v, u = np.divmod(rest, W)
    P = world[s, v, u].astype(np.float64)  # [N, 3]

    def neighbour(dv: int, du: int) -> tuple[np.ndarray, np.ndarray]:
        vv, uu = v + dv, u + du
        ok = (vv >= 0) & (vv < H) & (uu >= 0) & (uu < W)
        vv, uu = np.clip(vv, 0, H - 1), np.clip(uu, 0, W - 1)
        ok &= valid[s, vv, uu]
        return np.where(ok[:, None], world[s, vv, uu], P), ok

    (left, _), (right, _) = neighbour(0, -1), neighbour(0, 1)
    (up, _), (down, _) = neighbour(-1, 0), neighbour(1, 0)
    normal = np.cross(right - left, down - up)
    normal *= np.where(np.sum(normal * (centres[s] - P), axis=1, keepdims=True) < 0, -1.0, 1.0)
    length = np.linalg.norm(normal, axis=1, keepdims=True)
    normal = np.where(length > 0, normal / np.where(length > 0, length, 1.0), 0.0)
    spacing = np.full(len(keep), np.inf)
    for q in (left, right, up, down):
        d = np.linalg.norm(q - P, axis=1)
        spacing = np.minimum(spacing, np.where(d > 0, d, np.inf))
    return normal.astype(np.float32), spacing


def content_mask(transforms: list[ImageTransform], H: int, W: int) -> np.ndarray:
    mask = np.zeros((len(transforms), H, W), dtype=bool)
    for i, t in enumerate(transforms):
        x0, y0, x1, y1 = t.content_box_xyxy
        mask[i, y0:y1, x0:x1] = True
    return mask


def depth_points(depth: np.ndarray, cam_from_world: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points ``[S, H, W, 3]`` float32 from depth and cameras, and the valid mask (``depth > 1e-8``).

    Convention: as :func:`vggt3d.geometry.depth_to_world_points` (pixel centres at
    integers, ``X_world = R^T (X_cam - t)``), in numpy float64 one frame at a time
    (the torch version's broadcasting check imports sympy, seconds of start-up).
    """
    S, H, W = depth.shape
    world = np.empty((S, H, W, 3), np.float32)
    u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))  # [H, W]
    for i in range(S):
        d = depth[i].astype(np.float64)
        cam = np.stack([(u - K[i, 0, 2]) * d / K[i, 0, 0], (v - K[i, 1, 2]) * d / K[i, 1, 1], d], axis=-1)
        world[i] = (cam - cam_from_world[i, :3, 3]) @ cam_from_world[i, :3, :3]  # row form of R^T (X - t)
    return world, depth > 1e-8


def point_cloud(world: np.ndarray, valid: np.ndarray, keep: np.ndarray, cam_from_world: np.ndarray,
                 K_model: np.ndarray, K_orig: np.ndarray, transforms: list[ImageTransform]) -> dict[str, np.ndarray]:
    """Points, their frame, observation (original pixels), normals and spacing; drops points outside their image.

    The observation is the point projected into its own camera at original
    resolution: for depth points, exactly the pixel it was unprojected from.
    """
    S, H, W = valid.shape
    frame = (keep // (H * W)).astype(np.int32)
    points = world.reshape(-1, 3)[keep].astype(np.float32)
    cam = np.einsum("nij,nj->ni", cam_from_world[frame, :3, :3], points.astype(np.float64))
    cam += cam_from_world[frame, :3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.einsum("nij,nj->ni", K_orig[frame], cam)
        uv = uv[:, :2] / uv[:, 2:]
    sizes = np.array([[t.original_width, t.original_height] for t in transforms], dtype=np.float64)
    inside = (cam[:, 2] > 0) & np.all((uv >= -0.5) & (uv <= sizes[frame] - 0.5), axis=1)
    keep, frame, points, uv, cam = keep[inside], frame[inside], points[inside], uv[inside], cam[inside]
    centres = np.linalg.inv(cam_from_world)[:, :3, 3]
    normals, spacing = _normals_and_spacing(world, valid, keep, centres)
    footprint = cam[:, 2] / K_model[frame, 0, 0]  # size of one model pixel at the point's depth
    spacing = np.where(np.isfinite(spacing), spacing, footprint)
    return {"keep": keep, "frame": frame, "points": points, "uv": uv, "normals": normals, "spacing": spacing}


def select_points(world: np.ndarray, conf: np.ndarray, valid: np.ndarray, threshold: float, absolute: bool,
                   max_points: int | None, seed: int) -> tuple[np.ndarray, float, int]:
    """Flat indices of kept pixels (sorted), the absolute confidence threshold, and how many passed it."""
    valid = valid & np.isfinite(world).all(axis=-1) & np.isfinite(conf)
    values = conf[valid]
    if absolute:
        cut = float(threshold)
    else:
        if not 0 <= threshold <= 100:
            raise ValueError(f"a percentile confidence threshold must be in [0, 100], got {threshold}")
        cut = float(np.percentile(values, threshold)) if values.size else 0.0
    keep = np.flatnonzero(valid & (conf >= cut) & (conf > 1e-5))
    selected = int(keep.size)
    if max_points is not None and keep.size > max_points:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(keep, size=max_points, replace=False))
    return keep, cut, selected
