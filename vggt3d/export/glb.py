"""``scene.glb``: the point cloud and one frustum per camera, for any glTF viewer (written with trimesh).

glTF is Y-up with cameras looking along -Z, so the scene is turned from
vggt3d's world (OpenCV axes of the first camera: y down, z forward) by
``diag(1, -1, -1)``: a glb point is ``(x, -y, -z)`` of the same point in
``points.ply``. Frustums are pyramids from each camera centre to its image
corners at a depth of 5 % of the scene's extent, coloured from red (first
frame) through the hues to violet (last), drawn double-sided.
"""

from __future__ import annotations

import colorsys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vggt3d.result import Reconstruction

__all__ = ["OPENCV_TO_GLTF", "frustum_mesh", "write"]

OPENCV_TO_GLTF = np.diag([1.0, -1.0, -1.0])


def _scene_extent(points: np.ndarray, centres: np.ndarray) -> float:
    everything = np.concatenate([points.reshape(-1, 3), centres.reshape(-1, 3)]).astype(np.float64)
    everything = everything[np.isfinite(everything).all(axis=1)]
    if len(everything) < 2:
        return 1.0
    lo, hi = np.percentile(everything, 2, axis=0), np.percentile(everything, 98, axis=0)
    extent = float(np.linalg.norm(hi - lo))
    return extent if extent > 0 else 1.0


def frustum_mesh(K: np.ndarray, world_from_cam: np.ndarray, width: int, height: int, depth: float):
    """Vertices ``[5, 3]`` (centre, then the four image corners at ``depth``) and double-sided faces ``[8, 3]``."""
    corners = np.array([[-0.5, -0.5], [width - 0.5, -0.5], [width - 0.5, height - 0.5], [-0.5, height - 0.5]])
    rays = np.linalg.solve(K, np.concatenate([corners, np.ones((4, 1))], axis=1).T).T  # [4, 3], z = 1
    cam = np.concatenate([np.zeros((1, 3)), rays * depth])  # [5, 3] camera coordinates
    world = cam @ world_from_cam[:3, :3].T + world_from_cam[:3, 3]
    sides = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]])
    return world, np.concatenate([sides, sides[:, ::-1]])


def write(rec: Reconstruction, root: Path) -> list[Path]:
    import trimesh

    world_from_cam = rec.world_from_cam
    size = 0.05 * _scene_extent(rec.points, world_from_cam[:, :3, 3])
    scene = trimesh.Scene()
    if len(rec.points):
        colors = np.concatenate([rec.colors, np.full((len(rec.colors), 1), 255, np.uint8)], axis=1)
        scene.add_geometry(trimesh.PointCloud(rec.points.astype(np.float64) @ OPENCV_TO_GLTF, colors=colors),
                           geom_name="points")
    for i in range(rec.num_frames):
        vertices, faces = frustum_mesh(rec.intrinsics[i], world_from_cam[i], int(rec.image_sizes[i, 0]),
                                       int(rec.image_sizes[i, 1]), size)
        hue = 0.8 * i / max(rec.num_frames - 1, 1)
        rgb = np.array([*(int(round(255 * c)) for c in colorsys.hsv_to_rgb(hue, 0.9, 0.95)), 255], np.uint8)
        mesh = trimesh.Trimesh(vertices @ OPENCV_TO_GLTF, faces, process=False,
                               face_colors=np.tile(rgb, (len(faces), 1)))
        scene.add_geometry(mesh, geom_name=f"camera_{i:04d}")
    path = root / "scene.glb"
    scene.export(str(path), file_type="glb")
    return [path]
