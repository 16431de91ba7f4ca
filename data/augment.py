"""Training-time processing of multi-view frames (TRAINING.md section 2.2, our own code).

Per sample: a target size ``(H_t, W_t)`` shared by the batch; per frame a random
crop centred on the principal point, a resize with a random margin and a strict
crop to the target around the principal point, with the intrinsics updated
exactly; then colour jitter, shared by all frames or drawn per frame.

Convention: intrinsics in pixels with pixel centres at integers. An integer
crop at ``(x0, y0)`` maps ``c -> c - (x0, y0)``; a resize by ``s = new / old`` (per
axis, exact) maps ``f -> f s`` and ``c -> (c + 0.5) s - 0.5``. Depth and masks are
resampled with the nearest source pixel centre, images with LANCZOS (down) or
BICUBIC (up). Extrinsics never change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .views import View

__all__ = ["AugmentConfig", "CropPlan", "MultiViewAugment", "color_jitter", "target_size_for_aspect"]

#: default patch size (VGGT-1B); callers pass the model's ``config.patch_size`` (16 for VGGT-Omega)
PATCH_SIZE = 14


@dataclass
class AugmentConfig:
    """Settings of :class:`MultiViewAugment`; defaults are TRAINING.md's training values.

    ``train=False`` gives the validation behaviour: aspect 1, no random crop, the
    minimal resize margin, no colour jitter.
    """

    train: bool = True
    aspect_range: tuple[float, float] = (0.33, 1.0)  # H / W, drawn once per batch
    crop_scale_range: tuple[float, float] = (0.8, 1.2)  # per axis, capped at 1
    resize_margin_max: float = 0.3  # r ~ Triangular(0, 0, max), margin = 4 + r * W_t pixels
    color_jitter_prob: float = 0.9
    brightness: float = 0.5
    contrast: float = 0.5
    saturation: float = 0.5
    hue: float = 0.1
    grayscale_prob: float = 0.05
    shared_color_prob: float = 0.7  # one jitter draw for the whole sample, else one per frame

    def __post_init__(self) -> None:
        lo, hi = self.aspect_range
        if not 0 < lo <= hi:
            raise ValueError(f"aspect_range must satisfy 0 < lo <= hi, got {self.aspect_range}")
        lo, hi = self.crop_scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"crop_scale_range must satisfy 0 < lo <= hi, got {self.crop_scale_range}")
        for name in ("color_jitter_prob", "grayscale_prob", "shared_color_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {self.hue}")


def target_size_for_aspect(width: int, aspect: float, patch_size: int = PATCH_SIZE) -> tuple[int, int]:
    """``(H_t, W_t)`` for a target width and aspect ``H / W``: ``H_t = floor(int(W a) / p) * p``, ``p = patch_size``."""
    height = max(patch_size, int(width * aspect) // patch_size * patch_size)
    return height, width


@dataclass(frozen=True)
class CropPlan:
    """How one frame becomes an ``output_size`` frame: crop, resize, crop (pad if short).

    Convention: ``crop_xywh`` is the first, integer crop in source pixels;
    ``resized_size`` the ``(h, w)`` after resizing that crop; ``final_xy`` the
    top-left of the output window in resized pixels; ``intrinsics`` ``[3, 3]`` the
    exact output intrinsics (pixel centres at integers).
    """

    crop_xywh: tuple[int, int, int, int]
    resized_size: tuple[int, int]
    final_xy: tuple[int, int]
    output_size: tuple[int, int]
    intrinsics: np.ndarray

    @property
    def scale_xy(self) -> tuple[float, float]:
        """Exact resize factors ``(s_x, s_y) = resized / cropped`` per axis."""
        return self.resized_size[1] / self.crop_xywh[2], self.resized_size[0] / self.crop_xywh[3]

    def source_to_output(self, uv: np.ndarray) -> np.ndarray:
        """Map source pixel positions ``uv [..., 2]`` (x, y) to output pixels (centres at integers)."""
        sx, sy = self.scale_xy
        x0, y0 = self.crop_xywh[:2]
        fx0, fy0 = self.final_xy
        u = (uv[..., 0] - x0 + 0.5) * sx - 0.5 - fx0
        v = (uv[..., 1] - y0 + 0.5) * sy - 0.5 - fy0
        return np.stack([u, v], axis=-1)


def _centred_start(centre: float, window: int, size: int) -> int:
    """Start of a ``window``-pixel span centred on ``centre`` (pixel centres at integers), kept inside ``size``."""
    start = int(round(centre - (window - 1) / 2.0))
    return min(max(start, 0), max(size - window, 0))


def _crop_resize_intrinsics(intrinsics: np.ndarray, crop_xy: tuple[int, int], scale_xy: tuple[float, float],
                            final_xy: tuple[int, int]) -> np.ndarray:
    """Apply crop -> resize -> crop to ``intrinsics [3, 3]`` (pixel centres at integers)."""
    k = np.array(intrinsics, dtype=np.float64)
    k[0, 2] -= crop_xy[0]
    k[1, 2] -= crop_xy[1]
    for axis, s in enumerate(scale_xy):
        k[axis, axis] *= s
        k[axis, 2] = (k[axis, 2] + 0.5) * s - 0.5
    k[0, 2] -= final_xy[0]
    k[1, 2] -= final_xy[1]
    return k


class MultiViewAugment:
    """Crop, resize and colour processing of the frames of one sample (TRAINING.md 2.2)."""

    def __init__(self, config: AugmentConfig | None = None) -> None:
        self.config = config or AugmentConfig()

    @property
    def train(self) -> bool:
        return self.config.train

    def draw_aspect(self, rng: np.random.Generator) -> float:
        """Aspect ``H / W`` for a batch: uniform in ``aspect_range`` rounded to 2 decimals (1 when not training)."""
        if not self.train:
            return 1.0
        return round(float(rng.uniform(*self.config.aspect_range)), 2)

    def plan(self, intrinsics: np.ndarray, size_hw: tuple[int, int], output_size: tuple[int, int],
             rng: np.random.Generator | None) -> CropPlan:
        """Decide the crop/resize of one frame of size ``size_hw`` with ``intrinsics [3, 3]``.

        Training draws the crop scales and the resize margin from ``rng``; validation
        (or ``rng=None``) crops nothing and uses the minimal margin of 4 pixels.
        """
        height, width = size_hw
        out_h, out_w = output_size
        cx, cy = float(intrinsics[0, 2]), float(intrinsics[1, 2])
        random = self.train and rng is not None
        if random:
            lo, hi = self.config.crop_scale_range
            s_h, s_w = (min(float(rng.uniform(lo, hi)), 1.0) for _ in range(2))
            crop_h, crop_w = max(1, int(height * s_h)), max(1, int(width * s_w))
            r = float(rng.triangular(0.0, 0.0, self.config.resize_margin_max)) if self.config.resize_margin_max else 0.0
        else:
            crop_h, crop_w, r = height, width, 0.0
        x0, y0 = _centred_start(cx, crop_w, width), _centred_start(cy, crop_h, height)
        margin = 4.0 + r * out_w
        sigma = max((out_h + margin) / crop_h, (out_w + margin) / crop_w)
        resized_h, resized_w = max(1, math.floor(crop_h * sigma)), max(1, math.floor(crop_w * sigma))
        scale = (resized_w / crop_w, resized_h / crop_h)
        cx_r, cy_r = (cx - x0 + 0.5) * scale[0] - 0.5, (cy - y0 + 0.5) * scale[1] - 0.5
        final = (_centred_start(cx_r, out_w, resized_w), _centred_start(cy_r, out_h, resized_h))
        k = _crop_resize_intrinsics(intrinsics, (x0, y0), scale, final)
        return CropPlan((x0, y0, crop_w, crop_h), (resized_h, resized_w), final, (out_h, out_w), k)

    @staticmethod
    def apply(view: View, plan: CropPlan) -> View:
        """Resample ``view`` by ``plan``: image LANCZOS/BICUBIC, depth and mask nearest, pad with 0 (invalid)."""
        x0, y0, crop_w, crop_h = plan.crop_xywh
        resized_h, resized_w = plan.resized_size
        fx0, fy0 = plan.final_xy
        out_h, out_w = plan.output_size
        image = Image.fromarray(view.image).crop((x0, y0, x0 + crop_w, y0 + crop_h))
        downscale = resized_w * resized_h < crop_w * crop_h
        resample = Image.Resampling.LANCZOS if downscale else Image.Resampling.BICUBIC
        image = image.resize((resized_w, resized_h), resample).crop((fx0, fy0, fx0 + out_w, fy0 + out_h))
        # Nearest source pixel centre for each output pixel; -1 marks padding.
        cols = np.arange(out_w) + fx0  # [W_t] resized x
        rows = np.arange(out_h) + fy0  # [H_t] resized y
        src_cols = np.where(cols < resized_w, np.minimum((cols + 0.5) * crop_w // resized_w, crop_w - 1) + x0, -1)
        src_rows = np.where(rows < resized_h, np.minimum((rows + 0.5) * crop_h // resized_h, crop_h - 1) + y0, -1)
        src_cols, src_rows = src_cols.astype(np.int64), src_rows.astype(np.int64)
        inside = (src_rows[:, None] >= 0) & (src_cols[None, :] >= 0)  # [H_t, W_t]
        grid = np.ix_(np.maximum(src_rows, 0), np.maximum(src_cols, 0))
        depth = np.where(inside, view.depth[grid], 0.0).astype(np.float32)
        mask = inside if view.mask is None else inside & view.mask[grid]
        return View(image=np.asarray(image, dtype=np.uint8), depth=depth, intrinsics=plan.intrinsics,
                    cam_from_world=view.cam_from_world, frame_id=view.frame_id, mask=mask,
                    original_size=view.original_size)

    def process(self, views: Sequence[View], output_size: tuple[int, int], rng: np.random.Generator | None
                ) -> list[View]:
        """Plan and apply the crop/resize of every view to ``output_size`` ``(H_t, W_t)``."""
        return [self.apply(v, self.plan(v.intrinsics, v.size, output_size, rng)) for v in views]

    def color(self, images: Tensor, rng: np.random.Generator | None) -> Tensor:
        """Colour jitter of ``images [S, 3, H, W]`` in [0, 1] (identity when not training)."""
        if not self.train or rng is None:
            return images
        c = self.config
        shared = rng.random() < c.shared_color_prob
        draws = [self._draw_jitter(rng)] if shared else [self._draw_jitter(rng) for _ in range(images.shape[0])]
        out = torch.empty_like(images)
        for i in range(images.shape[0]):
            out[i] = color_jitter(images[i], **draws[0 if shared else i])
        return out

    def _draw_jitter(self, rng: np.random.Generator) -> dict:
        c = self.config
        params: dict = {"order": [], "grayscale": bool(rng.random() < c.grayscale_prob)}
        if rng.random() < c.color_jitter_prob:
            params["order"] = [int(i) for i in rng.permutation(4)]
            params["brightness"] = float(rng.uniform(max(0.0, 1 - c.brightness), 1 + c.brightness))
            params["contrast"] = float(rng.uniform(max(0.0, 1 - c.contrast), 1 + c.contrast))
            params["saturation"] = float(rng.uniform(max(0.0, 1 - c.saturation), 1 + c.saturation))
            params["hue"] = float(rng.uniform(-c.hue, c.hue))
        return params


_GREY = (0.299, 0.587, 0.114)


def _grey(image: Tensor) -> Tensor:
    """``[1, H, W]`` luma of ``image [3, H, W]``."""
    return (_GREY[0] * image[0] + _GREY[1] * image[1] + _GREY[2] * image[2]).unsqueeze(0)


def _shift_hue(image: Tensor, shift: float) -> Tensor:
    """Rotate the hue of ``image [3, H, W]`` by ``shift`` turns (RGB -> HSV -> RGB)."""
    r, g, b = image
    maxc, _ = image.max(0)
    minc, _ = image.min(0)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(maxc == r, ((g - b) / safe) % 6, torch.where(maxc == g, (b - r) / safe + 2, (r - g) / safe + 4))
    h = torch.where(delta > 0, h, torch.zeros_like(h)) + 6.0 * shift  # hue in sixths of a turn
    chroma = delta  # = v * s
    # HSV -> RGB without branches: channel n is v - chroma * clamp(min(k, 4 - k), 0, 1), k = (n + h) mod 6.
    out = []
    for n in (5.0, 3.0, 1.0):
        k = (h + n) % 6.0
        out.append(maxc - chroma * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0))
    return torch.stack(out)


def color_jitter(image: Tensor, order: Sequence[int] = (), brightness: float = 1.0, contrast: float = 1.0,
                 saturation: float = 1.0, hue: float = 0.0, grayscale: bool = False) -> Tensor:
    """Brightness, contrast, saturation and hue changes of ``image [3, H, W]`` in [0, 1], then optional grey.

    Convention: ``order`` lists the operations 0 brightness, 1 contrast, 2 saturation,
    3 hue (as torchvision's ColorJitter applies them in random order); factors of
    1 and a hue shift of 0 change nothing; the result is clamped to [0, 1].
    """
    for op in order:
        if op == 0:
            image = (image * brightness).clamp(0, 1)
        elif op == 1:
            mean = _grey(image).mean()
            image = ((image - mean) * contrast + mean).clamp(0, 1)
        elif op == 2:
            grey = _grey(image)
            image = ((image - grey) * saturation + grey).clamp(0, 1)
        elif op == 3 and hue != 0.0:
            image = _shift_hue(image, hue).clamp(0, 1)
    if grayscale:
        image = _grey(image).expand(3, -1, -1).clone()
    return image
