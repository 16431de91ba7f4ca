"""Multi-view tracks: observation lists, triangulation with given cameras, filtering.

A track is one 3D point seen in several frames. :class:`Observations` stores
all tracks as flat arrays (one row per observation), the layout COLMAP's
``Track`` and the bundle adjuster need. :func:`triangulate` finds each track's
point from its rays (least-squares midpoint), :func:`filter_tracks` drops
observations and tracks by reprojection error, triangulation angle, cheirality
and agreement with the predicted depth.

Convention: ``cam_from_world [S, 4, 4]`` with OpenCV axes (x right, y down, z
forward); ``intrinsics [S, 3, 3]`` and observations ``uv`` in pixels of each
frame's original image with pixel centres at integers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Observations", "TrackFilter", "filter_tracks", "project", "reprojection_errors", "triangulate"]


@dataclass
class Observations:
    """Flat observation list of ``T`` tracks: row ``k`` says track ``track[k]`` is seen at ``uv[k]`` in ``frame[k]``.

    ``track [K]`` int64 in ``0..T-1``, ``frame [K]`` int64, ``uv [K, 2]`` float64
    original pixels (centres at integers); ``source`` names where they came from
    (``features``, ``head`` or ``both``).
    """

    track: np.ndarray
    frame: np.ndarray
    uv: np.ndarray
    source: str = "features"

    @property
    def num_tracks(self) -> int:
        return int(self.track.max()) + 1 if len(self.track) else 0

    def __len__(self) -> int:
        return len(self.track)

    def select(self, keep_rows: np.ndarray) -> Observations:
        """Keep the rows ``keep_rows`` (mask or indices) and renumber the tracks ``0..T'-1`` in order."""
        track, frame, uv = self.track[keep_rows], self.frame[keep_rows], self.uv[keep_rows]
        _, track = np.unique(track, return_inverse=True)
        return Observations(track.astype(np.int64).reshape(-1), frame, uv, self.source)

    def lengths(self) -> np.ndarray:
        """``[T]`` number of observations per track."""
        return np.bincount(self.track, minlength=self.num_tracks)

    def min_length(self, n: int) -> Observations:
        """Only the tracks with at least ``n`` observations."""
        return self.select(self.lengths()[self.track] >= n) if len(self) else self

    @staticmethod
    def concatenate(parts: list[Observations], source: str) -> Observations:
        """All tracks of ``parts`` (renumbered one after the other)."""
        tracks, start = [], 0
        for p in parts:
            tracks.append(p.track + start)
            start += p.num_tracks
        if not parts:
            return Observations(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 2)), source)
        return Observations(np.concatenate(tracks), np.concatenate([p.frame for p in parts]),
                            np.concatenate([p.uv for p in parts]), source)


@dataclass
class TrackFilter:
    """Acceptance rules of triangulated tracks.

    ``max_error`` reprojection error of an observation in pixels (original
    resolution); ``min_angle`` the largest angle between a track's rays must be at
    least this (degrees); ``depth_tolerance`` the relative disagreement
    ``|z / depth - 1|`` allowed between a point's camera depth and the predicted
    depth at its pixel, after dividing out the median ratio of the frame (the
    predicted depth may be in other units) (``None``: not checked); ``min_length`` observations per track.
    """

    max_error: float = 4.0
    min_angle: float = 1.0
    depth_tolerance: float | None = 0.25
    min_length: int = 2

    def __post_init__(self) -> None:
        if self.max_error <= 0 or self.min_angle < 0 or self.min_length < 2:
            raise ValueError("TrackFilter: max_error must be > 0, min_angle >= 0 and min_length >= 2")
        if self.depth_tolerance is not None and self.depth_tolerance <= 0:
            raise ValueError(f"TrackFilter.depth_tolerance must be > 0 or None, got {self.depth_tolerance}")


