"""Per-frame views before stacking, and the one routine that turns views into a contract sample.

Every dataset loads its frames as :class:`View` objects (numpy, native resolution,
possibly of different sizes), optionally passes them through the training-time
processing of :mod:`vggt3d.data.augment`, and stacks them with
:func:`views_to_sample`, which computes ``cam_points``, ``world_points`` and
``point_masks`` from depth and cameras with :mod:`vggt3d.geometry` and
validates the result with :func:`vggt3d.data.sample.check_sample`.

Convention: ``cam_from_world = [R | t]`` with ``X_cam = R X_world + t``, OpenCV
axes (x right, y down, z forward); intrinsics in pixels with pixel centres at
integer coordinates; depth is camera z, 0 marks invalid pixels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from vggt3d.geometry import cam_points_to_world, depth_to_cam_points
from vggt3d.io.images import _decode_colour, _open_image

from .sample import check_sample

__all__ = ["View", "load_depth_png16", "load_mask", "load_rgb", "save_depth_png16", "views_to_sample"]

_VALID_DEPTH = 1e-8


@dataclass
class View:
    """One frame: pixels, depth, validity mask and camera, all at the same resolution.

    Convention: ``image`` is ``[H, W, 3]`` uint8 RGB; ``depth`` ``[H, W]`` float32 camera
    z (0 = invalid); ``mask`` ``[H, W]`` bool or None (None = every pixel may be
    valid); ``intrinsics`` ``[3, 3]`` float64 pixels, pixel centres at integers;
    ``cam_from_world`` ``[3, 4]`` float64, ``X_cam = R X_world + t``, OpenCV axes
    (x right, y down, z forward); ``original_size`` is the (H, W) of the source
    frame before any crop or resize.
    """

    image: np.ndarray
    depth: np.ndarray
    intrinsics: np.ndarray
    cam_from_world: np.ndarray
    frame_id: int
    mask: np.ndarray | None = None
    original_size: tuple[int, int] = field(default=(0, 0))

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(f"View.image must be a uint8 [H, W, 3] array, got {self.image.dtype} {self.image.shape}")
        height, width = self.image.shape[:2]
        if self.depth.shape != (height, width):
            raise ValueError(f"View.depth must be [H, W] = {[height, width]}, got {list(self.depth.shape)}")
        if self.mask is not None and self.mask.shape != (height, width):
            raise ValueError(f"View.mask must be [H, W] = {[height, width]}, got {list(self.mask.shape)}")
        self.intrinsics = np.asarray(self.intrinsics, dtype=np.float64).reshape(3, 3)
        self.cam_from_world = np.asarray(self.cam_from_world, dtype=np.float64).reshape(3, 4)
        self.depth = np.asarray(self.depth, dtype=np.float32)
        if self.original_size == (0, 0):
            self.original_size = (height, width)

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of this view."""
        return self.image.shape[0], self.image.shape[1]

    def with_(self, **changes: Any) -> "View":
        """A copy with some fields replaced (as :func:`dataclasses.replace`)."""
        return replace(self, **changes)


