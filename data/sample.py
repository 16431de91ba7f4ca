"""The multi-view sample contract shared by every dataset in ``vggt3d.data``.

A sample is a ``dict`` describing S frames of equal size H x W:

=====================  ==============  =====================================================
key                    shape / type    meaning
=====================  ==============  =====================================================
``images``             [S, 3, H, W]    float32 RGB in [0, 1]
``depths``             [S, H, W]       float32 z-depth in each camera; 0 = invalid
``cam_from_world``     [S, 3, 4]       float32 ``[R | t]``, ``X_cam = R X_world + t``,
                                       OpenCV axes (x right, y down, z forward)
``intrinsics``         [S, 3, 3]       float32 pixels, pixel centres at integers, zero skew
``point_masks``        [S, H, W]       bool, ``depths > 0`` (and any dataset mask)
``cam_points``         [S, H, W, 3]    float32 unprojected depth in each camera
``world_points``       [S, H, W, 3]    float32 the same points in world coordinates
``tracks``             [S, N, 2]       optional float32 pixel (x, y) of N points per frame
``track_visibility``   [S, N]          optional bool, required with ``tracks``
``scene``              str             scene name
``frame_ids``          list[int]       source frame index of each of the S frames
``original_sizes``     [S, 2]          int64 (H, W) of the frames before any resize/crop
=====================  ==============  =====================================================

Datasets may add keys (for example ``normalization_scale`` after
normalisation); they never change the meaning of the keys above.
:func:`check_sample` verifies shapes, dtypes and the cheap conventions and is
called whenever a dataset yields a sample.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

REQUIRED_KEYS = ("images", "depths", "cam_from_world", "intrinsics", "point_masks", "cam_points", "world_points",
                 "scene", "frame_ids", "original_sizes")


class SampleError(ValueError):
    """A sample breaks the contract of :mod:`vggt3d.data.sample`."""


def _fail(origin: str, msg: str) -> None:
    raise SampleError(f"{origin}: {msg}")


def check_sample(sample: Mapping[str, Any], origin: str = "sample") -> Mapping[str, Any]:
    """Validate ``sample`` against the contract and return it unchanged.

    Raises :class:`SampleError` naming ``origin`` (dataset and scene) and the
    offending key. Checks shapes, dtypes, finite values, images in [0, 1],
    non-negative depth, rotation matrices that are orthonormal, and intrinsics
    with zero skew and positive focal lengths.
    """
    missing = [k for k in REQUIRED_KEYS if k not in sample]
    if missing:
        _fail(origin, f"missing keys {missing}")
    images = sample["images"]
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        _fail(origin, f"images must be a [S, 3, H, W] tensor, got {getattr(images, 'shape', type(images))}")
    S, _, H, W = images.shape
    if S == 0:
        _fail(origin, "sample has no frames")
    expected = {
        "depths": (S, H, W),
        "cam_from_world": (S, 3, 4),
        "intrinsics": (S, 3, 3),
        "point_masks": (S, H, W),
        "cam_points": (S, H, W, 3),
        "world_points": (S, H, W, 3),
        "original_sizes": (S, 2),
    }
    for key, shape in expected.items():
        value = sample[key]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            _fail(origin, f"{key} must have shape {list(shape)}, got {list(getattr(value, 'shape', [])) or type(value)}")
    ranges = {}
    for key in ("images", "depths", "cam_from_world", "intrinsics", "cam_points", "world_points"):
        if sample[key].dtype != torch.float32:
            _fail(origin, f"{key} must be float32, got {sample[key].dtype}")
        # One pass: NaN propagates into min and max, +-inf shows in one of them.
        low, high = torch.aminmax(sample[key])
        if not (torch.isfinite(low) and torch.isfinite(high)):
            _fail(origin, f"{key} holds NaN or inf")
        ranges[key] = (float(low), float(high))
    if sample["point_masks"].dtype != torch.bool:
        _fail(origin, f"point_masks must be bool, got {sample['point_masks'].dtype}")
    low, high = ranges["images"]
    if low < 0 or high > 1:
        _fail(origin, f"images must be in [0, 1], got [{low:.3g}, {high:.3g}]")
    if ranges["depths"][0] < 0:
        _fail(origin, "depths must be >= 0 (0 marks invalid pixels)")
    R = sample["cam_from_world"][:, :, :3]
    eye = torch.eye(3).expand(S, 3, 3)
    if (R @ R.transpose(1, 2) - eye).abs().max() > 1e-3:
        _fail(origin, "cam_from_world rotations are not orthonormal")
    K = sample["intrinsics"]
    if (K[:, 0, 1].abs() > 1e-6).any() or (K[:, 0, 0] <= 0).any() or (K[:, 1, 1] <= 0).any():
        _fail(origin, "intrinsics must have zero skew and positive focal lengths (pixels)")
    frame_ids = sample["frame_ids"]
    if len(frame_ids) != S:
        _fail(origin, f"frame_ids has {len(frame_ids)} entries for {S} frames")
    if "tracks" in sample:
        tracks = sample["tracks"]
        if tracks.dim() != 3 or tracks.shape[0] != S or tracks.shape[2] != 2:
            _fail(origin, f"tracks must be [S, N, 2], got {list(tracks.shape)}")
        vis = sample.get("track_visibility")
        if vis is None or tuple(vis.shape) != tuple(tracks.shape[:2]) or vis.dtype != torch.bool:
            _fail(origin, "track_visibility must be a bool [S, N] tensor when tracks are given")
    return sample
