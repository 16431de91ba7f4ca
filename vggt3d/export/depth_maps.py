"""``depth/`` and ``confidence/``: per frame a float32 ``.npy`` and a 16-bit PNG preview, at original resolution.

For frame ``images/NAME.ext``: ``depth/NAME.npy`` (camera z, float32,
``[height, width]`` of the original image) and ``depth/NAME.png`` (uint16 with
``depth = value * scale``); ``confidence/`` likewise. ``depth/index.json`` and
``confidence/index.json`` record each frame's files and ``scale`` (also in the
PNG's ``vggt3d:scale`` text chunk). 0 means no prediction (pixels cropped away by
``--mode crop``).

The model predicts at its input resolution; :func:`resample_to_original` samples
it at every original pixel centre through the exact crop/pad/resize mapping
(bilinear; for depth, nearest where the four neighbours differ by more than
10 %, so depth edges do not smear into "flying" points).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from vggt3d.io.images import ImageTransform

if TYPE_CHECKING:
    from vggt3d.result import Reconstruction

__all__ = ["resample_to_original", "write", "write_map"]

EDGE_RATIO = 1.1


def _axis(n_orig: int, scale: float, offset: int, lo: int, hi: int):
    """Model sample positions of original pixel centres along one axis: indices, weights and validity."""
    m = (np.arange(n_orig) + 0.5) * scale - 0.5 + offset  # model coordinate of each original pixel centre
    valid = (m >= lo - 0.5) & (m <= hi - 0.5)
    m = np.clip(m, lo, hi - 1)
    i0 = np.floor(m).astype(np.int64)
    i1 = np.minimum(i0 + 1, hi - 1)
    return i0, i1, (m - i0).astype(np.float32), valid


def resample_to_original(values: np.ndarray, transform: ImageTransform, edge_aware: bool = False) -> np.ndarray:
    """Sample a model-resolution map ``[H, W]`` at every original pixel: ``[height, width]`` float32.

    Convention: pixel centres at integers; original pixels outside the model
    input's image content (cropped away) are 0.
    """
    x0, y0, x1, y1 = transform.content_box_xyxy
    ix0, ix1, wx, vx = _axis(transform.original_width, transform.scale_x, transform.offset_x, x0, x1)
    iy0, iy1, wy, vy = _axis(transform.original_height, transform.scale_y, transform.offset_y, y0, y1)
    v = np.asarray(values, dtype=np.float32)
    a, b = v[np.ix_(iy0, ix0)], v[np.ix_(iy0, ix1)]
    c, d = v[np.ix_(iy1, ix0)], v[np.ix_(iy1, ix1)]
    wx, wy = wx[None, :], wy[:, None]
    out = (a * (1 - wx) + b * wx) * (1 - wy) + (c * (1 - wx) + d * wx) * wy
    if edge_aware:
        lo = np.minimum(np.minimum(a, b), np.minimum(c, d))
        hi = np.maximum(np.maximum(a, b), np.maximum(c, d))
        nearest = np.where(wy < 0.5, np.where(wx < 0.5, a, b), np.where(wx < 0.5, c, d))
        out = np.where((hi > EDGE_RATIO * lo) | (lo <= 0), nearest, out)
    out[~vy, :] = 0.0
    out[:, ~vx] = 0.0
    return out.astype(np.float32)


def write_map(values: np.ndarray, stem_path: Path) -> tuple[Path, Path, float]:
    """Write ``values`` as ``.npy`` (float32) and a 16-bit ``.png`` preview; returns the paths and the PNG scale."""
    values = np.asarray(values, dtype=np.float32)
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size else 0.0
    scale = top / 65535.0 if top > 0 else 1.0
    npy, png = stem_path.with_suffix(".npy"), stem_path.with_suffix(".png")
    np.save(npy, values)
    quantised = np.clip(np.round(np.nan_to_num(values, nan=0.0, posinf=top) / scale), 0, 65535).astype(np.uint16)
    meta = PngInfo()
    meta.add_text("vggt3d:scale", repr(scale))
    meta.add_text("vggt3d:meaning", "value * scale; 0 = no prediction")
    Image.fromarray(quantised).save(png, pnginfo=meta)
    return npy, png, scale


def write(rec: Reconstruction, root: Path) -> list[Path]:
    written: list[Path] = []
    for kind, sample in (("depth", rec.depth_at_original), ("confidence", rec.confidence_at_original)):
        folder = root / kind
        folder.mkdir()
        index = []
        for i, name in enumerate(rec.image_names):
            stem = os.path.splitext(name)[0]
            npy, png, scale = write_map(sample(i), folder / stem)
            written += [npy, png]
            index.append({"image": f"images/{name}", "npy": f"{kind}/{npy.name}", "png": f"{kind}/{png.name}",
                          "scale": scale, "width": int(rec.image_sizes[i, 0]), "height": int(rec.image_sizes[i, 1])})
        meaning = ("camera z (distance along the optical axis) in scene units" if kind == "depth"
                   else "depth confidence (>= 1, higher is more confident)")
        data = {"meaning": meaning, "png_to_value": "value = png * scale", "invalid": 0, "frames": index}
        (folder / "index.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        written.append(folder / "index.json")
    return written
