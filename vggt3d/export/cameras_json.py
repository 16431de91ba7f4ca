"""``cameras.json``: every frame's image, size, intrinsics and pose, with the conventions in the file.

Layout::

    {"format": "vggt3d.cameras", "version": 1,
     "conventions": {...plain-language statements...},
     "model": {"weights", "input_size", "mode", ...},
     "frames": [{"index", "image", "source", "width", "height",
                 "K", "cam_from_world", "world_from_cam",
                 "fx", "fy", "cx", "cy", "model_to_original", ("timestamp", "video_frame")}]}

``K`` is 3x3 and the poses 4x4, nested lists (row-major).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from vggt3d.result import Reconstruction

__all__ = ["CONVENTIONS", "camera_records", "write"]

CONVENTIONS = {
    "cam_from_world": "4x4 row-major [R t; 0 0 0 1] with X_cam = R @ X_world + t; world_from_cam is its inverse",
    "camera_axes": "OpenCV: x right, y down, z forward (looking direction)",
    "world": "the camera frame of the first frame (index 0)",
    "K": "[[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels of the original image (width x height, after EXIF "
         "orientation), undistorted pinhole",
    "pixels": "pixel centres at integer coordinates: (0, 0) is the centre of the top-left pixel, u = column, "
              "v = row. COLMAP and nerfstudio put it at (0.5, 0.5), so their cx, cy are 0.5 larger",
    "units": "the model's scene units (no metric scale); depth maps are camera z in the same units",
    "model_to_original": "u_model = (u + 0.5) * scale_x - 0.5 + offset_x (v likewise): where the original image "
                         "sits in the model input (resize, then crop or pad)",
}


def _matrix(m: np.ndarray) -> list[list[float]]:
    return [[float(x) for x in row] for row in np.asarray(m)]


def camera_records(rec: Reconstruction) -> list[dict[str, Any]]:
    """Per-frame dictionaries as written to ``cameras.json``."""
    world_from_cam = rec.world_from_cam
    records = []
    for i, name in enumerate(rec.image_names):
        K = rec.intrinsics[i]
        r = {"index": i, "image": f"images/{name}", "source": rec.sources[i],
             "width": int(rec.image_sizes[i, 0]), "height": int(rec.image_sizes[i, 1]),
             "K": _matrix(K), "cam_from_world": _matrix(rec.cam_from_world[i]),
             "world_from_cam": _matrix(world_from_cam[i]),
             "fx": float(K[0, 0]), "fy": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2]),
             "model_to_original": rec.transforms[i].to_dict()}
        if rec.timestamps is not None:
            r["timestamp"] = float(rec.timestamps[i])
        if rec.frame_indices is not None:
            r["video_frame"] = int(rec.frame_indices[i])
        records.append(r)
    return records


def write(rec: Reconstruction, root: Path) -> list[Path]:
    info = rec.info
    data = {
        "format": "vggt3d.cameras",
        "version": 1,
        "conventions": CONVENTIONS,
        "model": {k: info[k] for k in ("weights", "mode", "dtype", "points_from", "shared_camera", "input")
                  if k in info} | {"input_size": info.get("model_size")},
        "frames": camera_records(rec),
    }
    path = root / "cameras.json"
    path.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return [path]
