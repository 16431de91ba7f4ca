"""``scene/``: the predictions as a vggt3d scene folder (:mod:`vggt3d.data.scene_folder`), readable as a dataset.

``scene/cameras.json`` (cameras at original resolution), ``scene/images/NAME.png``
(8-bit RGB PNG of each frame, upright; 16-bit and float images are scaled to
8 bits), ``scene/depths/NAME.npy`` (the depth at original resolution, 0 where
there is no prediction) and ``scene/masks/NAME.png`` (valid where the depth
is predicted and its confidence passes the point cloud's threshold).
Read it back with :func:`vggt3d.data.scene_folder.read_scene_folder`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from vggt3d.result import Reconstruction

__all__ = ["write"]


def _rgb8(data: Any) -> np.ndarray:
    """A frame's original pixels as uint8 ``[H, W, 3]`` (EXIF orientation applied)."""
    from vggt3d.io.images import open_image

    image = open_image(data) if isinstance(data, str | os.PathLike) else data
    if image.mode == "F":  # 16-bit or float grayscale, in [0, 1]
        gray = np.clip(np.round(np.asarray(image, np.float64) * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA", "P"):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def write(rec: Reconstruction, root: Path) -> list[Path]:
    from vggt3d.data.scene_folder import write_scene_folder

    if len(rec.image_data) != rec.num_frames:
        raise ValueError("the reconstruction holds no image data, which a scene folder needs")
    cut = float(rec.info.get("conf_cut", 0.0))
    depths = [rec.depth_at_original(i) for i in range(rec.num_frames)]
    masks = [(d > 0) & (rec.confidence_at_original(i) >= cut) for i, d in enumerate(depths)]
    names = [os.path.splitext(n)[0] + ".png" for n in rec.image_names]
    folder = write_scene_folder(root / "scene", [_rgb8(d) for d in rec.image_data], rec.cam_from_world,
                                rec.intrinsics, depths=depths, image_names=names, masks=masks)
    return sorted(p for p in folder.rglob("*") if p.is_file())
