"""Similarity transforms (Sim(3)) and their robust, weighted estimation from point correspondences.

A :class:`Sim3` maps points of one coordinate frame into another:
``x_to = scale * rotation @ x_from + translation``. Chunks of a long video are
each predicted in their own frame (the chunk's first camera, the model's own
scale); ``Sim3`` s bring them into one.

Estimation: :func:`umeyama` is the closed-form weighted least-squares fit
(Umeyama 1991, with Horn's/Kabsch's SVD and the reflection fix);
:func:`robust_sim3` wraps it in RANSAC over minimal 3-point samples and
iteratively re-weighted least squares (Cauchy weights on residuals scaled by
their median absolute deviation), so that wrong depths and moving objects in
the overlap do not pull the fit.

Convention: rotations are 3x3 matrices acting on column vectors; cameras are
``cam_from_world`` 4x4 with OpenCV axes (x right, y down, z forward).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

__all__ = ["AlignmentError", "Sim3", "Sim3Fit", "robust_sim3", "umeyama"]


class AlignmentError(RuntimeError):
    """Two sets of predictions do not agree well enough to be aligned (too few inliers, degenerate points)."""


@dataclass(frozen=True)
class Sim3:
    """``x -> scale * rotation @ x + translation`` (``scale > 0``, ``rotation`` in SO(3))."""

    scale: float
    rotation: np.ndarray  # [3, 3]
    translation: np.ndarray  # [3]

    @classmethod
    def identity(cls) -> Sim3:
        return cls(1.0, np.eye(3), np.zeros(3))

    @classmethod
    def from_matrix(cls, m: np.ndarray) -> Sim3:
        """From a 4x4 ``[[s R, t], [0, 1]]``."""
        m = np.asarray(m, dtype=np.float64)
        scale = float(np.cbrt(np.linalg.det(m[:3, :3])))
        return cls(scale, m[:3, :3] / scale, m[:3, 3].copy())

    @classmethod
    def from_vector(cls, v: np.ndarray) -> Sim3:
        """From ``[rotation vector (3), translation (3), log scale (1)]``; inverse of :meth:`as_vector`."""
        v = np.asarray(v, dtype=np.float64)
        return cls(float(np.exp(v[6])), Rotation.from_rotvec(v[:3]).as_matrix(), v[3:6].copy())

    def as_vector(self) -> np.ndarray:
        """``[rotation vector, translation, log scale]`` (7,)."""
        return np.concatenate([Rotation.from_matrix(self.rotation).as_rotvec(), self.translation,
                               [np.log(self.scale)]])

    def matrix(self) -> np.ndarray:
        """4x4 ``[[s R, t], [0, 1]]``."""
        m = np.eye(4)
        m[:3, :3] = self.scale * self.rotation
        m[:3, 3] = self.translation
        return m

    def inverse(self) -> Sim3:
        r_inv = self.rotation.T
        return Sim3(1.0 / self.scale, r_inv, -(r_inv @ self.translation) / self.scale)

    def __matmul__(self, other: Sim3) -> Sim3:
        """Composition: ``(a @ b)(x) = a(b(x))``."""
        return Sim3(self.scale * other.scale, self.rotation @ other.rotation,
                    self.scale * (self.rotation @ other.translation) + self.translation)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Points ``[..., 3]`` -> transformed points ``[..., 3]`` (float64)."""
        points = np.asarray(points, dtype=np.float64)
        return self.scale * points @ self.rotation.T + self.translation

    def transform_cameras(self, cam_from_world: np.ndarray) -> np.ndarray:
        """Cameras ``cam_from_world [..., 4, 4]`` of the source frame -> rigid ``cam_from_world`` of the target.

        The camera frames keep their orientation; their units become the
        target's, so depths along them scale by ``scale`` (OpenCV axes).
        """
        cam = np.asarray(cam_from_world, dtype=np.float64)
        out = np.zeros_like(cam)
        rot = cam[..., :3, :3] @ self.rotation.T  # R_c R^T
        out[..., :3, :3] = rot
        out[..., :3, 3] = self.scale * cam[..., :3, 3] - np.einsum("...ij,j->...i", rot, self.translation)
        out[..., 3, 3] = 1.0
        return out


@dataclass(frozen=True)
class Sim3Fit:
    """A robust fit: the transform, which correspondences are inliers, and how well they agree.

    ``residual`` is the weighted RMS distance of the inliers after the fit,
    ``relative_residual`` the same divided by the RMS spread of the target
    points around their weighted centroid (scale free).
    """

    transform: Sim3
    inliers: np.ndarray  # [N] bool
    inlier_fraction: float  # of the total weight
    residual: float
    relative_residual: float