def project(points: np.ndarray, cam_from_world: np.ndarray, intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project ``points [K, 3]`` through per-row cameras ``[K, 4, 4]``, ``[K, 3, 3]`` -> ``uv [K, 2]``, ``z [K]``.

    Convention: OpenCV axes, pixel centres at integers; ``uv`` is ``nan`` where ``z <= 0``.
    """
    cam = np.einsum("kij,kj->ki", cam_from_world[:, :3, :3], points) + cam_from_world[:, :3, 3]
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        pix = np.einsum("kij,kj->ki", intrinsics, cam)
        uv = pix[:, :2] / pix[:, 2:3]
    uv[z <= 0] = np.nan
    return uv, z


def reprojection_errors(obs: Observations, points: np.ndarray, cam_from_world: np.ndarray,
                        intrinsics: np.ndarray) -> np.ndarray:
    """``[K]`` pixel distance between each observation and its track's projected point (``inf`` behind the camera)."""
    uv, _ = project(points[obs.track], cam_from_world[obs.frame], intrinsics[obs.frame])
    err = np.linalg.norm(uv - obs.uv, axis=1)
    return np.where(np.isfinite(err), err, np.inf)


def _rays(obs: Observations, cam_from_world: np.ndarray, intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera centres ``[K, 3]`` and unit world ray directions ``[K, 3]`` of the observations."""
    R = cam_from_world[obs.frame, :3, :3]
    t = cam_from_world[obs.frame, :3, 3]
    centres = -np.einsum("kji,kj->ki", R, t)  # C = -R^T t
    pix = np.concatenate([obs.uv, np.ones((len(obs), 1))], axis=1)
    d_cam = np.linalg.solve(intrinsics[obs.frame], pix[..., None])[..., 0]
    d = np.einsum("kji,kj->ki", R, d_cam)
    return centres, d / np.linalg.norm(d, axis=1, keepdims=True)


def triangulate(obs: Observations, cam_from_world: np.ndarray, intrinsics: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ray midpoint of every track -> ``points [T, 3]`` and ``angle [T]`` (largest ray angle, degrees).

    Minimises the summed squared distance of the point to the track's rays, then
    takes two Gauss-Newton steps on the reprojection error.
    """
    T = obs.num_tracks
    if T == 0:
        return np.zeros((0, 3)), np.zeros(0)
    centres, d = _rays(obs, cam_from_world, intrinsics)
    P = np.eye(3)[None] - d[:, :, None] * d[:, None, :]  # [K, 3, 3] projector orthogonal to the ray
    A = np.zeros((T, 3, 3))
    b = np.zeros((T, 3))
    np.add.at(A, obs.track, P)
    np.add.at(b, obs.track, np.einsum("kij,kj->ki", P, centres))
    A += 1e-9 * np.eye(3)
    points = np.linalg.solve(A, b[..., None])[..., 0]
    points = _gauss_newton(obs, points, cam_from_world, intrinsics, steps=2)
    # the widest angle between a track's ray and its mean ray, doubled, approximates the widest pair angle
    mean = np.zeros((T, 3))
    np.add.at(mean, obs.track, d)
    mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
    cos = np.clip(np.sum(d * mean[obs.track], axis=1), -1.0, 1.0)
    angle = np.zeros(T)
    np.maximum.at(angle, obs.track, np.degrees(np.arccos(cos)))
    return points, 2.0 * angle


def _gauss_newton(obs: Observations, points: np.ndarray, cam_from_world: np.ndarray, intrinsics: np.ndarray,
                  steps: int) -> np.ndarray:
    """A few Gauss-Newton steps on each point's summed squared reprojection error (cameras fixed)."""
    R = cam_from_world[obs.frame, :3, :3]
    t = cam_from_world[obs.frame, :3, 3]
    K = intrinsics[obs.frame]
    for _ in range(steps):
        cam = np.einsum("kij,kj->ki", R, points[obs.track]) + t
        z = cam[:, 2]
        ok = z > 1e-9
        zs = np.where(ok, z, 1.0)
        fx, fy = K[:, 0, 0], K[:, 1, 1]
        u = fx * cam[:, 0] / zs + K[:, 0, 1] * cam[:, 1] / zs + K[:, 0, 2]
        v = fy * cam[:, 1] / zs + K[:, 1, 2]
        r = np.stack([u - obs.uv[:, 0], v - obs.uv[:, 1]], axis=1)  # [K, 2]
        # d(u, v)/d(cam) then chain with R
        J_cam = np.zeros((len(obs), 2, 3))
        J_cam[:, 0, 0] = fx / zs
        J_cam[:, 0, 1] = K[:, 0, 1] / zs
        J_cam[:, 0, 2] = -(u - K[:, 0, 2]) / zs
        J_cam[:, 1, 1] = fy / zs
        J_cam[:, 1, 2] = -(v - K[:, 1, 2]) / zs
        J = np.einsum("kac,kcj->kaj", J_cam, R) * ok[:, None, None]
        H = np.zeros((len(points), 3, 3))
        g = np.zeros((len(points), 3))
        np.add.at(H, obs.track, np.einsum("kai,kaj->kij", J, J))
        np.add.at(g, obs.track, np.einsum("kai,ka->ki", J, r * ok[:, None]))
        bad = ~(np.isfinite(H).all(axis=(1, 2)) & np.isfinite(g).all(axis=1))
        H[bad], g[bad] = np.eye(3), 0.0
        H += (1e-9 * (np.trace(H, axis1=1, axis2=2) + 1.0))[:, None, None] * np.eye(3)
        step = np.linalg.solve(H, g[..., None])[..., 0]
        points = points - np.where(np.isfinite(step), step, 0.0)
    return points


def filter_tracks(obs: Observations, cam_from_world: np.ndarray, intrinsics: np.ndarray,
                  rules: TrackFilter | None = None,
                  depth_at: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                  rounds: int = 2) -> tuple[Observations, np.ndarray]:
    """Triangulate, then drop bad observations and tracks; repeat ``rounds`` times.

    ``depth_at(frame [K], uv [K, 2]) -> depth [K]`` (0 = unknown) gives the
    predicted depth at original pixels for the depth-agreement rule.
    Returns the kept observations (tracks renumbered) and their points ``[T, 3]``.
    """
    rules = rules or TrackFilter()
    pred = depth_at(obs.frame, obs.uv) if (depth_at is not None and rules.depth_tolerance is not None
                                           and len(obs)) else None

    def good(obs: Observations, pred: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        points, angle = triangulate(obs, cam_from_world, intrinsics)
        err = reprojection_errors(obs, points, cam_from_world, intrinsics)
        _, z = project(points[obs.track], cam_from_world[obs.frame], intrinsics[obs.frame])
        keep = (err <= rules.max_error) & (z > 0) & np.isfinite(points[obs.track]).all(axis=1)
        keep &= angle[obs.track] >= rules.min_angle
        if pred is not None:
            keep &= _depth_agrees(obs.frame, z, pred, rules.depth_tolerance)
        return keep, points

    for _ in range(max(rounds, 1)):
        rows = obs.lengths()[obs.track] >= rules.min_length if len(obs) else np.zeros(0, bool)
        obs, pred = obs.select(rows), (None if pred is None else pred[rows])
        if len(obs) == 0:
            return obs, np.zeros((0, 3))
        keep, points = good(obs, pred)
        if keep.all():
            return obs, points
        obs, pred = obs.select(keep), (None if pred is None else pred[keep])
    # last round: whole tracks with any bad observation go, the rest keep their points
    rows = obs.lengths()[obs.track] >= rules.min_length if len(obs) else np.zeros(0, bool)
    obs, pred = obs.select(rows), (None if pred is None else pred[rows])
    if len(obs) == 0:
        return obs, np.zeros((0, 3))
    keep, points = good(obs, pred)
    bad = np.zeros(obs.num_tracks, dtype=bool)
    bad[obs.track[~keep]] = True
    kept_tracks = np.flatnonzero(~bad)
    return obs.select(~bad[obs.track]), points[kept_tracks]


def _depth_agrees(frame: np.ndarray, z: np.ndarray, predicted: np.ndarray, tolerance: float) -> np.ndarray:
    """``|(z / d) / m - 1| <= tolerance`` per observation, ``m`` the median ratio in its frame (or overall).

    Relative to the median, so the rule holds whatever units the predicted depth
    maps are in (each frame's may differ); unknown depth (``d <= 0``) passes.
    """
    known = (predicted > 0) & (z > 0)
    ratio = np.where(known, z / np.where(known, predicted, 1.0), np.nan)
    overall = float(np.nanmedian(ratio)) if known.any() else 1.0
    scale = np.full(len(z), overall)
    for f in np.unique(frame[known]):
        mine = known & (frame == f)
        if mine.sum() >= 8:
            scale[frame == f] = np.median(ratio[mine])
    return ~known | (np.abs(ratio / scale - 1.0) <= tolerance)
