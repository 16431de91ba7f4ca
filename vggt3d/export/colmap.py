"""``colmap/sparse/0/``: a COLMAP model in binary format, written with pycolmap.

- Cameras: ``PINHOLE`` (``fx fy cx cy``) at each image's original resolution, one
  per image, or one for all with ``shared_camera``. COLMAP puts pixel centres at
  half-integers, so ``cx, cy`` are vggt3d's plus 0.5 (and so are the keypoints).
- Images: one per frame, named as in ``images/``, posed with ``cam_from_world``
  (COLMAP uses the same OpenCV axes), each with a trivial rig and frame.
- Points3D: the confidence-filtered cloud (as ``points.ply``), each point with
  its colour and one observation: the pixel of its frame it was predicted at
  (its projection there), stored as that image's keypoint.
- ``colmap/images`` links to ``../images`` so the folder is ready for COLMAP-input
  tools (Gaussian-splatting trainers take ``-s colmap``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vggt3d.result import Reconstruction

__all__ = ["to_pycolmap", "write"]


def to_pycolmap(rec: Reconstruction):
    """The reconstruction as a ``pycolmap.Reconstruction`` (image ids and camera ids start at 1)."""
    import pycolmap

    out = pycolmap.Reconstruction()
    shared = bool(rec.info.get("shared_camera"))
    order = np.argsort(rec.point_frame, kind="stable")
    counts = np.bincount(rec.point_frame, minlength=rec.num_frames)
    starts = np.concatenate([[0], np.cumsum(counts)])
    for i in range(rec.num_frames):
        K = rec.intrinsics[i]
        camera_id = 1 if shared else i + 1
        if not shared or i == 0:
            width, height = (int(v) for v in rec.image_sizes[i])
            params = [K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5]
            camera = pycolmap.Camera(model="PINHOLE", width=width, height=height, params=params, camera_id=camera_id)
            out.add_camera_with_trivial_rig(camera)
        mine = order[starts[i]:starts[i + 1]]
        keypoints = rec.point_uv[mine].astype(np.float64).reshape(-1, 2) + 0.5
        image = pycolmap.Image(name=rec.image_names[i], keypoints=keypoints, camera_id=camera_id, image_id=i + 1)
        out.add_image_with_trivial_frame(image, pycolmap.Rigid3d(rec.cam_from_world[i, :3, :].astype(np.float64)))
    xyz = rec.points.astype(np.float64)
    colors = rec.colors.astype(np.uint8)
    for i in range(rec.num_frames):
        for k, p in enumerate(order[starts[i]:starts[i + 1]]):
            track = pycolmap.Track([pycolmap.TrackElement(i + 1, k)])
            out.add_point3D(xyz[p], track, colors[p])
    out.update_point_3d_errors()
    return out


def write(rec: Reconstruction, root: Path) -> list[Path]:
    sparse = root / "colmap" / "sparse" / "0"
    sparse.mkdir(parents=True)
    to_pycolmap(rec).write(str(sparse))
    if (root / "images").is_dir():
        with contextlib.suppress(OSError):
            os.symlink(os.path.join("..", "images"), root / "colmap" / "images", target_is_directory=True)
    return sorted(p for p in sparse.iterdir())