def views_to_sample(views: Sequence[View], scene: str, origin: str | None = None, check: bool = True
                    ) -> dict[str, Any]:
    """Stack equally sized views into a contract sample (see :mod:`vggt3d.data.sample`).

    Convention: ``cam_points`` are unprojected from depth with pixel centres at
    integers; ``world_points = R^T (cam_points - t)`` (OpenCV axes: x right, y down,
    z forward). Camera points are computed in float32, world points in float64; both
    are stored as float32. A pixel is
    valid iff ``depth > 1e-8`` and the view's mask allows it; invalid pixels get
    depth 0 and zero ``cam_points``/``world_points``.

    Args:
        views: S views of one size ``(H, W)``.
        scene: scene name stored under ``"scene"``.
        origin: name used in error messages (default ``scene``).
        check: validate with :func:`~vggt3d.data.sample.check_sample` (callers that add
            keys and check once at the end pass False).

    Returns:
        The sample dict with ``images [S, 3, H, W]``, ``depths [S, H, W]``,
        ``cam_from_world [S, 3, 4]``, ``intrinsics [S, 3, 3]``, ``point_masks [S, H, W]``,
        ``cam_points``/``world_points [S, H, W, 3]``, ``scene``, ``frame_ids`` and
        ``original_sizes [S, 2]``.
    """
    origin = origin or f"scene {scene!r}"
    if not views:
        raise ValueError(f"{origin}: no views to stack")
    sizes = {v.size for v in views}
    if len(sizes) != 1:
        raise ValueError(f"{origin}: views have different sizes {sorted(sizes)}; resize or crop them first "
                         "(give the dataset an image_size, or use make_dataloader)")
    pixels = np.stack([v.image for v in views]).transpose(0, 3, 1, 2)  # [S, 3, H, W] uint8
    images = torch.from_numpy(pixels.astype(np.float32) / np.float32(255.0))
    depth = np.nan_to_num(np.stack([v.depth for v in views]).astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    valid = depth > _VALID_DEPTH  # [S, H, W]
    for i, v in enumerate(views):
        if v.mask is not None:
            valid[i] &= v.mask
    depth *= valid
    depth_t = torch.from_numpy(depth)
    intrinsics = torch.from_numpy(np.stack([v.intrinsics for v in views]))  # [S, 3, 3] float64
    cam_from_world = torch.from_numpy(np.stack([v.cam_from_world for v in views]))  # [S, 3, 4] float64
    # Camera points in float32 (the stored precision); world points through float64, since world
    # coordinates can be far larger than camera ones.
    cam_points = depth_to_cam_points(depth_t, intrinsics.float())  # [S, H, W, 3]
    world_points = cam_points_to_world(cam_points.double(), cam_from_world).float()  # [S, H, W, 3]
    mask_t = torch.from_numpy(valid)
    if not valid.all():
        world_points *= mask_t[..., None]  # zero the invalid pixels
    sample = {
        "images": images,
        "depths": depth_t,
        "cam_from_world": cam_from_world.float(),
        "intrinsics": intrinsics.float(),
        "point_masks": mask_t,
        "cam_points": cam_points,
        "world_points": world_points,
        "scene": scene,
        "frame_ids": [int(v.frame_id) for v in views],
        "original_sizes": torch.tensor([list(v.original_size) for v in views], dtype=torch.int64),
    }
    return dict(check_sample(sample, origin)) if check else sample


# ----------------------------------------------------------------------------------------------
# File helpers shared by the adapters.


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file as ``[H, W, 3]`` uint8 RGB, without EXIF rotation.

    Convention: decoding (transparency onto white, 16-bit to 8-bit) is that of
    :mod:`vggt3d.io.images`; EXIF orientation is *not* applied, because dataset
    cameras are calibrated on the stored pixel grid.

    Raises:
        FileNotFoundError, vggt3d.io.images.ImageLoadError: naming the file.
    """
    path = Path(path)
    image = _decode_colour(_open_image(path, exif_transpose=False), path)
    if image.mode == "F":  # 16-bit or float grey in [0, 1]
        grey = np.clip(np.asarray(image, dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.asarray(image, dtype=np.uint8).copy()


def load_mask(path: str | os.PathLike, threshold: int = 127) -> np.ndarray:
    """Read a mask image as ``[H, W]`` bool (pixel value > ``threshold`` is True)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file not found: {path}")
    try:
        with Image.open(path) as im:
            values = np.asarray(im.convert("L") if im.mode not in ("L", "1", "I", "I;16") else im)
    except OSError as exc:
        raise ValueError(f"cannot read mask {path}: {exc}") from exc
    if values.dtype == bool:
        return values.copy()
    return values > threshold


def load_depth_png16(path: str | os.PathLike, scale: float) -> np.ndarray:
    """Read a 16-bit PNG depth map as ``[H, W]`` float32: ``depth = value * scale`` (0 stays invalid)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"depth file not found: {path}")
    with Image.open(path) as im:
        if im.mode not in ("I;16", "I;16B", "I;16L", "I"):
            raise ValueError(f"{path}: expected a 16-bit PNG depth map, got PIL mode {im.mode}")
        values = np.asarray(im).astype(np.float64)
    return (values * scale).astype(np.float32)


def save_depth_png16(path: str | os.PathLike, depth: np.ndarray, scale: float) -> None:
    """Write ``[H, W]`` depth as a 16-bit PNG of ``round(depth / scale)`` (0 = invalid).

    Raises ValueError if a depth does not fit in 16 bits at this scale.
    """
    values = np.round(np.asarray(depth, dtype=np.float64) / scale)
    values[~np.isfinite(values)] = 0
    if values.max(initial=0) > 65535:
        raise ValueError(f"{path}: depth {float(np.nanmax(depth)):.4g} does not fit a 16-bit PNG at scale {scale}")
    Image.fromarray(values.astype(np.uint16)).save(path, format="PNG")
