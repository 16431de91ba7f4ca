"""Clips for the geometry prior: find them (videos, image folders, list files) and load their frames.

A *clip* is a video file (decoded by :func:`vggt3d.io.video.read_video`, the one
video reader) or a folder of images (one frame per image file, in the natural
file-name order of :func:`vggt3d.io.inputs.discover_inputs`). A folder without
images expands to the videos and image folders directly inside it. A *list
file* (``.txt`` / ``.lst``) names clips (not images), one per line; blank lines
and lines starting with ``#`` are skipped, relative paths are relative to the
list file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..io.inputs import InputError, discover_inputs, is_image_path, natural_sort_key
from ..io.images import ImageLoadError, open_image
from ..io.video import VIDEO_SUFFIXES, check_sampling, is_video, read_video

__all__ = ["Clip", "ClipError", "LIST_SUFFIXES", "discover_clips", "frames_to_tensor", "load_clip"]

log = logging.getLogger(__name__)

LIST_SUFFIXES = (".txt", ".lst")


class ClipError(ValueError):
    """An input is not a video, an image folder or a list file, or holds no frames."""


@dataclass
class Clip:
    """Frames of one clip, ``[T, 3, H, W]`` float32 RGB in [0, 1], with where they came from."""

    source: str
    frames: torch.Tensor
    indices: list[int] = field(default_factory=list)  # frame index in the video / position in the folder
    timestamps: list[float] = field(default_factory=list)  # seconds (NaN for image folders)
    names: list[str] = field(default_factory=list)  # image file names (empty for videos)


def _has_images(folder: Path) -> bool:
    return any(p.is_file() and is_image_path(p) and not p.name.startswith(".") for p in folder.iterdir())


def discover_clips(inputs: Sequence[str | os.PathLike]) -> list[str]:
    """Expand ``inputs`` (videos, image folders, list files) into clip paths, in order, without duplicates.

    A folder holding no images but sub-folders or videos is expanded one level
    (each video and each image sub-folder is a clip). Raises :class:`ClipError`
    for a missing path or an input that holds no clip.
    """
    out: list[str] = []

    def add(path: Path, origin: str) -> None:
        if not path.exists():
            raise ClipError(f"{origin}: {path} does not exist")
        if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            for line in path.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    entry = Path(os.path.expanduser(line))
                    add(entry if entry.is_absolute() else path.parent / entry, f"list file {path}")
            return
        if path.is_file():
            if not is_video(path):
                raise ClipError(f"{origin}: {path} is neither a video ({', '.join(VIDEO_SUFFIXES)}) "
                                f"nor a list file ({', '.join(LIST_SUFFIXES)})")
            out.append(str(path))
            return
        if _has_images(path):
            out.append(str(path))
            return
        children = sorted((c for c in path.iterdir() if not c.name.startswith(".")), key=natural_sort_key)
        found = [c for c in children if (c.is_file() and is_video(c)) or (c.is_dir() and _has_images(c))]
        if not found:
            raise ClipError(f"{origin}: folder {path} holds no images, videos or image folders")
        for c in found:
            out.append(str(c))

    for item in inputs:
        add(Path(os.path.expanduser(os.fspath(item))), "input")
    seen: set[str] = set()
    return [p for p in out if not (p in seen or seen.add(p))]


def frames_to_tensor(images: Sequence[Image.Image]) -> torch.Tensor:
    """PIL images -> ``[T, 3, H, W]`` float32 in [0, 1]; images of another size are resized to the first's."""
    if not images:
        raise ClipError("no frames")
    size = images[0].size
    arrays = []
    for k, img in enumerate(images):
        img = img.convert("RGB")
        if img.size != size:
            log.warning("frame %d is %dx%d, not %dx%d like frame 0: resized", k, *img.size, *size)
            img = img.resize(size, Image.Resampling.BICUBIC)
        arrays.append(np.asarray(img, dtype=np.uint8))
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)  # [T, 3, H, W] uint8
    return x.float().div_(255.0)


def _rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB of an :func:`~vggt3d.io.images.open_image` result (``F``: grey in [0, 1])."""
    if image.mode == "F":
        grey = np.clip(np.asarray(image, dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    return image.convert("RGB")


def load_clip(source: str | os.PathLike, fps: float | None = None, stride: int = 1,
              max_frames: int | None = None) -> Clip:
    """Decode one clip (a video or an image folder), sampled by ``fps`` / ``stride`` / ``max_frames``.

    For image folders ``fps`` is ignored (no timestamps) and ``stride`` /
    ``max_frames`` apply to the sorted files.
    """
    path = Path(os.fspath(source))
    try:  # stride -1 would reverse the clip, max_frames 0 would mean "all", fps inf would never end
        check_sampling(fps, stride, max_frames)
    except ValueError as e:
        raise ClipError(f"{path}: {e}") from None
    if path.is_dir():
        try:
            files = discover_inputs(path).paths[::stride]
        except InputError as e:
            raise ClipError(str(e)) from e
        files = files[:max_frames] if max_frames else files
        images = []
        for f in files:
            try:  # regular files only, EXIF orientation applied, Pillow's decompression-bomb limit as one error
                images.append(_rgb(open_image(f)))
            except ImageLoadError as e:
                raise ClipError(str(e)) from None
        indices = [stride * k for k in range(len(files))]
        return Clip(str(path), frames_to_tensor(images), indices, [float("nan")] * len(files), [f.name for f in files])
    if path.is_file() and is_video(path):
        video = read_video(path, fps=fps, stride=stride, max_frames=max_frames)
        return Clip(str(path), frames_to_tensor(video.frames), list(video.indices), list(video.timestamps))
    raise ClipError(f"{path} is neither a video file nor a folder of images")
