"""Exact ray casting of a scene of analytic primitives, with view-independent shading (numpy, CPU).

A :class:`Scene` holds primitives (:mod:`vggt3d.data.primitives`), a light and a
sky. :meth:`Scene.raycast` intersects arbitrary rays exactly (closed form,
float64); :meth:`Scene.render` draws a whole pinhole view through the fast
one-origin path, testing each primitive only on the pixels of its projected
bounding box.

Convention: rays are ``X(t) = origin + t * direction`` with ``direction`` the
world direction of ``K^-1 [u, v, 1]`` (camera z component 1), so the hit
parameter ``t`` *is* the camera z-depth. Cameras are ``cam_from_world = [R | t]``
with OpenCV axes (x right, y down, z forward); pixel centres at integers.
Textures depend only on the world position of a surface point and shading only
on its normal and a fixed light, so every view of a surface agrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .primitives import MISS, Primitive
from .textures import PATTERNS, Material, value_noise

__all__ = ["PATTERNS", "Material", "Primitive", "Scene", "pixel_rays", "value_noise"]


# ----------------------------------------------------------------------------------------------
# Scene


def pixel_rays(cam_from_world: np.ndarray, intrinsics: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World rays through pixel positions.

    Convention: ``uv [..., 2]`` pixels (x, y) with centres at integers; the returned
    direction ``[..., 3]`` is ``R^T K^-1 [u, v, 1]`` (camera z component 1, so the hit
    parameter is the z-depth), the origin ``[3]`` is the camera centre ``-R^T t``.
    """
    rotation, translation = cam_from_world[:, :3], cam_from_world[:, 3]
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    cam_dirs = np.stack([(uv[..., 0] - cx) / fx, (uv[..., 1] - cy) / fy, np.ones(uv.shape[:-1])], axis=-1)
    return -rotation.T @ translation, cam_dirs @ rotation  # origin [3], directions [..., 3]


