"""Video frames through PyAV: the one video reader of vggt3d.

Used by ``vggt3d reconstruct`` (video input) and by the geometry-prior feature
cache. Frames are decoded in presentation order; sampling is by target frame
rate (``fps``), by keeping every ``stride``-th frame, and capped at
``max_frames``. Each kept frame carries its index in the decoded stream and its
presentation timestamp in seconds.
"""

from __future__ import annotations

import math
import numbers
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")


class VideoReadError(ValueError):
    """A video cannot be opened or decoded, or holds no frames."""


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a video file suffix (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class VideoFrames:
    """Decoded frames of one video: RGB PIL images with their stream indices and timestamps."""

    path: str
    frames: list[Image.Image] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    fps: float | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def to_numpy(self) -> np.ndarray:
        """Frames as ``uint8 [T, H, W, 3]``."""
        return np.stack([np.asarray(f) for f in self.frames])


def _iter_frames(path: str) -> Iterator[tuple[int, float, "object"]]:
    import av

    try:
        container = av.open(path)
    except Exception as e:  # noqa: BLE001 - PyAV raises many error types
        raise VideoReadError(f"cannot open video {path}: {e}. Is it a complete video file in a format FFmpeg reads?") from e
    with container:
        if not container.streams.video:
            raise VideoReadError(f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for i, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if frame.time is not None else float("nan")
                yield i, t, frame
        except Exception as e:  # noqa: BLE001
            raise VideoReadError(f"error while decoding {path}: {e}. The file may be truncated or corrupt.") from e


def video_fps(path: str | os.PathLike) -> float | None:
    """Average frame rate of the first video stream, or ``None`` if unknown."""
    import av

    try:
        with av.open(str(path)) as c:
            rate = c.streams.video[0].average_rate if c.streams.video else None
    except Exception as e:  # noqa: BLE001
        raise VideoReadError(f"cannot open video {path}: {e}") from e
    return float(rate) if rate else None


def check_sampling(fps: float | None = None, stride: int = 1, max_frames: int | None = None) -> None:
    """Raise ``ValueError`` unless ``fps`` is finite and > 0 (or None), ``stride`` >= 1, ``max_frames`` >= 1 (or None).

    ``max_frames=0`` is an error, not "no limit" (that is ``None``).
    """
    if isinstance(stride, bool) or not isinstance(stride, numbers.Integral) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    if fps is not None and not (isinstance(fps, numbers.Real) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, numbers.Integral)
                                   or max_frames < 1):
        raise ValueError(f"max_frames must be an integer >= 1 or None (no limit), got {max_frames!r}")


def read_video(path: str | os.PathLike, fps: float | None = None, stride: int = 1,
               max_frames: int | None = None) -> VideoFrames:
    """Decode and sample frames of ``path``.

    ``fps``: keep at most this many frames per second of video time (the first
    frame at or after each multiple of ``1/fps``); ``stride``: then keep every
    ``stride``-th of those; ``max_frames``: stop after this many. Raises
    :class:`VideoReadError` for a missing, unreadable or frameless video.
    """
    path = str(path)
    check_sampling(fps, stride, max_frames)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"video file {path} does not exist") from None
    except OSError as e:
        raise VideoReadError(f"cannot open video {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):  # a FIFO or device would block or never end
        raise VideoReadError(f"{path} is not a regular file (a pipe, device or folder); pass a video file")
    out = VideoFrames(path=path, fps=video_fps(path))
    next_time = 0.0
    kept_by_rate = 0
    decoded = 0
    for index, t, frame in _iter_frames(path):
        decoded += 1
        if fps is not None:
            time = t if t == t else index / (out.fps or fps)  # NaN-safe fallback
            if time + 1e-6 < next_time:
                continue
            next_time += 1.0 / fps
            while next_time <= time:
                next_time += 1.0 / fps
        kept_by_rate += 1
        if (kept_by_rate - 1) % stride:
            continue
        out.frames.append(frame.to_image().convert("RGB"))
        out.indices.append(index)
        out.timestamps.append(t)
        if max_frames is not None and len(out.frames) >= max_frames:
            break
    if decoded == 0 or not out.frames:
        raise VideoReadError(f"video {path} holds no decodable frames")
    return out
