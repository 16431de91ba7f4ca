"""``images/``: the frames, at original resolution, under the names every other export uses.

Image files are copied byte for byte, except EXIF-rotated photos, which are
written upright (so their pixel size matches ``cameras.json``, COLMAP and
nerfstudio, which ignore EXIF). Video frames and in-memory images are PNG.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageOps

if TYPE_CHECKING:
    from vggt3d.result import Reconstruction

__all__ = ["write"]

log = logging.getLogger(__name__)
_ORIENTATION = 0x0112


def _copy_upright(source: Path, target: Path) -> None:
    with Image.open(source) as image:
        try:
            orientation = int(image.getexif().get(_ORIENTATION, 1))
        except Exception:  # noqa: BLE001 - unreadable EXIF: the loader ignored it too
            orientation = 1
        if orientation in (0, 1):
            shutil.copyfile(source, target)
            return
        upright = ImageOps.exif_transpose(image)
        options = {"quality": 95} if image.format == "JPEG" else {}
        upright.save(target, format=image.format, **options)


def write(rec: Reconstruction, root: Path) -> list[Path]:
    if len(rec.image_data) != rec.num_frames:
        log.warning("the reconstruction holds no image data; images/ is not written")
        return []
    folder = root / "images"
    folder.mkdir()
    written = []
    for name, data in zip(rec.image_names, rec.image_data):
        target = folder / name
        if isinstance(data, str | os.PathLike):
            _copy_upright(Path(data), target)
        else:
            image = data if data.mode in ("RGB", "RGBA", "L", "LA", "I;16", "P") else data.convert("RGB")
            image.save(target)
        written.append(target)
    return written