@dataclass
class Scene:
    """Primitives, a directional light and a sky; renders exact depth and view-independent colour.

    Convention: ``light_dir`` is the unit world direction *towards* the light;
    ``up`` the world up vector used for the sky gradient.
    """

    primitives: list[Primitive]
    light_dir: np.ndarray
    up: np.ndarray
    ambient: float = 0.35
    sky_top: tuple[float, float, float] = (0.45, 0.6, 0.9)
    sky_bottom: tuple[float, float, float] = (0.85, 0.9, 0.95)

    def raycast(self, origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest hits of rays ``origins + t * directions`` (generic path, any origins).

        Args:
            origins: ``[3]`` or ``[N, 3]`` world origins.
            directions: ``[N, 3]`` world directions.

        Returns:
            ``(t [N] float64, inf on a miss; primitive index [N] int64, -1 on a miss)``.
        """
        t_best = np.full(directions.shape[:-1], np.inf)
        index = np.full(directions.shape[:-1], -1, dtype=np.int64)
        for k, primitive in enumerate(self.primitives):
            t = primitive.intersect(origins, directions)
            closer = t < t_best
            t_best = np.where(closer, t, t_best)
            index = np.where(closer, k, index)
        return t_best, index

    def shade(self, points: np.ndarray, index: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Colour ``[N, 3]`` float32 of hit points (``index >= 0``) and of the sky (``index == -1``).

        Convention: ``albedo * (ambient + (1 - ambient) * (0.5 + 0.5 n.l))`` (wrap
        lighting, view-independent); the sky blends ``sky_bottom`` to ``sky_top`` with
        the elevation of the ray direction.
        """
        return self._shade(*points.T, index, *directions.T)

    def _shade(self, px: np.ndarray, py: np.ndarray, pz: np.ndarray, index: np.ndarray, dx: np.ndarray,
               dy: np.ndarray, dz: np.ndarray, quantize: bool = False) -> np.ndarray:
        """:meth:`shade` on per-axis arrays ``[N]``, pixels grouped by primitive; uint8 if ``quantize``."""
        order = np.argsort(index, kind="stable")  # pixels grouped by primitive, sky (-1) first
        bounds = np.searchsorted(index[order], np.arange(-1, len(self.primitives) + 1)).tolist()
        sx, sy, sz = px[order], py[order], pz[order]  # [N] each, in group order
        grouped = np.empty((len(index), 3), dtype=np.uint8 if quantize else np.float32)  # in group order
        k_dot = 0.5 * (1.0 - self.ambient)
        for k in range(-1, len(self.primitives)):
            lo, hi = bounds[k + 1], bounds[k + 2]
            if lo == hi:
                continue
            if k < 0:
                sel = order[lo:hi]
                d = (dx[sel], dy[sel], dz[sel])
                up = [float(u) for u in self.up]
                elevation = (d[0] * up[0] + d[1] * up[1] + d[2] * up[2]) / np.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2)
                w = np.clip(0.5 + 0.5 * elevation, 0.0, 1.0).astype(np.float32)[:, None]
                top, bottom = np.asarray(self.sky_top, np.float32), np.asarray(self.sky_bottom, np.float32)
                sky = bottom + w * (top - bottom)
                grouped[lo:hi] = (sky * np.float32(255.0) + np.float32(0.5)) if quantize else sky
                continue
            primitive = self.primitives[k]
            x, y, z = sx[lo:hi], sy[lo:hi], sz[lo:hi]
            # Wrap lighting (never black): ambient + (1 - ambient) * (0.5 + 0.5 n.l).
            light = primitive.normal_dot(x, y, z, self.light_dir) * k_dot + (self.ambient + k_dot)
            if quantize:
                primitive.material.shaded(x, y, z, light, out=grouped[lo:hi])
            else:
                grouped[lo:hi] = primitive.material.shaded(x, y, z, light)
        colour = np.empty_like(grouped)
        colour[order] = grouped
        return colour

    def render(self, cam_from_world: np.ndarray, intrinsics: np.ndarray, height: int, width: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Render one pinhole view.

        Convention: ``cam_from_world [3, 4]`` (OpenCV axes: x right, y down, z
        forward), ``intrinsics [3, 3]`` pixels with pixel centres at integers.

        Returns:
            ``(image [H, W, 3] uint8, depth [H, W] float64 camera z with 0 on the sky,
            primitive index [H, W] int64 with -1 on the sky)``.
        """
        rotation, translation = cam_from_world[:, :3], cam_from_world[:, 3]
        origin = -rotation.T @ translation
        # Camera ray slopes x/z [W] and y/z [H]. Geometry in float64: grazing surfaces lose
        # float32 precision in n.d; shading runs in float32.
        xn = (np.arange(width) - intrinsics[0, 2]) / intrinsics[0, 0]
        yn = (np.arange(height) - intrinsics[1, 2]) / intrinsics[1, 1]
        xr, yc = xn[None, :], yn[:, None]  # [1, W], [H, 1]
        t_best = np.full((height, width), MISS)
        index = np.full((height, width), -1, dtype=np.int64)
        for k, primitive in enumerate(self.primitives):
            box = _pixel_box(primitive, cam_from_world, intrinsics, height, width)
            if box is None:
                continue
            win = np.s_[box[0]:box[1], box[2]:box[3]]
            t = primitive.intersect_camera(origin, rotation, xr[:, box[2]:box[3]], yc[box[0]:box[1]])
            closer = t < t_best[win]
            index[win] += closer * (k - index[win])  # branch-free select
            t_best[win] = np.fmin(t, t_best[win])
        hit = t_best < MISS
        depth = t_best * hit
        index[~hit] = -1
        r = rotation.tolist()
        # World directions d = R^T (xn, yn, 1) and hit points origin + depth * d, float32 for shading.
        directions = [((r[0][i] * xr) + (r[1][i] * yc + r[2][i])).reshape(-1) for i in range(3)]  # [H*W] each
        flat = depth.reshape(-1)
        px, py, pz = ((origin[i] + flat * d).astype(np.float32) for i, d in enumerate(directions))
        d32 = [d.astype(np.float32) for d in directions]
        image = self._shade(px, py, pz, index.reshape(-1), *d32, quantize=True).reshape(height, width, 3)
        return image, depth, index


def _pixel_box(primitive: Primitive, cam_from_world: np.ndarray, intrinsics: np.ndarray, height: int, width: int
               ) -> tuple[int, int, int, int] | None:
    """Pixel rows/cols ``(v0, v1, u0, u1)`` (half-open) that can see ``primitive``; None if none.

    Conservative: the projection of a convex set in front of the camera lies in the
    convex hull of its bounding box corners' projections; a box reaching behind the
    camera (or a room around it) covers the whole image.
    """
    if primitive.inside:
        return 0, height, 0, width
    cam = primitive.corners() @ cam_from_world[:, :3].T + cam_from_world[:, 3]  # [8, 3]
    if (cam[:, 2] <= 1e-6).any():
        if (cam[:, 2] <= 1e-6).all():
            return None  # entirely behind the camera
        return 0, height, 0, width
    uv = cam[:, :2] / cam[:, 2:] * np.diag(intrinsics)[:2] + intrinsics[:2, 2]
    u0, v0 = np.floor(uv.min(axis=0)).astype(np.int64) - 1
    u1, v1 = np.ceil(uv.max(axis=0)).astype(np.int64) + 2
    u0, u1 = max(int(u0), 0), min(int(u1), width)
    v0, v1 = max(int(v0), 0), min(int(v1), height)
    if u0 >= u1 or v0 >= v1:
        return None
    return v0, v1, u0, u1
