"""Exact synthetic long trajectories and simulated chunk predictions, for tests and benchmarks of the alignment.

A trajectory is a camera path inside an axis-aligned box (a corridor, or a
room walked around once so that it returns to its start); every frame's
point map is ray-cast against the box walls exactly. :func:`simulate_chunks`
turns ground truth into what a model would predict per chunk: each chunk in its
own random Sim(3) frame, with a per-chunk drift that grows along the chunk
(rotation, scale and translation), depth noise, and low-confidence outliers.

Convention: ``cam_from_world`` 4x4 with OpenCV axes (x right, y down, z
forward); the world's y axis points down (the floor is at ``+y``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from .align import ChunkGeometry
from .chunks import Chunk
from .sim3 import Sim3

__all__ = ["Trajectory", "corridor", "room_loop", "simulate_chunks"]


@dataclass
class Trajectory:
    """Ground truth: cameras ``[T, 4, 4]``, intrinsics ``[3, 3]``, point maps ``[T, H, W, 3]``, the box walls."""

    cam_from_world: np.ndarray
    intrinsics: np.ndarray
    points: np.ndarray
    box: tuple[np.ndarray, np.ndarray]

    @property
    def centres(self) -> np.ndarray:
        """Camera centres ``[T, 3]`` (``-R^T t``)."""
        return -np.einsum("tji,tj->ti", self.cam_from_world[:, :3, :3], self.cam_from_world[:, :3, 3])

    @property
    def path_length(self) -> float:
        return float(np.linalg.norm(np.diff(self.centres, axis=0), axis=1).sum())


def _look(centre: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """``cam_from_world`` of a camera at ``centre`` looking along ``forward`` with world +y as "down"."""
    f = forward / np.linalg.norm(forward)
    down = np.array([0.0, 1.0, 0.0])
    down = down - (down @ f) * f
    down /= np.linalg.norm(down)
    right = np.cross(down, f)
    R = np.stack([right, down, f])  # rows: camera axes in world coordinates
    cam = np.eye(4)
    cam[:3, :3] = R
    cam[:3, 3] = -R @ centre
    return cam


def _raycast(cams: np.ndarray, K: np.ndarray, H: int, W: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """World points where each pixel's ray from inside the box hits a wall: ``[T, H, W, 3]``."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    rays_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)  # [H, W, 3]
    out = np.empty((len(cams), H, W, 3))
    for k, cam in enumerate(cams):
        R, t = cam[:3, :3], cam[:3, 3]
        c = -R.T @ t
        d = rays_cam @ R  # world directions (R^T d_cam)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_hi = np.where(d > 0, (hi - c) / d, np.inf)
            t_lo = np.where(d < 0, (lo - c) / d, np.inf)
        s = np.minimum(t_hi, t_lo).min(axis=-1)
        out[k] = c + s[..., None] * d
    return out


def _intrinsics(H: int, W: int, fov_deg: float) -> np.ndarray:
    f = 0.5 * W / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0, (W - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1.0]])


def corridor(num_frames: int = 300, length: float = 30.0, H: int = 24, W: int = 32) -> Trajectory:
    """A walk along a 3 m wide corridor (+z), swaying sideways and turning the head a little."""
    s = np.linspace(0.0, length, num_frames)
    centres = np.stack([0.4 * np.sin(s / 3.0), 0.1 * np.sin(s / 1.7), s], axis=1)
    yaw = 0.25 * np.sin(s / 2.3)
    forwards = np.stack([np.sin(yaw), 0.05 * np.cos(s / 4.0), np.cos(yaw)], axis=1)
    cams = np.stack([_look(c, f) for c, f in zip(centres, forwards)])
    lo, hi = np.array([-1.5, -1.3, -3.0]), np.array([1.5, 1.3, length + 6.0])
    K = _intrinsics(H, W, 70.0)
    return Trajectory(cams, K, _raycast(cams, K, H, W, lo, hi), (lo, hi))


