"""Analytic solids and their exact ray intersections (numpy, float64).

Two intersection paths give the same hits: :meth:`Primitive.intersect` for
arbitrary rays (any origins), and :meth:`Primitive.intersect_camera` for the
rays of one pinhole camera, which the renderer uses: one origin, directions
as outer sums of the pixel coordinates, no gathers and no branches.

Convention: rays are ``X(t) = origin + t * direction``; ``t`` is returned as is,
so with the renderer's directions (camera z component 1) it is the z-depth.
Hits closer than ``T_MIN`` are ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from .textures import Material

__all__ = ["MISS", "T_MIN", "Primitive"]

PrimitiveKind = Literal["box", "sphere", "cylinder"]
KINDS: tuple[str, ...] = ("box", "sphere", "cylinder")
T_MIN = 1e-6  # hits closer than this along the ray are ignored
MISS = 1e30  # ``intersect_camera`` returns values >= MISS for rays that miss
_CORNER_SIGNS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)


@dataclass(frozen=True)
class Primitive:
    """An analytic solid placed in the world.

    Convention: ``rotation`` ``[3, 3]`` is ``world_from_local`` and ``center`` [3] the
    local origin in world coordinates. ``half_size`` [3]: box half extents; sphere
    ``(r, r, r)``; cylinder ``(r, r, half_height)`` with its axis along local z.
    ``inside=True`` (boxes only) renders the box's inner faces, i.e. a room seen
    from within; its normals point inwards.
    """

    kind: PrimitiveKind
    center: np.ndarray
    rotation: np.ndarray
    half_size: np.ndarray
    material: Material
    inside: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown primitive kind {self.kind!r}; expected one of {KINDS}")
        if self.inside and self.kind != "box":
            raise ValueError("only boxes can be seen from inside (inside=True)")
        if np.any(np.asarray(self.half_size) <= 0):
            raise ValueError(f"primitive half_size must be positive, got {self.half_size}")

    def corners(self) -> np.ndarray:
        """``[8, 3]`` world corners of the oriented bounding box."""
        return self._corners

    @cached_property
    def _corners(self) -> np.ndarray:
        return self.center + (_CORNER_SIGNS * self.half_size) @ self.rotation.T

    @cached_property
    def axis_aligned(self) -> bool:
        """Whether ``rotation`` is the identity (local axes are world axes)."""
        return bool(np.array_equal(self.rotation, np.eye(3)))

    @property
    def bounding_radius(self) -> float:
        """Radius of a sphere around ``center`` that contains the primitive."""
        return float(self.half_size[0]) if self.kind == "sphere" else float(np.linalg.norm(self.half_size))

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """Exact signed distance ``[N]`` of world ``points [N, 3]`` to the surface (negative in the solid).

        For a room (``inside=True``) the solid is the outside of the box.
        """
        local = (points - self.center) @ self.rotation  # [N, 3]
        h = self.half_size
        if self.kind == "sphere":
            return np.linalg.norm(local, axis=1) - h[0]
        if self.kind == "cylinder":
            q = np.stack([np.linalg.norm(local[:, :2], axis=1) - h[0], np.abs(local[:, 2]) - h[2]], axis=1)
        else:
            q = np.abs(local) - h
        d = np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0)
        return -d if self.inside else d

    def normals(self, points: np.ndarray) -> np.ndarray:
        """Unit world normals ``[M, 3]`` at surface points ``[M, 3]`` (outward; inward for rooms)."""
        eye = np.eye(3)
        local_normals = np.stack([self._local_normal_dot(points[:, 0], points[:, 1], points[:, 2], self.rotation @ e)
                                  for e in eye], axis=1)  # n_local . e_i = component i of the local normal
        return local_normals @ self.rotation.T

    def normal_dot(self, px: np.ndarray, py: np.ndarray, pz: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """``n . direction`` ``[M]`` at surface points given per axis (``px, py, pz``, each ``[M]``).

        Convention: ``n`` is the unit world normal (outward; inward for rooms) and
        ``direction`` a world vector [3]; used for view-independent shading.
        """
        return self._local_normal_dot(px, py, pz, np.asarray(direction, np.float64))

    def _local_normal_dot(self, px: np.ndarray, py: np.ndarray, pz: np.ndarray, direction: np.ndarray) -> np.ndarray:
        c, h = [float(v) for v in self.center], [float(v) for v in self.half_size]
        d = [float(v) for v in self.rotation.T @ direction]  # the direction in local axes
        wx, wy, wz = px - c[0], py - c[1], pz - c[2]
        if self.axis_aligned:
            lx, ly, lz = wx, wy, wz
        else:  # local = R^T (p - c)
            r = self.rotation.tolist()
            lx = r[0][0] * wx + r[1][0] * wy + r[2][0] * wz
            ly = r[0][1] * wx + r[1][1] * wy + r[2][1] * wz
            lz = r[0][2] * wx + r[1][2] * wy + r[2][2] * wz
        if self.kind == "sphere":
            return (lx * d[0] + ly * d[1] + lz * d[2]) * (1.0 / h[0])
        if self.kind == "box":
            qx, qy, qz = np.abs(lx) * (1.0 / h[0]), np.abs(ly) * (1.0 / h[1]), np.abs(lz) * (1.0 / h[2])
            on_x = (qx >= qy) & (qx >= qz)  # the face the point lies on
            on_y = ~on_x & (qy >= qz)
            on_z = ~(on_x | on_y)
            sign = -1.0 if self.inside else 1.0
            dot = (on_x * np.sign(lx)) * (sign * d[0]) + (on_y * np.sign(ly)) * (sign * d[1])
            return dot + (on_z * np.sign(lz)) * (sign * d[2])
        radial = np.hypot(lx, ly)
        on_cap = np.abs(np.abs(lz) - h[2]) < np.abs(radial - h[0])
        side = (lx * d[0] + ly * d[1]) / np.maximum(radial, 1e-12)
        return (on_cap * np.sign(lz)) * d[2] + ~on_cap * side

    # -- generic path --------------------------------------------------------------------------

    def intersect(self, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Nearest hit ``t [...]`` (inf on a miss) of rays ``origins + t * directions``.

        Args:
            origins: ``[3]`` or ``[..., 3]`` world ray origins.
            directions: ``[..., 3]`` world directions (any length).
        """
        o = (origins - self.center) @ self.rotation  # local [..., 3]
        d = directions @ self.rotation
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.kind == "box":
                inv = 1.0 / d
                t1, t2 = (-self.half_size - o) * inv, (self.half_size - o) * inv  # [..., 3] slab crossings
                t_near = np.fmax.reduce(np.fmin(t1, t2), axis=-1)
                t_far = np.fmin.reduce(np.fmax(t1, t2), axis=-1)
                t = t_far if self.inside else t_near
                return np.where((t_near <= t_far) & (t > T_MIN), t, np.inf)
            r = self.half_size[0]
            if self.kind == "sphere":
                roots = _roots((d * d).sum(-1), (d * o).sum(-1), (o * o).sum(-1) - r * r)
                return _nearest_positive(*roots)
            hh = self.half_size[2]
            a = d[..., 0] ** 2 + d[..., 1] ** 2
            b = o[..., 0] * d[..., 0] + o[..., 1] * d[..., 1]
            c = o[..., 0] ** 2 + o[..., 1] ** 2 - r * r
            candidates = [np.where(np.abs(o[..., 2] + t * d[..., 2]) <= hh, t, np.inf) for t in _roots(a, b, c)]
            for cap in (-hh, hh):
                t = (cap - o[..., 2]) / d[..., 2]
                x, y = o[..., 0] + t * d[..., 0], o[..., 1] + t * d[..., 1]
                candidates.append(np.where(x * x + y * y <= r * r, t, np.inf))
            return _nearest_positive(*candidates)

    # -- fast path: one origin -----------------------------------------------------------------

    def intersect_camera(self, origin: np.ndarray, cam_rotation: np.ndarray, xn: np.ndarray, yn: np.ndarray
                         ) -> np.ndarray:
        """Nearest hit ``t`` of the rays of a pinhole camera; misses give values >= ``MISS``.

        Convention: the rays start at ``origin [3]`` (the camera centre) with world
        directions ``R_cam^T (xn, yn, 1)`` (camera z component 1, so ``t`` is the
        z-depth), where ``cam_rotation`` is the camera's ``R`` (cam_from_world,
        OpenCV axes) and ``xn [1, w]``, ``yn [h, 1]`` are the normalised pixel
        coordinates ``(u - cx) / fx`` and ``(v - cy) / fy``. Any linear function of the
        direction is then an outer sum, which keeps the per-pixel work small.

        Returns:
            ``t [h, w]`` float64.
        """
        local = self.rotation.T @ (np.asarray(origin, np.float64) - self.center)
        o = [float(v) for v in local]
        m = (self.rotation.T @ np.asarray(cam_rotation, np.float64).T).tolist()  # local dir = m @ (xn, yn, 1)
        lx, ly, lz = ((m[i][0] * xn) + (m[i][1] * yn + m[i][2]) for i in range(3))  # [h, w] each
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.kind == "box":
                return self._box_from(o, (lx, ly, lz))
            if self.kind == "sphere":
                dd = xn * xn + (yn * yn + 1.0)  # |d|^2 is rotation invariant
                c = [sum(o[i] * m[i][k] for i in range(3)) for k in range(3)]  # b = o . l as an outer sum
                b = c[0] * xn + (c[1] * yn + c[2])
                return self._sphere_from(o, b, dd)
            c = [o[0] * m[0][k] + o[1] * m[1][k] for k in range(3)]
            b = c[0] * xn + (c[1] * yn + c[2])  # (o_x l_x + o_y l_y)
            return self._cylinder_from(o, lx, ly, lz, b)

    def _box_from(self, o: list[float], d: tuple[np.ndarray, ...]) -> np.ndarray:
        near = far = None
        for axis in range(3):
            h = float(self.half_size[axis])
            inv = 1.0 / d[axis]
            if self.inside:  # only the exit matters: (sign(d) h - o) / d
                hi = np.abs(inv) * h - o[axis] * inv
                far = hi if far is None else np.fmin(far, hi)
                continue
            t1, t2 = (-h - o[axis]) * inv, (h - o[axis]) * inv
            lo, hi = np.fmin(t1, t2), np.fmax(t1, t2)
            near = lo if near is None else np.fmax(near, lo)
            far = hi if far is None else np.fmin(far, hi)
        if self.inside:  # the origin is inside the room, so the exit is the hit
            return _finish(far, far > T_MIN) if _inside_box(o, self.half_size) else self._box_outside_room(o, d)
        return _finish(near, (near <= far) & (near > T_MIN))

    def _box_outside_room(self, o: list[float], d: tuple[np.ndarray, ...]) -> np.ndarray:
        """A room seen from outside: its far faces are visible where the ray crosses the box."""
        near = far = None
        for axis in range(3):
            h = float(self.half_size[axis])
            inv = 1.0 / d[axis]
            t1, t2 = (-h - o[axis]) * inv, (h - o[axis]) * inv
            lo, hi = np.fmin(t1, t2), np.fmax(t1, t2)
            near = lo if near is None else np.fmax(near, lo)
            far = hi if far is None else np.fmin(far, hi)
        return _finish(far, (near <= far) & (far > T_MIN))

    def _sphere_from(self, o: list[float], b: np.ndarray, dd: np.ndarray) -> np.ndarray:
        r = float(self.half_size[0])
        c = o[0] * o[0] + o[1] * o[1] + o[2] * o[2] - r * r
        disc = b * b - dd * c
        sq = np.sqrt(np.fmax(disc, 0.0))
        if c > 0:  # origin outside: the near root, stable form c / (sqrt(disc) - b)
            return _finish(c / (sq - b), (disc >= 0) & (b < 0))
        t = (sq - b) / dd  # origin inside: the far root
        return _finish(t, t > T_MIN)

    def _cylinder_from(self, o: list[float], dx: np.ndarray, dy: np.ndarray, dz: np.ndarray, b: np.ndarray
                       ) -> np.ndarray:
        r, hh = float(self.half_size[0]), float(self.half_size[2])
        a = dx * dx + dy * dy
        c = o[0] * o[0] + o[1] * o[1] - r * r
        disc = b * b - a * c
        sq = np.sqrt(np.fmax(disc, 0.0))
        if c > 0:
            t_side, ok = c / (sq - b), (disc >= 0) & (b < 0)
        else:
            t_side = (sq - b) / a
            ok = a > 0
        ok &= (np.abs(o[2] + t_side * dz) <= hh) & (t_side > T_MIN)
        best = _finish(t_side, ok)
        if abs(o[2]) > hh or c <= 0:  # a cap can be the first hit only from above/below or from within
            cap = math.copysign(hh, o[2])
            t = (cap - o[2]) / dz
            x, y = o[0] + t * dx, o[1] + t * dy
            best = np.fmin(best, _finish(t, (x * x + y * y <= r * r) & (t > T_MIN)))
            if c <= 0 and abs(o[2]) <= hh:
                t = (-cap - o[2]) / dz
                x, y = o[0] + t * dx, o[1] + t * dy
                best = np.fmin(best, _finish(t, (x * x + y * y <= r * r) & (t > T_MIN)))
        return best


def _inside_box(o: list[float], half_size: np.ndarray) -> bool:
    return all(abs(o[i]) < float(half_size[i]) for i in range(3))


def _finish(t: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``t`` where valid, else a value >= MISS, in ``t``'s dtype; branch-free (NaN becomes MISS)."""
    out = np.fmin(t, MISS)
    out += (~valid) * t.dtype.type(MISS)
    return out


def _roots(a: np.ndarray, b_half: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Roots of ``a t^2 + 2 b_half t + c = 0`` in the stable form; NaN where there are none."""
    disc = b_half * b_half - a * c
    sq = np.sqrt(np.where(disc >= 0, disc, np.nan))
    q = -(b_half + np.copysign(sq, b_half))
    return q / a, c / q


def _nearest_positive(*candidates: np.ndarray) -> np.ndarray:
    best = np.full(np.broadcast_shapes(*(c.shape for c in candidates)), np.inf)
    for t in candidates:
        best = np.where((t > T_MIN) & (t < best), t, best)  # NaN compares False
    return best
