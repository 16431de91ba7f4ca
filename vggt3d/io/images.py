"""Image loading for the model: decode, resize to a multiple of the patch size, crop or pad, batch.

Reproduces the original VGGT loader (``load_and_preprocess_images``) exactly for
8-bit images, and records per image how model pixels map back to the original
image, so predicted points and intrinsics can be expressed in either space.

Convention: pixel centres are at integer coordinates (u column, v row) in both
spaces; ``u_model = (u_orig + 0.5) * scale_x - 0.5 + offset_x`` (same for v with
``scale_y``, ``offset_y``). "Original" means the decoded image after EXIF
orientation when ``exif_transpose=True`` (as an image viewer shows it).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

__all__ = [
    "ImageLoadError",
    "ImageTransform",
    "PreprocessedImages",
    "load_images",
    "open_image",
    "preprocess_images",
    "preprocess_pil_images",
]

logger = logging.getLogger(__name__)

#: default patch size (VGGT-1B); pass the model's ``config.patch_size`` (16 for VGGT-Omega)
PATCH_SIZE = 14
#: ``crop``/``pad``: VGGT-1B's loader (width / longer side = size); ``balanced``/``max_size``: VGGT-Omega's
#: (about (size/p)^2 patches / longer side = size, after cropping aspect ratios beyond 1:2)
MODES = ("crop", "pad", "balanced", "max_size")
OMEGA_MODES = ("balanced", "max_size")
PathLike = str | os.PathLike
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


class ImageLoadError(ValueError):
    """A file exists but cannot be decoded as an image."""


@dataclass(frozen=True)
class ImageTransform:
    """Where one original image sits inside the model input.

    Convention: pixel centres at integers; ``u_model = (u_orig - crop_x + 0.5) * scale_x
    - 0.5 + offset_x`` and ``v_model = (v_orig - crop_y + 0.5) * scale_y - 0.5 +
    offset_y``, where ``scale = resized / cropped`` and the offset is negative for a
    crop after resizing and positive for padding. ``crop_*`` is a crop of the
    original *before* resizing (VGGT-Omega's aspect-ratio crop; 0 = none, the
    width/height 0 = the whole image).
    """

    original_width: int
    original_height: int
    resized_width: int  # size after the bicubic resize, before crop or padding
    resized_height: int
    offset_x: int  # model x of the resized image's left edge
    offset_y: int  # model y of the resized image's top edge (negative when cropped)
    model_width: int
    model_height: int
    crop_x: int = 0  # left edge of the kept part of the original (before resizing)
    crop_y: int = 0
    crop_width: int = 0  # 0: the whole original width
    crop_height: int = 0

    @property
    def scale_x(self) -> float:
        return self.resized_width / (self.crop_width or self.original_width)

    @property
    def scale_y(self) -> float:
        return self.resized_height / (self.crop_height or self.original_height)

    @property
    def content_box_xyxy(self) -> tuple[int, int, int, int]:
        """Model pixels holding image content (not padding), as ``[x0, x1) x [y0, y1)`` edges."""
        x0, y0 = max(self.offset_x, 0), max(self.offset_y, 0)
        x1 = min(self.offset_x + self.resized_width, self.model_width)
        y1 = min(self.offset_y + self.resized_height, self.model_height)
        return x0, y0, x1, y1

    def _affine(self) -> tuple[list[float], list[float]]:
        """``(scale, shift)`` so that ``uv_model = uv_orig * scale + shift`` (x, y)."""
        scale = [self.scale_x, self.scale_y]
        shift = [(0.5 - self.crop_x) * scale[0] - 0.5 + self.offset_x,
                 (0.5 - self.crop_y) * scale[1] - 0.5 + self.offset_y]
        return scale, shift

    def original_to_model_points(self, uv: Any) -> Any:
        """Map pixel coordinates ``uv [..., 2]`` (x, y) from the original image to the model input.

        Convention: pixel centres at integers. Returns a tensor for a tensor input,
        else a float64 numpy array.
        """
        uv = _as_float(uv, "uv", (2,))
        scale, shift = self._affine()
        return uv * _like(uv, scale) + _like(uv, shift)

    def model_to_original_points(self, uv: Any) -> Any:
        """Map pixel coordinates ``uv [..., 2]`` (x, y) from the model input to the original image.

        Convention: pixel centres at integers; inverse of :meth:`original_to_model_points`.
        """
        uv = _as_float(uv, "uv", (2,))
        scale, shift = self._affine()
        return (uv - _like(uv, shift)) / _like(uv, scale)

    def _intrinsics_map(self) -> np.ndarray:
        """``A [3, 3]`` with ``K_model = A @ K_original``."""
        (sx, sy), (bx, by) = self._affine()
        return np.array([[sx, 0.0, bx], [0.0, sy, by], [0.0, 0.0, 1.0]])

    def intrinsics_to_model(self, intrinsics: Any) -> Any:
        """Express pixel intrinsics ``K [..., 3, 3]`` of the original image in model pixels.

        Convention: ``f' = f * s``, ``c' = (c + 0.5) * s - 0.5 + offset`` per axis
        (pixel centres at integers; skew scales with x).
        """
        intrinsics = _as_float(intrinsics, "intrinsics", (3, 3))
        return _like(intrinsics, self._intrinsics_map()) @ intrinsics

    def intrinsics_to_original(self, intrinsics: Any) -> Any:
        """Express pixel intrinsics ``K [..., 3, 3]`` of the model input in original pixels.

        Convention: inverse of :meth:`intrinsics_to_model`.
        """
        intrinsics = _as_float(intrinsics, "intrinsics", (3, 3))
        return _like(intrinsics, np.linalg.inv(self._intrinsics_map())) @ intrinsics

    def to_dict(self) -> dict[str, float | int]:
        """Plain dict of the fields plus ``scale_x``/``scale_y`` (JSON-serialisable)."""
        return {**asdict(self), "scale_x": self.scale_x, "scale_y": self.scale_y}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageTransform:
        """Inverse of :meth:`to_dict` (derived keys are ignored)."""
        return cls(**{f.name: int(data[f.name]) for f in fields(cls) if f.name in data})


def _as_float(value: Any, name: str, trailing: tuple[int, ...]) -> Any:
    """A float tensor (kept as given) or a float64 array, checked to end with ``trailing``."""
    value = value if isinstance(value, Tensor) else np.asarray(value, dtype=np.float64)
    if tuple(value.shape[value.ndim - len(trailing) :]) != trailing:
        shape = ", ".join(str(d) for d in trailing)
        raise ValueError(f"{name} must have shape [..., {shape}], got {list(value.shape)}")
    return value if not isinstance(value, Tensor) or value.is_floating_point() else value.double()


def _like(reference: Any, values: Any) -> Any:
    if isinstance(reference, Tensor):
        return torch.as_tensor(np.asarray(values), dtype=reference.dtype, device=reference.device)
    return np.asarray(values, dtype=np.float64)


@dataclass
class PreprocessedImages:
    """Model-ready images and the per-image mapping back to the original files."""

    images: Tensor  # [S, 3, H, W] float32 RGB in [0, 1]
    transforms: list[ImageTransform]  # one per image, in input order
    paths: list[str]


def _open_image(path: Path, exif_transpose: bool) -> Image.Image:
    """Decode ``path`` fully, applying EXIF orientation if asked."""
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, f"image file not found: {path}", str(path))
    if path.is_dir():
        raise ImageLoadError(f"{path} is a directory, not an image file; pass the image files inside it")
    if not path.is_file():  # opening a FIFO blocks forever, a device never ends
        raise ImageLoadError(f"{path} is not a regular file (a pipe, socket or device); pass image files")
    try:
        with Image.open(path) as opened:
            opened.load()
            image = opened.copy()
    except Image.DecompressionBombError as exc:  # pixel count over Pillow's limit: refuse before decoding
        raise ImageLoadError(f"{path} is too large to decode safely ({exc}); downscale it, or leave it out "
                             "(--skip-bad)") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageLoadError(
            f"cannot read {path} as an image ({exc}); check that the file is a complete image in a format "
            "Pillow can open (PNG, JPEG, TIFF, WebP, BMP, ...), or convert it, or remove it from the input"
        ) from exc
    if exif_transpose:
        try:
            image = ImageOps.exif_transpose(image)
        except Exception as exc:  # malformed EXIF must not make a readable image unusable
            logger.warning("ignoring unreadable EXIF orientation of %s: %s", path, exc)
    return image


def _decode_colour(image: Image.Image, path: Path) -> Image.Image:
    """Return an 8-bit ``RGB`` image, or a float ``F`` (grayscale in [0, 1]) one for 16-bit/float data.

    Convention: transparency is composited onto white; ``I``/``I;16*`` values are
    read as 16-bit (divided by 65535), ``F`` values as already in [0, 1].
    """
    try:
        if image.mode in _SIXTEEN_BIT_MODES:
            data = np.asarray(image, dtype=np.float64) / 65535.0  # [H, W]
            return Image.fromarray(np.clip(data, 0.0, 1.0).astype(np.float32))
        if image.mode == "F":
            return Image.fromarray(np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0))
        if image.mode in _ALPHA_MODES or "transparency" in image.info:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, rgba)
        return image.convert("RGB")
    except (OSError, ValueError) as exc:
        raise ImageLoadError(
            f"cannot convert {path} (mode {image.mode}) to RGB ({exc}); convert it to an 8-bit RGB PNG first"
        ) from exc


def _resized_size(width: int, height: int, mode: str, size: int, patch: int = PATCH_SIZE) -> tuple[int, int]:
    """``(width, height)`` after resizing: a multiple of the patch size ``p`` with the aspect ratio kept.

    ``crop``: width = size; ``pad``: the longer side = size. The other side is
    ``round(side * size / long / p) * p`` (Python rounding, as the original),
    but at least ``p``.
    """
    if mode == "pad" and height > width:
        return max(patch, round(width * (size / height) / patch) * patch), size
    return size, max(patch, round(height * (size / width) / patch) * patch)


def _aspect_crop(width: int, height: int) -> tuple[int, int, int, int]:
    """VGGT-Omega's centred crop of aspect ratios beyond 1:2: ``(left, top, kept width, kept height)``.

    ``a = height / width``; ``a < 0.5`` keeps ``min(W, max(1, round(H / 0.5)))``
    columns from ``(W - cw) // 2``, ``a > 2`` keeps ``min(H, max(1, round(2 W)))``
    rows from ``(H - ch) // 2`` (``round`` half to even, as Python's).
    """
    aspect = height / width
    if aspect < 0.5:
        kept = min(width, max(1, round(height / 0.5)))
        return (width - kept) // 2, 0, kept, height
    if aspect > 2:
        kept = min(height, max(1, round(width * 2)))
        return 0, (height - kept) // 2, width, kept
    return 0, 0, width, height


def _omega_size(width: int, height: int, mode: str, size: int, patch: int) -> tuple[int, int]:
    """``(width, height)`` of VGGT-Omega's ``balanced`` or ``max_size`` resize of a (cropped) image.

    ``balanced``: about ``T = (size / p)^2`` patches: ``w_p = sqrt(T / a)``,
    ``h_p = T / w_p`` (from the unrounded ``w_p``), each rounded, at least 1;
    the size is ``(p w_p, p h_p)``. ``max_size``: the longer side is ``size``,
    the other ``max(p, round(size * ratio / p) * p)``.
    """
    aspect = height / width
    if mode == "balanced":
        tokens = (size / patch) ** 2
        w_p = (tokens / aspect) ** 0.5
        h_p = tokens / w_p
        return patch * max(1, round(w_p)), patch * max(1, round(h_p))
    if aspect >= 1:
        return max(patch, round(size / aspect / patch) * patch), size
    return size, max(patch, round(size * aspect / patch) * patch)


def _process_one(image: Image.Image, mode: str, size: int, patch: int = PATCH_SIZE
                 ) -> tuple[np.ndarray, ImageTransform]:
    """Resize, then crop (``crop``) or pad to ``size x size`` (``pad``): ``[3, H, W]`` float32.

    ``balanced`` / ``max_size`` (VGGT-Omega): crop extreme aspect ratios, then resize; no crop or pad after.
    """
    width, height = image.size
    box = (0, 0, width, height)
    if mode in OMEGA_MODES:
        box = _aspect_crop(width, height)
        if box != (0, 0, width, height):
            image = image.crop((box[0], box[1], box[0] + box[2], box[1] + box[3]))
        new_width, new_height = _omega_size(box[2], box[3], mode, size, patch)
    else:
        new_width, new_height = _resized_size(width, height, mode, size, patch)
    resized = image.resize((new_width, new_height), Image.Resampling.BICUBIC)
    if resized.mode == "F":
        gray = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)  # [H, W]
        pixels = np.repeat(gray[None], 3, axis=0)  # [3, H, W]
    else:
        pixels = np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
    offset_x = offset_y = 0
    if mode == "crop" and new_height > size:
        offset_y = -((new_height - size) // 2)
        pixels = pixels[:, -offset_y : -offset_y + size]  # [3, size, W]
    elif mode == "pad":
        offset_y, offset_x = (size - new_height) // 2, (size - new_width) // 2
        pixels = _place(pixels, size, size, offset_y, offset_x)  # [3, size, size]
    model_height, model_width = pixels.shape[1:]
    crop = dict(crop_x=box[0], crop_y=box[1], crop_width=box[2], crop_height=box[3]) \
        if box != (0, 0, width, height) else {}
    transform = ImageTransform(width, height, new_width, new_height, offset_x, offset_y, model_width, model_height,
                               **crop)
    return pixels, transform


def _place(pixels: np.ndarray, height: int, width: int, top: int, left: int) -> np.ndarray:
    """Paste ``pixels [3, h, w]`` onto a white ``[3, height, width]`` canvas at (top, left)."""
    canvas = np.ones((3, height, width), dtype=np.float32)
    canvas[:, top : top + pixels.shape[1], left : left + pixels.shape[2]] = pixels
    return canvas


def _check_arguments(paths: Any, mode: str, size: int, patch: int = PATCH_SIZE) -> list[Path]:
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    paths = [Path(os.fspath(p)) for p in paths]
    if not paths:
        raise ValueError("paths is empty: at least one image path is required")
    _check_mode_and_size(mode, size, patch)
    return paths


def _check_mode_and_size(mode: str, size: int, patch: int = PATCH_SIZE) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(repr(m) for m in MODES)}, got {mode!r}")
    if isinstance(patch, bool) or not isinstance(patch, int) or patch <= 0:
        raise ValueError(f"patch_size must be a positive integer, got {patch!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % patch:
        raise ValueError(f"size must be a positive multiple of {patch} (the patch size), got {size!r}")


def preprocess_images(
    paths: Sequence[PathLike] | PathLike,
    mode: Literal["crop", "pad"] = "crop",
    size: int = 518,
    exif_transpose: bool = True,
    patch_size: int = PATCH_SIZE,
) -> PreprocessedImages:
    """Load image files into a model-ready batch, recording each image's geometry.

    Convention: RGB in [0, 1], ``[S, 3, H, W]``; H and W are multiples of
    ``patch_size`` (the model's ``config.patch_size``: 14 for VGGT-1B).
    ``crop``: width ``size``, height keeps the aspect ratio and is centre-cropped
    to ``size`` when taller. ``pad``: the longer side is ``size`` and the image is
    centred on a white ``size x size`` canvas. Images of different sizes are each
    centred on white to the largest H and W. Transparency is composited onto white.

    Args:
        paths: image files (a single path is accepted too).
        mode: ``"crop"`` or ``"pad"``.
        size: target width (crop) or longer side (pad); a positive multiple of ``patch_size``.
        exif_transpose: apply the EXIF orientation tag (as viewers do).

    Raises:
        ValueError: empty ``paths``, unknown ``mode``, bad ``size``.
        FileNotFoundError: a path does not exist.
        ImageLoadError: a file cannot be decoded as an image.
    """
    path_list = _check_arguments(paths, mode, size, patch_size)
    processed = []
    for path in path_list:
        image = _decode_colour(_open_image(path, exif_transpose), path)
        processed.append(_process_one(image, mode, size, patch_size))
    return _stack(processed, [str(p) for p in path_list])


def _stack(processed: list[tuple[np.ndarray, ImageTransform]], paths: list[str]) -> PreprocessedImages:
    """Centre each ``[3, h, w]`` image on white to the largest H and W, and stack: ``[S, 3, H, W]``."""
    max_height = max(pixels.shape[1] for pixels, _ in processed)
    max_width = max(pixels.shape[2] for pixels, _ in processed)
    batch, transforms = [], []
    for pixels, transform in processed:
        top, left = (max_height - pixels.shape[1]) // 2, (max_width - pixels.shape[2]) // 2
        if pixels.shape[1:] != (max_height, max_width):
            logger.debug("padding an image of %s to %dx%d", pixels.shape[1:], max_height, max_width)
            pixels = _place(pixels, max_height, max_width, top, left)
        batch.append(pixels)
        offsets = dict(offset_x=transform.offset_x + left, offset_y=transform.offset_y + top)
        transforms.append(replace(transform, **offsets, model_width=max_width, model_height=max_height))
    images = torch.from_numpy(np.stack(batch))  # [S, 3, H, W]
    return PreprocessedImages(images=images, transforms=transforms, paths=paths)


def load_images(
    paths: Sequence[PathLike] | PathLike,
    mode: Literal["crop", "pad"] = "crop",
    size: int = 518,
    exif_transpose: bool = True,
    patch_size: int = PATCH_SIZE,
) -> Tensor:
    """Load image files as a ``[S, 3, H, W]`` float32 RGB batch in [0, 1].

    Convention: as :func:`preprocess_images` (which also returns the per-image
    transforms back to original pixels).
    """
    return preprocess_images(paths, mode=mode, size=size, exif_transpose=exif_transpose, patch_size=patch_size).images


def open_image(path: PathLike, exif_transpose: bool = True) -> Image.Image:
    """Decode one image file the way :func:`preprocess_images` does, without resizing.

    Convention: EXIF orientation applied when ``exif_transpose`` (as viewers show
    the image); returns 8-bit ``RGB`` (transparency composited onto white), or
    ``F`` (grayscale in [0, 1]) for 16-bit and float images.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ImageLoadError: the file cannot be decoded as an image.
    """
    path = Path(os.fspath(path))
    return _decode_colour(_open_image(path, exif_transpose), path)


def preprocess_pil_images(
    images: Iterable[Image.Image],
    mode: Literal["crop", "pad"] = "crop",
    size: int = 518,
    names: Sequence[str] | None = None,
    patch_size: int = PATCH_SIZE,
) -> PreprocessedImages:
    """:func:`preprocess_images` for images already in memory (video frames, :func:`open_image` results).

    Convention: as :func:`preprocess_images`; ``images`` is consumed one image at
    a time (a generator keeps only one full-size image alive), in any PIL mode.
    ``names`` (default ``image_0000``, ...) fill :attr:`PreprocessedImages.paths`.

    Raises:
        ValueError: no images, unknown ``mode``, bad ``size``, or ``names`` of another length.
        ImageLoadError: an image cannot be converted to RGB.
    """
    _check_mode_and_size(mode, size, patch_size)
    processed, labels = [], []
    for index, image in enumerate(images):
        label = names[index] if names is not None and index < len(names) else f"image_{index:04d}"
        processed.append(_process_one(_decode_colour(image, Path(label)), mode, size, patch_size))
        labels.append(label)
    if not processed:
        raise ValueError("images is empty: at least one image is required")
    if names is not None and len(names) != len(labels):
        raise ValueError(f"got {len(names)} names for {len(labels)} images")
    return _stack(processed, labels)