def umeyama(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> Sim3:
    """The Sim(3) minimising ``sum_i w_i |target_i - (s R source_i + t)|^2`` in closed form.

    Args:
        source, target: corresponding points ``[N, 3]`` (N >= 3, not collinear).
        weights: ``[N]`` non-negative (default: all 1).

    Raises:
        AlignmentError: fewer than 3 weighted points, or degenerate (collinear/coincident) source points.
    """
    src = np.asarray(source, dtype=np.float64).reshape(-1, 3)
    dst = np.asarray(target, dtype=np.float64).reshape(-1, 3)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(src) != len(dst) or len(w) != len(src):
        raise ValueError(f"source, target and weights must have one row per point, got {len(src)}, "
                         f"{len(dst)}, {len(w)}")
    if (w > 0).sum() < 3 or not np.isfinite(w).all() or (w < 0).any():
        raise AlignmentError(f"a similarity needs >= 3 points with positive weight, got {int((w > 0).sum())}")
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    xs, xd = src - mu_s, dst - mu_d
    var_s = float(w @ (xs * xs).sum(axis=1))
    cov = (xd * w[:, None]).T @ xs  # [3, 3] sum_i w_i d_i s_i^T
    u, sigma, vt = np.linalg.svd(cov)
    if var_s <= 1e-20 or sigma[1] <= 1e-12 * max(sigma[0], 1e-300):
        raise AlignmentError("the points are degenerate (coincident or collinear); no unique similarity")
    fix = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[2] = -1.0  # reflection -> rotation
    rotation = u @ np.diag(fix) @ vt
    scale = float((sigma * fix).sum() / var_s)
    if not scale > 0:
        raise AlignmentError(f"degenerate fit (scale {scale:.3g}); the point sets disagree")
    return Sim3(scale, rotation, mu_d - scale * rotation @ mu_s)


def _residuals(transform: Sim3, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    return np.linalg.norm(transform.apply(src) - dst, axis=1)


def robust_sim3(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None, *,
                ransac_iterations: int = 64, inlier_threshold: float = 0.05, irls_iterations: int = 8,
                seed: int = 0) -> Sim3Fit:
    """Robust weighted Sim(3): RANSAC over 3-point samples, then confidence-weighted IRLS on the inliers.

    Args:
        source, target: corresponding points ``[N, 3]``.
        weights: per-correspondence confidence ``[N]`` (e.g. the product of
            the two predictions' confidences); RANSAC samples proportionally to it.
        inlier_threshold: a correspondence is an inlier when its residual is
            below this fraction of the target's RMS spread (scale free).
        ransac_iterations: minimal samples tried (0: start from the plain weighted fit).
        irls_iterations: re-weighting rounds (Cauchy weights, scale from the
            median absolute residual of the inliers).

    Raises:
        AlignmentError: degenerate input or no consistent subset.
    """
    src = np.asarray(source, dtype=np.float64).reshape(-1, 3)
    dst = np.asarray(target, dtype=np.float64).reshape(-1, 3)
    conf = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    finite = np.isfinite(src).all(1) & np.isfinite(dst).all(1) & np.isfinite(conf) & (conf > 0)
    src, dst, conf, index = src[finite], dst[finite], conf[finite], np.flatnonzero(finite)
    if len(src) < 3:
        raise AlignmentError(f"only {len(src)} finite correspondences with positive confidence; need >= 3")
    centroid = conf @ dst / conf.sum()
    spread = float(np.sqrt(conf @ ((dst - centroid) ** 2).sum(axis=1) / conf.sum()))
    if not spread > 0:
        raise AlignmentError("the target points are all identical; no unique similarity")
    threshold = inlier_threshold * spread

    best = umeyama(src, dst, conf)
    best_score = conf[_residuals(best, src, dst) < threshold].sum()
    rng = np.random.default_rng(seed)
    p = conf / conf.sum()
    for _ in range(ransac_iterations):
        pick = rng.choice(len(src), size=3, replace=False, p=p if (p > 0).sum() >= 3 else None)
        try:
            candidate = umeyama(src[pick], dst[pick])
        except AlignmentError:
            continue
        score = conf[_residuals(candidate, src, dst) < threshold].sum()
        if score > best_score:
            best, best_score = candidate, score

    transform = best
    for _ in range(irls_iterations):
        r = _residuals(transform, src, dst)
        inl = r < 3 * threshold
        if inl.sum() < 3:
            break
        sigma = max(1.4826 * float(np.median(r[inl])), 1e-3 * threshold)
        w = conf * inl / (1.0 + (r / (2.385 * sigma)) ** 2)  # Cauchy
        try:
            transform = umeyama(src, dst, w)
        except AlignmentError:
            break
    r = _residuals(transform, src, dst)
    inl = r < threshold
    fraction = float(conf[inl].sum() / conf.sum())
    rms = float(np.sqrt(conf[inl] @ r[inl] ** 2 / max(conf[inl].sum(), 1e-300))) if inl.any() else float("inf")
    inliers = np.zeros(len(finite), dtype=bool)
    inliers[index[inl]] = True
    return Sim3Fit(transform, inliers, fraction, rms, rms / spread)
