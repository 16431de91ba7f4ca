"""Score the 3D consistency of a clip with a vggt3d model: run it, then :func:`consistency_from_geometry`.

The measures and the report are those of :mod:`vggt3d.prior.scoring`; this
module only turns a video, a folder, frames or a tensor into the model's
geometry (on its input grid) and scores it.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import torch
from torch import Tensor

from .scoring import ConsistencyReport, consistency_from_geometry

__all__ = ["consistency"]


def _query_grid(height: int, width: int, count: int) -> Tensor:
    """About ``count`` query pixels (x, y) on a regular grid inside an ``height x width`` frame: ``[N, 2]``."""
    rows = max(1, round(math.sqrt(count * height / width)))
    cols = max(1, round(count / rows))
    ys = (torch.arange(rows, dtype=torch.float32) + 0.5) * height / rows - 0.5
    xs = (torch.arange(cols, dtype=torch.float32) + 0.5) * width / cols - 0.5
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)


def _as_frames(video: Any, fps: float | None, stride: int, max_frames: int | None):
    """``(frames [T, 3, H, W], source, indices, timestamps)`` from any accepted input."""
    from ..io.video import VideoFrames
    from .clips import frames_to_tensor, load_clip

    if isinstance(video, (str, os.PathLike)):
        clip = load_clip(video, fps=fps, stride=stride, max_frames=max_frames)
        return clip.frames, clip.source, clip.indices, clip.timestamps
    if isinstance(video, VideoFrames):
        return frames_to_tensor(video.frames), video.path, list(video.indices), list(video.timestamps)
    if isinstance(video, Tensor):
        frames = video[0] if video.dim() == 5 and video.shape[0] == 1 else video
        if frames.dim() != 4 or frames.shape[1] != 3:
            raise ValueError(f"frames must be [T, 3, H, W] (or [1, T, 3, H, W]) RGB in [0, 1], got {list(video.shape)}")
        return frames, None, list(range(frames.shape[0])), None
    if isinstance(video, Sequence) and video and all(hasattr(f, "convert") for f in video):
        return frames_to_tensor(list(video)), None, list(range(len(video))), None
    raise TypeError(f"cannot score {type(video).__name__}: pass a video path, an image folder, VideoFrames, "
                    f"a list of PIL images or a [T, 3, H, W] tensor")


def consistency(video: Any, model: Any = None, *, tracks: bool = True, num_tracks: int = 256,
                window: int | None = None, overlap: int = 2, resolution: int | tuple[int, int] | None = None,
                fps: float | None = None, stride: int = 1, max_frames: int | None = None,
                device: str | torch.device | None = None, **kwargs: Any) -> ConsistencyReport:
    """Run a vggt3d model on a clip and score its 3D consistency.

    Args:
        video: a video file, an image folder, :class:`vggt3d.io.video.VideoFrames`,
            a list of PIL images, or frames ``[T, 3, H, W]`` in [0, 1].
        model: a :class:`vggt3d.GeometryPrior` (its window settings are used), a
            :class:`vggt3d.VGGT3D`, or a ``from_pretrained`` source
            (default ``facebook/VGGT-1B``).
        tracks: also track ``num_tracks`` grid points of frame 0 (when the
            model has a track head and the frames are large enough).
        window, overlap, resolution: windowing and model input size when
            ``model`` is not already a prior (see :class:`vggt3d.GeometryPrior`).
        fps, stride, max_frames: frame sampling of video files and folders.
        **kwargs: passed to :func:`consistency_from_geometry` (``rel_tol``,
            ``max_gap``, ``conf_quantile``, ...).

    The geometry is the model's prediction on its input grid (cameras, depth,
    depth confidence, tracks), so pixels are the model's.
    """
    from ..model import VGGT3D
    from .prior import GeometryPrior

    frames, source, indices, timestamps = _as_frames(video, fps, stride, max_frames)
    model_id = None
    if model is None or isinstance(model, (str, os.PathLike)):
        from ..hub import DEFAULT_REPO
        from ..runtime import resolve_device

        dev = resolve_device(device or "auto")
        model_id = str(model) if model is not None else DEFAULT_REPO
        model = VGGT3D.from_pretrained(model_id, device=dev)
    if isinstance(model, VGGT3D):
        model = GeometryPrior(model, layers=[-1], window=window, overlap=overlap if window else 0,
                              resolution=resolution, model_id=model_id)
    if not isinstance(model, GeometryPrior):
        raise TypeError(f"model must be a GeometryPrior, a VGGT3D or a checkpoint source, got {type(model).__name__}")
    prior = model
    H, W = prior.model_size(*frames.shape[-2:])
    queries = None
    m = prior.model
    if tracks and prior.can_track and min(H, W) >= m.track_head.min_image_size():
        queries = _query_grid(H, W, num_tracks)
    out = prior(frames.unsqueeze(0), heads=True, query_points=queries, grad=False).heads
    report = consistency_from_geometry(
        out["depth"][0], out["cam_from_world"][0], out["intrinsics"][0], conf=out["depth_conf"][0],
        tracks=None if queries is None else out["track"][0],
        track_visibility=None if queries is None else out["vis"][0] > 0.5, **kwargs)
    report.source, report.frame_indices = source, indices
    report.timestamps = None if timestamps is None else [float(t) for t in timestamps]
    report.settings.update(model=prior.model_id, window=prior.window, overlap=prior.overlap,
                           resolution=list(prior.resolution) if isinstance(prior.resolution, tuple) else prior.resolution,
                           tracks=queries is not None, causal=getattr(prior, "causal", False))
    return report