def room_loop(num_frames: int = 360, radius: float = 3.0, H: int = 24, W: int = 32) -> Trajectory:
    """One walk around a 12 m x 12 m room on a circle, looking along the walk, ending where it started."""
    phi = np.linspace(0.0, 2 * np.pi, num_frames, endpoint=False)
    centres = np.stack([radius * np.cos(phi), 0.1 * np.sin(3 * phi), radius * np.sin(phi)], axis=1)
    tangent = np.stack([-np.sin(phi), np.zeros_like(phi), np.cos(phi)], axis=1)
    outward = np.stack([np.cos(phi), np.zeros_like(phi), np.sin(phi)], axis=1)
    cams = np.stack([_look(c, t + 0.3 * o) for c, t, o in zip(centres, tangent, outward)])
    lo, hi = np.array([-6.0, -1.5, -6.0]), np.array([6.0, 1.5, 6.0])
    K = _intrinsics(H, W, 70.0)
    return Trajectory(cams, K, _raycast(cams, K, H, W, lo, hi), (lo, hi))


def _random_sim3(rng: np.random.Generator) -> Sim3:
    return Sim3(float(np.exp(rng.uniform(-0.7, 0.7))), Rotation.random(random_state=rng).as_matrix(),
                rng.normal(0.0, 3.0, 3))


def simulate_chunks(traj: Trajectory, frame_sets: list[tuple[int, ...]] | list[Chunk], *, seed: int = 0,
                    noise: float = 0.003, outliers: float = 0.1, drift_rot_deg: float = 0.5,
                    drift_scale: float = 0.01, drift_trans: float = 0.01) -> list[ChunkGeometry]:
    """What a model would predict per chunk: ground truth in a random Sim(3) frame, drifting, noisy.

    Frame ``u`` of a chunk (``u`` from 0 at its first frame to 1 at its last) is
    moved by ``exp(u * xi)``, a similarity about the chunk's first camera with a
    random direction and the given magnitudes (rotation in degrees, log scale,
    translation relative to the scene size); then the chunk gets its own random
    Sim(3). Depths get multiplicative Gaussian ``noise``; a fraction ``outliers``
    of the pixels is moved far off and given a low confidence (1-1.5, against 2-6).
    """
    rng = np.random.default_rng(seed)
    extent = float(np.linalg.norm(traj.box[1] - traj.box[0])) / 10
    out = []
    for fs in frame_sets:
        frames = np.asarray(fs.frames if isinstance(fs, Chunk) else fs)
        c0 = traj.centres[frames[0]]
        xi = np.concatenate([rng.normal(size=3), rng.normal(size=3), [rng.choice([-1.0, 1.0])]])
        xi[:3] *= np.radians(drift_rot_deg) / np.linalg.norm(xi[:3])
        xi[3:6] *= drift_trans * extent / np.linalg.norm(xi[3:6])
        xi[6] *= drift_scale
        G = _random_sim3(rng)
        cams, pts, conf = [], [], []
        for n, f in enumerate(frames):
            u = n / max(len(frames) - 1, 1)
            D = Sim3(1.0, np.eye(3), c0) @ Sim3.from_vector(u * xi) @ Sim3(1.0, np.eye(3), -c0)
            T = G @ D
            cam = T.transform_cameras(traj.cam_from_world[f])
            z = (traj.points[f] @ traj.cam_from_world[f, 2, :3] + traj.cam_from_world[f, 2, 3])[..., None]
            centre = traj.centres[f]
            p = centre + (traj.points[f] - centre) * (1.0 + noise * rng.normal(size=z.shape))
            c = rng.uniform(2.0, 6.0, size=z.shape[:-1])
            bad = rng.random(z.shape[:-1]) < outliers
            p[bad] += rng.normal(0.0, extent, size=(int(bad.sum()), 3))
            c[bad] = rng.uniform(1.0, 1.5, size=int(bad.sum()))
            cams.append(cam)
            pts.append(T.apply(p))
            conf.append(c)
        out.append(ChunkGeometry(frames, np.stack(cams), np.stack(pts), np.stack(conf),
                                 np.repeat(traj.intrinsics[None], len(frames), axis=0)))
    return out
