"""``colmap/sparse/0/`` + ``colmap/images/``: a COLMAP model (binary, written with pycolmap) ready for splatting.

- Cameras: ``PINHOLE`` (``fx fy cx cy``) at each image's original resolution, one
  per image, or one for all with ``shared_camera``. COLMAP puts pixel centres at
  half-integers, so ``cx, cy`` are vggt3d's plus 0.5 (and so are the keypoints).
  When refinement estimated lens distortion the images were undistorted first
  (:mod:`vggt3d.refine.undistort`), so the cameras stay ``PINHOLE``.
- Images: one per frame, named as in ``images/``, posed with ``cam_from_world``
  (COLMAP uses the same OpenCV axes), each with a trivial rig and frame.
- Points3D, first the multi-view tracks when the reconstruction has them
  (``--tracks-from``/``--refine``): each point with an observation in every frame
  that sees it (track length >= 2), the evidence bundle adjusters need; then the
  confidence-filtered dense cloud (as ``points.ply``), each point with its colour
  and one observation, the pixel of its frame it was predicted at (a dense
  initialisation for Gaussian splatting; tools that refine can drop track length 1).
- ``colmap/images/`` holds the frames (hard links to ``images/`` where the file
  system allows, else copies), so ``colmap/`` is the layout gsplat, nerfstudio
  (``colmap`` data parser) and the original 3DGS (``-s colmap``) read directly.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vggt3d.result import Reconstruction

__all__ = ["to_pycolmap", "write"]


def _keypoints(rec: Reconstruction) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Per frame its keypoints ``[M_i, 2]`` (COLMAP pixels); for the track rows and the dense points their index."""
    S = rec.num_frames
    tp = rec.track_points
    per_frame: list[list[np.ndarray]] = [[] for _ in range(S)]
    counts = np.zeros(S, dtype=np.int64)
    track_kp = np.zeros(0, dtype=np.int64)
    if tp is not None and len(tp.track):
        track_kp = np.zeros(len(tp.track), dtype=np.int64)
        for i in range(S):
            rows = np.flatnonzero(tp.frame == i)
            track_kp[rows] = np.arange(len(rows))
            per_frame[i].append(tp.uv[rows])
            counts[i] = len(rows)
    dense_kp = np.zeros(len(rec.point_frame), dtype=np.int64)
    for i in range(S):
        rows = np.flatnonzero(rec.point_frame == i)
        dense_kp[rows] = counts[i] + np.arange(len(rows))
        per_frame[i].append(rec.point_uv[rows].astype(np.float64).reshape(-1, 2))
    keypoints = [np.concatenate(parts).reshape(-1, 2) + 0.5 for parts in per_frame]
    return keypoints, track_kp, dense_kp, counts


def to_pycolmap(rec: Reconstruction):
    """The reconstruction as a ``pycolmap.Reconstruction`` (image ids and camera ids start at 1)."""
    import pycolmap

    out = pycolmap.Reconstruction()
    shared = bool(rec.info.get("shared_camera"))
    keypoints, track_kp, dense_kp, _ = _keypoints(rec)
    for i in range(rec.num_frames):
        K = rec.intrinsics[i]
        camera_id = 1 if shared else i + 1
        if not shared or i == 0:
            width, height = (int(v) for v in rec.image_sizes[i])
            params = [K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5]
            camera = pycolmap.Camera(model="PINHOLE", width=width, height=height, params=params, camera_id=camera_id)
            out.add_camera_with_trivial_rig(camera)
        image = pycolmap.Image(name=rec.image_names[i], keypoints=keypoints[i], camera_id=camera_id, image_id=i + 1)
        out.add_image_with_trivial_frame(image, pycolmap.Rigid3d(rec.cam_from_world[i, :3, :].astype(np.float64)))
    tp = rec.track_points
    if tp is not None and len(tp.track):
        by_track = np.argsort(tp.track, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(tp.track, minlength=len(tp.points)))])
        for t in range(len(tp.points)):
            rows = by_track[starts[t]:starts[t + 1]]
            track = pycolmap.Track([pycolmap.TrackElement(int(tp.frame[r]) + 1, int(track_kp[r])) for r in rows])
            out.add_point3D(tp.points[t].astype(np.float64), track, tp.colors[t].astype(np.uint8))
    xyz = rec.points.astype(np.float64)
    colors = rec.colors.astype(np.uint8)
    for p in range(len(xyz)):
        track = pycolmap.Track([pycolmap.TrackElement(int(rec.point_frame[p]) + 1, int(dense_kp[p]))])
        out.add_point3D(xyz[p], track, colors[p])
    out.update_point_3d_errors()
    return out


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def write(rec: Reconstruction, root: Path) -> list[Path]:
    sparse = root / "colmap" / "sparse" / "0"
    sparse.mkdir(parents=True)
    to_pycolmap(rec).write(str(sparse))
    written = sorted(p for p in sparse.iterdir())
    if (root / "images").is_dir():  # written before this format when both are asked for
        folder = root / "colmap" / "images"
        folder.mkdir()
        for name in rec.image_names:
            if (root / "images" / name).is_file():
                _link_or_copy(root / "images" / name, folder / name)
                written.append(folder / name)
    return written
