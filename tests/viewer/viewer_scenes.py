"""A reconstruction with known geometry, written by the real exporters, for the viewer tests.

Four 96x72 cameras (OpenCV axes) side by side along x, looking at a tilted
plane ``n . X = d``; depth is the exact ray-plane distance, confidence grows
from left (1) to right (10), images are a checkerboard tinted per frame, and
five tracks follow plane points through every frame.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

from vggt3d.io.images import ImageTransform
from vggt3d.result import Reconstruction, Tracks

W, H, S = 96, 72, 4
PLANE_N = np.array([0.25, -0.1, 1.0])
PLANE_D = 3.0
K = np.array([[80.0, 0, (W - 1) / 2], [0, 80.0, (H - 1) / 2], [0, 0, 1]])


def camera_centres() -> np.ndarray:
    return np.array([[0.3 * i, -0.05 * i, 0.0] for i in range(S)])


def plane_depth(centre: np.ndarray) -> np.ndarray:
    """``[H, W]`` camera z of the plane for a camera at ``centre`` with identity rotation."""
    u, v = np.meshgrid(np.arange(W, dtype=float), np.arange(H, dtype=float))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    return (PLANE_D - PLANE_N @ centre) / (rays @ PLANE_N)


def project(X: np.ndarray, centre: np.ndarray) -> np.ndarray:
    c = X - centre
    return np.stack([K[0, 0] * c[:, 0] / c[:, 2] + K[0, 2], K[1, 1] * c[:, 1] / c[:, 2] + K[1, 2]], -1)


def make_reconstruction(points_from: str = "depth") -> Reconstruction:
    centres = camera_centres()
    cams = np.tile(np.eye(4), (S, 1, 1))
    cams[:, :3, 3] = -centres  # identity rotation: t = -C
    depth = np.stack([plane_depth(c) for c in centres]).astype(np.float32)
    conf = np.broadcast_to(1.0 + 9.0 * np.arange(W) / (W - 1), (S, H, W)).astype(np.float32).copy()
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    checker = ((u // 12 + v // 12) % 2).astype(np.uint8)
    images = []
    for i in range(S):
        rgb = np.stack([60 + 150 * checker, 90 + 40 * i + 0 * checker, 200 - 120 * checker], -1).astype(np.uint8)
        images.append(rgb)
    colors = np.stack(images)
    pts, frame, uv = [], [], []
    for i, c in enumerate(centres):
        rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones(u.shape)], -1) * depth[i][..., None]
        pts.append((rays + c).reshape(-1, 3))
        frame.append(np.full(H * W, i, np.int32))
        uv.append(np.stack([u, v], -1).reshape(-1, 2).astype(float))
    points = np.concatenate(pts).astype(np.float32)
    n = len(points)
    query = np.array([[10.0, 10.0], [48.0, 36.0], [80.0, 60.0], [30.0, 50.0], [70.0, 20.0]])
    X = np.stack([centres[0] + np.array([(q[0] - K[0, 2]) / K[0, 0], (q[1] - K[1, 2]) / K[1, 1], 1.0])
                  * depth[0][int(q[1]), int(q[0])] for q in query])
    track_uv = np.stack([project(X, c) for c in centres])
    t = ImageTransform(W, H, W, H, 0, 0, W, H)
    return Reconstruction(
        image_names=[f"frame{i}.png" for i in range(S)], sources=["<memory>"] * S,
        image_sizes=np.array([[W, H]] * S), intrinsics=np.stack([K] * S), cam_from_world=cams, transforms=[t] * S,
        model_intrinsics=np.stack([K] * S), depth=depth, depth_conf=conf, model_colors=colors, points=points,
        colors=colors.reshape(-1, 3), point_conf=conf.reshape(-1), point_normals=np.zeros((n, 3), np.float32),
        point_spacing=np.full(n, 0.01, np.float32), point_frame=np.concatenate(frame), point_uv=np.concatenate(uv),
        tracks=Tracks(query, track_uv, np.ones((S, 5)), np.ones((S, 5))),
        info={"shared_camera": False, "weights": "synthetic", "mode": "crop", "model_size": [W, H],
              "points_from": points_from, "conf_cut": 1.0},
        image_data=[Image.fromarray(im) for im in images],
    )


def track_points() -> np.ndarray:
    """The true 3D points ``[5, 3]`` the tracks follow."""
    rec = make_reconstruction()
    q = rec.tracks.query_points
    return np.stack([np.array([(x - K[0, 2]) / K[0, 0], (y - K[1, 2]) / K[1, 1], 1.0]) * rec.depth[0][int(y), int(x)]
                     for x, y in q])


def tree_digest(root) -> str:
    """A hash of every path and file under ``root`` (to show that a folder was not modified)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file() and not p.is_symlink():
            h.update(p.read_bytes())
    return h.hexdigest()
