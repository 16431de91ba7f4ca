"""``transforms.json`` in the nerfstudio convention.

Conversion from vggt3d's cameras (OpenCV axes, pixel centres at integers):

- ``transform_matrix`` is camera-to-world with OpenGL/Blender camera axes (x right,
  y up, z backward): ``world_from_cam @ diag(1, -1, -1, 1)``, i.e. the camera's y
  and z columns negated. The world frame is unchanged (the first camera's frame);
  no re-centring or re-orientation is applied (``applied_transform`` is identity).
- Intrinsics per frame (``fl_x fl_y cx cy w h``) at original resolution, with
  ``cx, cy`` shifted by +0.5: nerfstudio, like COLMAP, puts pixel centres at
  half-integers. ``camera_model`` is ``OPENCV`` with zero distortion.
- ``file_path`` points to ``images/``; ``ply_file_path`` to ``points.ply`` (same world
  frame) when that is written too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vggt3d.result import Reconstruction

__all__ = ["OPENCV_TO_OPENGL", "write"]

#: Right-multiplying a camera-to-world matrix flips the camera's y and z axes (OpenCV <-> OpenGL).
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])


def write(rec: Reconstruction, root: Path) -> list[Path]:
    frames = []
    for i, (name, K, c2w) in enumerate(zip(rec.image_names, rec.intrinsics, rec.world_from_cam)):
        frames.append({
            "file_path": f"images/{name}",
            "transform_matrix": (c2w @ OPENCV_TO_OPENGL).tolist(),
            "fl_x": float(K[0, 0]), "fl_y": float(K[1, 1]),
            "cx": float(K[0, 2]) + 0.5, "cy": float(K[1, 2]) + 0.5,
            "w": int(rec.image_sizes[i, 0]), "h": int(rec.image_sizes[i, 1]),
        })
    data = {
        "camera_model": "OPENCV",
        "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0,
        "frames": frames,
        "applied_transform": np.eye(4)[:3].tolist(),
        "vggt3d_conventions": "transform_matrix = world_from_cam (OpenCV) @ diag(1,-1,-1,1); cx, cy = vggt3d "
                              "cx, cy + 0.5 (pixel centres at half-integers); world = first camera (OpenCV axes)",
    }
    if (root / "points.ply").is_file():  # written before this file when both are asked for
        data["ply_file_path"] = "points.ply"
    path = root / "transforms.json"
    path.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return [path]
