"""Input discovery for ``vggt3d reconstruct``: folders, globs, lists of files, a text list, or one video.

What each input form means:

- a folder: its image files (not sub-folders, not hidden files), in natural
  sort order (``img2`` before ``img10``); other files are skipped and counted;
- a glob (``"shots/*.jpg"``, ``"**"`` recursive): the matching image files, natural order; the walk
  stays under the pattern's fixed leading folder and does not follow symbolic links to folders (a
  link loop cannot multiply the frames, nor lead out of the folder); hidden names match only a
  pattern part that starts with ``.``, as in the shell;
- a list of files (several arguments): taken as given, in the given order; a
  file with an unusual suffix is still tried as an image;
- a ``.txt`` file: one path per line (relative to the text file; ``#`` comments);
- a video file (mp4, mov, mkv, webm, avi, m4v): decoded later with
  :func:`vggt3d.io.video.read_video`.

:func:`discover_inputs` only decides which files are read; :func:`load_frames`
decodes them (with sampling, ``skip_bad`` and a progress bar) into a model-ready
batch with unique output names.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from .images import ImageLoadError, PreprocessedImages, open_image, preprocess_pil_images
from .video import VIDEO_SUFFIXES, VideoFrames, check_sampling, is_video, read_video

__all__ = ["IMAGE_SUFFIXES", "InputError", "Inputs", "LoadedFrames", "discover_inputs", "glob_files", "is_image_path",
           "load_frames", "natural_sort_key"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
_GLOB_CHARS = re.compile(r"[*?\[]")
PathLike = str | os.PathLike


class InputError(ValueError):
    """The input names no usable image or video (empty folder, no images, missing file, ...)."""


@dataclass
class Inputs:
    """The files a reconstruction reads."""

    kind: Literal["images", "video"]
    paths: list[Path]  # image files in order, or the one video
    skipped: list[Path] = field(default_factory=list)  # files in a folder or glob that are not images
    description: str = ""  # for messages: "folder shots/ (12 images)"

    def skipped_message(self) -> str | None:
        """One line saying how many non-image files were skipped, or ``None``."""
        if not self.skipped:
            return None
        names = ", ".join(p.name for p in self.skipped[:3]) + (", ..." if len(self.skipped) > 3 else "")
        count = len(self.skipped)
        return f"skipped {count} non-image file{'s' if count != 1 else ''} ({names})"


def natural_sort_key(path: PathLike) -> list:
    """Sort key that orders digit runs by value: ``img2.png`` < ``img10.png``; case-insensitive."""
    text = os.fspath(path)
    return [(0, int(part), part) if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", text)]


def is_image_path(path: PathLike) -> bool:
    """Whether ``path`` has an image suffix vggt3d reads (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _split(files: list[Path]) -> tuple[list[Path], list[Path]]:
    images = [p for p in files if is_image_path(p)]
    return images, [p for p in files if not is_image_path(p)]


def _from_folder(folder: Path) -> Inputs:
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    files = sorted((p for p in entries if p.is_file()), key=natural_sort_key)
    if not files:
        subdirs = sum(1 for p in entries if p.is_dir())
        extra = f" (it holds {subdirs} sub-folder{'s' if subdirs != 1 else ''}; pass one of them)" if subdirs else ""
        raise InputError(f"folder {folder} is empty: no image files to reconstruct from{extra}")
    images, others = _split(files)
    if not images:
        videos = [p for p in others if is_video(p)]
        hint = (f"; it holds {len(videos)} video{'s' if len(videos) != 1 else ''}: pass one, e.g. {videos[0]}"
                if videos else "")
        listed = ", ".join(p.name for p in files[:3]) + (", ..." if len(files) > 3 else "")
        raise InputError(
            f"no images in folder {folder}: none of its {len(files)} files ({listed}) has an image suffix "
            f"({', '.join(IMAGE_SUFFIXES)}){hint}"
        )
    return Inputs("images", images, others, f"folder {folder} ({len(images)} images)")


def _match_parts(pattern: list[str], parts: list[str]) -> bool:
    """Shell-style match of path parts against pattern parts; ``**`` spans zero or more folders."""
    if not pattern:
        return not parts
    head = pattern[0]
    if head == "**":
        return any(_match_parts(pattern[1:], parts[i:]) for i in range(len(parts) + 1)
                   if not any(p.startswith(".") for p in parts[:i]))
    if not parts or (parts[0].startswith(".") and not head.startswith(".")):
        return False
    return fnmatch.fnmatchcase(parts[0], head) and _match_parts(pattern[1:], parts[1:])


def glob_files(pattern: str) -> list[Path]:
    """Files matching a shell pattern (``*``, ``?``, ``[...]``, ``**``), without following folder links.

    The walk starts at the pattern's fixed leading folder and never leaves it
    through a symbolic link to a folder; links to files are kept.
    """
    parts = list(Path(os.path.expanduser(pattern)).parts)
    fixed = 0
    while fixed < len(parts) and not _GLOB_CHARS.search(parts[fixed]):
        fixed += 1
    root = os.path.join(*parts[:fixed]) if fixed else "."
    rest = parts[fixed:]
    if not rest:
        return [Path(root)] if os.path.isfile(root) else []
    max_depth = None if "**" in rest else len(rest) - 1
    found = []
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        relative = os.path.relpath(folder, root)
        rel_parts = [] if relative == "." else relative.split(os.sep)
        if max_depth is not None and len(rel_parts) >= max_depth:
            dirnames[:] = []
        for name in filenames:
            if _match_parts(rest, rel_parts + [name]):
                found.append(Path(folder) / name if fixed or relative != "." else Path(name))
    return found


def _from_glob(pattern: str) -> Inputs:
    matches = sorted(glob_files(pattern), key=natural_sort_key)
    files = [p for p in matches if p.is_file()]
    images, others = _split(files)
    if not images:
        found = f"{len(files)} files, none of them images" if files else "nothing"
        raise InputError(f"the pattern {pattern!r} matches {found}; check the pattern and quote it in the shell")
    return Inputs("images", images, others, f"pattern {pattern!r} ({len(images)} images)")


def _from_text_list(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the list of images {path}: {exc}") from exc
    entries = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not entries:
        raise InputError(f"the list of images {path} names no files")
    return [p if p.is_absolute() else path.parent / p for p in (Path(os.path.expanduser(e)) for e in entries)]


def _from_files(files: list[Path]) -> Inputs:
    missing = [p for p in files if not p.exists()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(f"input file not found: {missing[0]}{more}")
    folders = [p for p in files if p.is_dir()]
    if folders:
        raise InputError(f"{folders[0]} is a folder; pass either one folder or a list of image files, not both")
    special = [p for p in files if not stat.S_ISREG(p.stat().st_mode)]
    if special:  # opening a FIFO blocks forever; a device never ends
        raise InputError(f"{special[0]} is not a regular file (a pipe, socket or device); pass image files")
    videos = [p for p in files if is_video(p)]
    if videos:
        raise InputError(f"{videos[0]} is a video; pass a single video on its own, not in a list with other files")
    return Inputs("images", files, [], f"{len(files)} image file{'s' if len(files) != 1 else ''}")


def discover_inputs(inputs: PathLike | Sequence[PathLike]) -> Inputs:
    """Decide which files a reconstruction reads (see the module docstring).

    Args:
        inputs: one folder, glob, video, image or ``.txt`` list, or a sequence of
            image files (a one-element sequence is read like a single input).

    Raises:
        InputError: empty folder, no images, pattern without matches, missing
            file, several videos or a video mixed with images.
    """
    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    if not items:
        raise InputError("no input given: pass a folder of images, image files, a glob pattern or a video")
    if len(items) > 1:
        return _from_files([Path(os.path.expanduser(os.fspath(p))) for p in items])
    text = os.fspath(items[0])
    path = Path(os.path.expanduser(text))
    if path.is_dir():
        return _from_folder(path)
    if path.exists() and not path.is_file():
        raise InputError(f"{text} is not a regular file (a pipe, socket or device); pass image files, a folder "
                         "or a video file")
    if path.is_file():
        if is_video(path):
            return Inputs("video", [path], [], f"video {path}")
        if path.suffix.lower() == ".txt":
            return _from_files(_from_text_list(path))
        return _from_files([path])
    if _GLOB_CHARS.search(text):
        return _from_glob(text)
    kind = "video" if path.suffix.lower() in VIDEO_SUFFIXES else "input"
    raise InputError(f"{kind} not found: {text}")


# ------------------------------------------------------------------ loading
@dataclass
class LoadedFrames:
    """Decoded frames, model-ready, with what the exports need to name and copy them."""

    batch: PreprocessedImages  # images [S, 3, H, W] and the per-frame transforms to original pixels
    names: list[str]  # unique output file names (images/NAME)
    sources: list[str]  # a file path, "video.mp4#frame=12" or "<memory>"
    data: list[Any]  # per frame the source Path, or the PIL image (video frames, in-memory images)
    description: str  # "folder shots (12 images)"
    bad: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) left out by skip_bad
    skipped: str | None = None  # the "skipped N non-image files" line, if any
    timestamps: list[float] | None = None  # video: presentation time in seconds
    indices: list[int] | None = None  # video: index in the decoded stream


def _unique_names(names: list[str]) -> list[str]:
    """Make file names unique by their stem, case-insensitively (``a.jpg``, ``a.png`` -> ``a.jpg``, ``a_1.png``)."""
    seen: set[str] = set()
    out = []
    for name in names:
        stem, suffix = os.path.splitext(name)
        candidate, k = stem, 0
        while candidate.lower() in seen:
            k += 1
            candidate = f"{stem}_{k}"
        seen.add(candidate.lower())
        out.append(candidate + suffix)
    return out


def _load_files(inputs: Inputs, mode: str, size: int, stride: int, max_frames: int | None, skip_bad: bool,
                progress: bool, patch_size: int = 14) -> LoadedFrames:
    from tqdm.auto import tqdm

    paths = inputs.paths[::stride]
    if max_frames is not None and len(paths) > max_frames:
        log.info("using the first %d of %d images (max_frames)", max_frames, len(paths))
        paths = paths[:max_frames]
    kept: list[Path] = []
    bad: list[tuple[str, str]] = []

    def decoded():
        for path in tqdm(paths, desc="loading images", unit="img", disable=not progress, leave=False):
            try:
                image = open_image(path)
            except (ImageLoadError, OSError) as exc:
                if not skip_bad:
                    raise ImageLoadError(f"{exc}\nTo continue without it, pass --skip-bad (skip_bad=True).") from exc
                log.warning("skipping %s: %s", path, exc)
                bad.append((str(path), str(exc)))
                continue
            kept.append(path)
            yield image

    try:
        batch = preprocess_pil_images(decoded(), mode=mode, size=size, patch_size=patch_size)
    except ValueError as exc:
        if kept or not bad:
            raise
        raise ImageLoadError(f"none of the {len(bad)} images could be read; the first: {bad[0][1]}") from exc
    batch.paths = [str(p) for p in kept]
    if inputs.skipped:
        log.debug("%s", inputs.skipped_message())  # the summary prints it once
    return LoadedFrames(batch, _unique_names([p.name for p in kept]), [str(p) for p in kept], list(kept),
                        inputs.description, bad, inputs.skipped_message())


def _from_memory(images: Sequence[Any], mode: str, size: int, description: str, names: list[str] | None = None,
                 sources: list[str] | None = None, patch_size: int = 14, **extra: Any) -> LoadedFrames:
    pil = [im if isinstance(im, Image.Image) else _array_to_image(im) for im in images]
    if not pil:
        raise InputError(f"no frames to reconstruct from ({description})")
    names = names or [f"image_{i:04d}.png" for i in range(len(pil))]
    batch = preprocess_pil_images(pil, mode=mode, size=size, names=names, patch_size=patch_size)
    return LoadedFrames(batch, names, sources or ["<memory>"] * len(pil), pil, description, **extra)


def _array_to_image(array: Any) -> Image.Image:
    """``[H, W]``, ``[H, W, C]`` or ``[C, H, W]`` uint8, or floats in [0, 1], as a PIL image."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3, 4):
        a = a.transpose(1, 2, 0)  # [C, H, W] -> [H, W, C]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (1, 3, 4)):
        raise InputError(f"an in-memory image must be [H, W], [H, W, 3] or [3, H, W], got shape {list(a.shape)}")
    if a.dtype != np.uint8:
        a = np.clip(np.round(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)  # floats in [0, 1]
    return Image.fromarray(a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a)


def load_frames(inputs: Any, mode: Literal["crop", "pad"] = "crop", size: int = 518, fps: float | None = None,
                stride: int = 1, max_frames: int | None = None, skip_bad: bool = False,
                progress: bool = False, patch_size: int = 14) -> LoadedFrames:
    """Decode ``inputs`` into a model batch: paths (see :func:`discover_inputs`), PIL images or arrays, or
    :class:`~vggt3d.io.video.VideoFrames`.

    Sampling: every ``stride``-th frame, then at most ``max_frames``; ``fps`` (videos
    only) first keeps at most that many frames per second. ``skip_bad`` leaves
    unreadable images out with a warning instead of raising. ``patch_size``: the
    model's (14 VGGT-1B, 16 VGGT-Omega); model sizes are multiples of it.

    Raises:
        InputError, ImageLoadError, vggt3d.io.video.VideoReadError, FileNotFoundError.
    """
    check_sampling(fps, stride, max_frames)
    if isinstance(inputs, VideoFrames):
        keep = list(range(len(inputs)))[::stride][:max_frames]
        indices = [inputs.indices[k] if k < len(inputs.indices) else k for k in keep]
        return _from_memory([inputs.frames[k] for k in keep], mode, size, f"video {inputs.path} ({len(keep)} frames)",
                            names=[f"frame_{i:06d}.png" for i in indices],
                            sources=[f"{inputs.path}#frame={i}" for i in indices], indices=indices,
                            timestamps=[inputs.timestamps[k] for k in keep] if inputs.timestamps else None,
                            patch_size=patch_size)
    if isinstance(inputs, Image.Image | np.ndarray):
        inputs = [inputs]
    if isinstance(inputs, Sequence) and not isinstance(inputs, str) and inputs and all(
            isinstance(x, Image.Image | np.ndarray) for x in inputs):
        frames = list(inputs)[::stride][:max_frames]
        return _from_memory(frames, mode, size, f"{len(frames)} images in memory", patch_size=patch_size)
    found = discover_inputs(inputs)
    if found.kind == "images":
        if fps is not None:
            log.warning("fps applies to videos only; ignored for %s", found.description)
        return _load_files(found, mode, size, stride, max_frames, skip_bad, progress, patch_size)
    from tqdm.auto import tqdm

    path = found.paths[0]
    with tqdm(total=1, desc="decoding video", disable=not progress, leave=False) as bar:
        video = read_video(path, fps=fps, stride=stride, max_frames=max_frames)
        bar.update(1)
    return _from_memory(video.frames, mode, size, f"video {path} ({len(video)} frames)",
                        names=[f"frame_{i:06d}.png" for i in video.indices],
                        sources=[f"{path}#frame={i}" for i in video.indices],
                        timestamps=list(video.timestamps), indices=list(video.indices), patch_size=patch_size)
