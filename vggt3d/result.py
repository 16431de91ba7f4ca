"""The result of a reconstruction: :class:`Reconstruction` and :class:`Tracks`.

Kept apart from :mod:`vggt3d.reconstruct` (which runs the model) so that the
exporters in :mod:`vggt3d.export` depend on the data only, never on inference.

Convention: ``cam_from_world`` 4x4 with OpenCV axes (x right, y down, z
forward), the world frame is the camera of the first frame; intrinsics in
pixels with pixel centres at integer coordinates; depth is the camera z.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .io.images import ImageTransform

__all__ = ["Reconstruction", "TrackPoints", "Tracks"]


@dataclass
class Tracks:
    """Point tracks from query points in the first frame, at original resolution.

    Convention: pixels ``(x, y)`` with pixel centres at integers, in each frame's original image.
    """

    query_points: np.ndarray  # [N, 2] in frame 0
    uv: np.ndarray  # [S, N, 2] position in every frame
    visibility: np.ndarray  # [S, N] in [0, 1]
    confidence: np.ndarray  # [S, N] in [0, 1]


@dataclass
class TrackPoints:
    """Multi-view points: each triangulated from its observations in several frames (see :mod:`vggt3d.refine`).

    Convention: ``points [T, 3]`` float64 world coordinates, ``colors [T, 3]``
    uint8; observation ``k`` sees point ``track[k]`` at ``uv[k]`` (original pixels,
    centres at integers) in frame ``frame[k]`` (``[K]`` int64 each).
    """

    points: np.ndarray
    colors: np.ndarray
    track: np.ndarray
    frame: np.ndarray
    uv: np.ndarray
    source: str = "features"  # features, head or both


@dataclass
class Reconstruction:
    """Everything one forward pass predicts, with cameras at the original image resolution.

    Convention: see the module docstring. Per-frame arrays have ``S`` rows in
    input order; dense maps (``depth``, ``depth_conf``, ``model_colors``) are at
    the model's input resolution ``H x W`` (use :meth:`depth_at_original` for the
    original one); the point cloud ``points [N, 3]`` is in world coordinates.
    """

    image_names: list[str]  # unique file names used by every export
    sources: list[str]  # a file path, or "video.mp4#frame=12", or "<memory>"
    image_sizes: np.ndarray  # [S, 2] int (width, height) of the original images
    intrinsics: np.ndarray  # [S, 3, 3] float64, original pixels
    cam_from_world: np.ndarray  # [S, 4, 4] float64
    transforms: list[ImageTransform]  # model pixels <-> original pixels, per frame
    model_intrinsics: np.ndarray  # [S, 3, 3] float64, model pixels
    depth: np.ndarray  # [S, H, W] float32, 0 where the model input holds no image content
    depth_conf: np.ndarray  # [S, H, W] float32 (>= 1; 0 outside the content)
    model_colors: np.ndarray  # [S, H, W, 3] uint8, the model input
    points: np.ndarray  # [N, 3] float32 world points that passed the confidence filter
    colors: np.ndarray  # [N, 3] uint8
    point_conf: np.ndarray  # [N] float32
    point_normals: np.ndarray  # [N, 3] float32 unit normals facing their camera (0 where unknown)
    point_spacing: np.ndarray  # [N] float32 distance to neighbouring points
    point_frame: np.ndarray  # [N] int32, the frame each point comes from
    point_uv: np.ndarray  # [N, 2] float64, its observation in that frame (original pixels)
    tracks: Tracks | None = None
    track_points: TrackPoints | None = None  # multi-view tracks (--tracks-from, --refine ba)
    world_points: np.ndarray | None = None  # [S, H, W, 3] point-head map, with points_from="pointmap"
    timestamps: list[float] | None = None  # seconds, video input
    frame_indices: list[int] | None = None  # index in the decoded video stream
    info: dict[str, Any] = field(default_factory=dict)  # settings, timings, peak memory
    image_data: list[Any] = field(default_factory=list, repr=False)  # Path or PIL image per frame, for export

    @property
    def num_frames(self) -> int:
        return len(self.image_names)

    @property
    def world_from_cam(self) -> np.ndarray:
        """``[S, 4, 4]``: camera-to-world transforms (OpenCV axes)."""
        return np.linalg.inv(self.cam_from_world)

    def depth_at_original(self, index: int) -> np.ndarray:
        """Depth of frame ``index`` at its original resolution ``[height, width]`` float32 (0 = no prediction)."""
        from .export.depth_maps import resample_to_original

        return resample_to_original(self.depth[index], self.transforms[index], edge_aware=True)

    def confidence_at_original(self, index: int) -> np.ndarray:
        """Depth confidence of frame ``index`` at its original resolution (0 = no prediction)."""
        from .export.depth_maps import resample_to_original

        return resample_to_original(self.depth_conf[index], self.transforms[index], edge_aware=False)

    def save(self, out: str | os.PathLike, formats: Sequence[str] | None = None, overwrite: bool = False,
             progress: bool = False) -> dict[str, list[Path]]:
        """Write the outputs into ``out`` atomically (see :func:`vggt3d.export.save`); returns the files per format."""
        from .export import save

        return save(self, out, formats=formats, overwrite=overwrite, progress=progress)
