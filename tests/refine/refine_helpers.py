"""Exact synthetic geometry for the refinement tests: real renders with their true cameras and depth."""

from __future__ import annotations

import numpy as np
from PIL import Image
from vggt3d.data import SyntheticConfig, SyntheticScenes

from vggt3d.io.images import ImageTransform
from vggt3d.pointcloud import content_mask, depth_points, point_cloud, select_points
from vggt3d.result import Reconstruction

H, W = 384, 512  # big enough for a few hundred SIFT tracks in the synthetic textures
FRAMES = 6


def make_scene():
    """A held-out synthetic scene: images ``[S, H, W, 3]`` uint8, ``cam_from_world [S, 4, 4]``, ``K``, depth."""
    ds = SyntheticScenes(SyntheticConfig(num_scenes=1, num_frames=FRAMES, image_size=(H, W), seed=1000))
    s = ds[0]
    cams = np.tile(np.eye(4), (FRAMES, 1, 1))
    cams[:, :3] = s["cam_from_world"].numpy().astype(np.float64)
    cams = cams @ np.linalg.inv(cams[0])  # world = first camera
    images = np.round(s["images"].numpy().transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    return {"images": images, "cam_from_world": cams, "K": s["intrinsics"].numpy().astype(np.float64),
            "depth": s["depths"].numpy().astype(np.float32)}


def exact_reconstruction(scene: dict, cam_from_world: np.ndarray | None = None, K: np.ndarray | None = None,
                         names: list[str] | None = None) -> Reconstruction:
    """A :class:`Reconstruction` as the model would give it if it were exact (or with the given cameras)."""
    S = len(scene["images"])
    cams = scene["cam_from_world"] if cam_from_world is None else cam_from_world
    K = scene["K"] if K is None else K
    t = ImageTransform(W, H, W, H, 0, 0, W, H)
    depth = scene["depth"]
    conf = np.where(depth > 0, 2.0, 0.0).astype(np.float32)
    world, valid = depth_points(depth, cams, K)
    valid &= content_mask([t] * S, H, W)
    keep, _, _ = select_points(world, conf, valid, 0.0, False, 5000, 0)
    cloud = point_cloud(world, valid, keep, cams, K, K, [t] * S)
    colors = scene["images"]
    return Reconstruction(
        image_names=names or [f"{i:03d}.png" for i in range(S)], sources=["<memory>"] * S,
        image_sizes=np.array([[W, H]] * S), intrinsics=K.copy(), cam_from_world=cams.copy(), transforms=[t] * S,
        model_intrinsics=K.copy(), depth=depth.copy(), depth_conf=conf, model_colors=colors,
        points=cloud["points"], colors=colors.reshape(-1, 3)[cloud["keep"]],
        point_conf=conf.reshape(-1)[cloud["keep"]], point_normals=cloud["normals"],
        point_spacing=cloud["spacing"].astype(np.float32), point_frame=cloud["frame"], point_uv=cloud["uv"],
        info={"shared_camera": False, "weights": "exact", "mode": "crop", "model_size": [W, H],
              "conf_threshold": 0.0, "conf_absolute": False, "max_points": 5000, "seed": 0},
        image_data=[Image.fromarray(im) for im in scene["images"]])


def perturb(cams: np.ndarray, degrees: float, fraction: float, seed: int = 0) -> np.ndarray:
    """Every camera but the first rotated by ``degrees`` about a random axis and moved by ``fraction`` of its distance."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    out = cams.copy()
    spread = np.linalg.norm(np.linalg.inv(cams)[:, :3, 3], axis=1).mean()
    for i in range(1, len(cams)):
        axis = rng.normal(size=3)
        out[i, :3, :3] = Rotation.from_rotvec(axis / np.linalg.norm(axis) * np.radians(degrees)).as_matrix() @ cams[i, :3, :3]
        step = rng.normal(size=3)
        out[i, :3, 3] += fraction * spread * step / np.linalg.norm(step)
    return out


def relative_rotation_errors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Degrees between the relative rotations of every pair of frames of ``a`` and ``b`` (gauge-free)."""
    errors = []
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            ra = a[j, :3, :3] @ a[i, :3, :3].T
            rb = b[j, :3, :3] @ b[i, :3, :3].T
            errors.append(np.degrees(np.arccos(np.clip((np.trace(ra @ rb.T) - 1) / 2, -1, 1))))
    return np.array(errors)
