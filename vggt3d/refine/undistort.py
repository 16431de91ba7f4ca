"""Undistortion after ``SIMPLE_RADIAL`` refinement: images resampled to the pinhole camera, observations moved.

With one radial coefficient ``k1`` per frame, the distorted pixel of the
normalised point ``(x, y)`` is ``K [x (1 + k1 r^2), y (1 + k1 r^2), 1]`` with
``r^2 = x^2 + y^2`` (COLMAP's SIMPLE_RADIAL). :func:`undistort_reconstruction`
writes each frame as the image the same-size pinhole camera ``K`` would see
(bilinear resampling; pixels that fall outside the original are black) and moves
the track observations accordingly, so every export (``images/``, COLMAP,
``cameras.json``, nerfstudio) is a consistent pinhole model. The depth maps stay
those predicted on the original images (the correction is small where ``k1`` is).

Convention: pixels with centres at integers, original resolution.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from ..result import Reconstruction

__all__ = ["distort_points", "undistort_image", "undistort_points", "undistort_reconstruction"]


def distort_points(uv: np.ndarray, K: np.ndarray, k1: float) -> np.ndarray:
    """Pinhole pixels ``[N, 2]`` -> the pixels where a ``SIMPLE_RADIAL`` (``k1``) camera with ``K`` sees them."""
    x = (uv[:, 0] - K[0, 2]) / K[0, 0]
    y = (uv[:, 1] - K[1, 2]) / K[1, 1]
    f = 1.0 + k1 * (x * x + y * y)
    return np.stack([x * f * K[0, 0] + K[0, 2], y * f * K[1, 1] + K[1, 2]], axis=1)


def undistort_points(uv: np.ndarray, K: np.ndarray, k1: float, iterations: int = 20) -> np.ndarray:
    """Inverse of :func:`distort_points` (fixed-point iteration on the normalised radius)."""
    xd = (uv[:, 0] - K[0, 2]) / K[0, 0]
    yd = (uv[:, 1] - K[1, 2]) / K[1, 1]
    x, y = xd.copy(), yd.copy()
    for _ in range(iterations):
        f = 1.0 + k1 * (x * x + y * y)
        x, y = xd / f, yd / f
    return np.stack([x * K[0, 0] + K[0, 2], y * K[1, 1] + K[1, 2]], axis=1)


def undistort_image(image: np.ndarray, K: np.ndarray, k1: float) -> np.ndarray:
    """``[H, W, C]`` uint8 image of a SIMPLE_RADIAL camera -> the same-size pinhole image (bilinear)."""
    from scipy.ndimage import map_coordinates

    H, W = image.shape[:2]
    v, u = np.mgrid[0:H, 0:W]
    src = distort_points(np.stack([u.ravel(), v.ravel()], axis=1).astype(np.float64), K, k1)
    coords = [src[:, 1].reshape(H, W), src[:, 0].reshape(H, W)]
    channels = [map_coordinates(image[..., c].astype(np.float32), coords, order=1, mode="constant", cval=0.0)
                for c in range(image.shape[2])]
    return np.clip(np.round(np.stack(channels, axis=-1)), 0, 255).astype(np.uint8)


def undistort_reconstruction(rec: Reconstruction, k1: np.ndarray, images: list[np.ndarray]) -> Reconstruction:
    """``rec`` with undistorted frames (as in-memory images) and track observations; ``k1 [S]``."""
    data = [Image.fromarray(undistort_image(img, K, float(k))) for img, K, k in zip(images, rec.intrinsics, k1)]
    tp = rec.track_points
    if tp is not None and len(tp.track):
        uv = tp.uv.copy()
        for i in range(rec.num_frames):
            rows = tp.frame == i
            if rows.any():
                uv[rows] = undistort_points(tp.uv[rows], rec.intrinsics[i], float(k1[i]))
        tp = dataclasses.replace(tp, uv=uv)
    out = dataclasses.replace(rec, image_data=data, track_points=tp, info=dict(rec.info))
    out.info["undistorted"] = {"model": "SIMPLE_RADIAL", "k1": [float(k) for k in k1]}
    return out
