"""Shared helpers of the geometry-prior tests: the tiny model, one CPU thread, analytic scenes, perturbations."""

from __future__ import annotations

import math

import torch

from vggt3d import ModelConfig, VGGT3D
from vggt3d.testing import load_rule_weights




def tiny_model() -> VGGT3D:
    return load_rule_weights(VGGT3D(ModelConfig.preset("tiny")).eval())


# ------------------------------------------------------------------ analytic scene
def look_at(eye: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``cam_from_world [3, 4]`` of a camera at ``eye`` looking at ``target`` (OpenCV axes, world y down)."""
    f = target - eye
    f = f / f.norm()
    r = torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype), f)
    r = r / r.norm()
    d = torch.linalg.cross(f, r)
    R = torch.stack([r, d, f])  # rows: x right, y down, z forward
    return torch.cat([R, (-R @ eye)[:, None]], dim=1)


def render_depth(cam_from_world: torch.Tensor, K: torch.Tensor, H: int, W: int, wall_z: float = 6.0,
                 sphere=(0.0, 0.0, 3.0, 1.0)) -> torch.Tensor:
    """Exact z-depth ``[H, W]`` of a wall (plane z = wall_z) behind a sphere, by ray casting (float64)."""
    R, t = cam_from_world[:, :3], cam_from_world[:, 3]
    eye = -R.T @ t
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)], -1)  # [H, W, 3]
    dirs = pix @ torch.linalg.inv(K).T @ R  # world direction of K^-1 [u, v, 1] (camera z = 1): [H, W, 3]
    depth = (wall_z - eye[2]) / dirs[..., 2]
    depth = torch.where(depth > 0, depth, torch.full_like(depth, float("inf")))
    c = torch.tensor(sphere[:3], dtype=torch.float64)
    oc = eye - c
    a = (dirs * dirs).sum(-1)
    b = 2 * (dirs * oc).sum(-1)
    cc = oc @ oc - sphere[3] ** 2
    disc = b * b - 4 * a * cc
    s = (-b - disc.clamp_min(0).sqrt()) / (2 * a)
    hit = (disc > 0) & (s > 0)
    return torch.where(hit & (s < depth), s, depth)


def analytic_clip(S: int = 8, H: int = 48, W: int = 64, arc_deg: float = 40.0, num_tracks: int = 0,
                  sphere=(0.0, 0.0, 3.0, 1.0), seed: int = 0) -> dict:
    """A camera orbiting smoothly in front of a sphere and a wall: depth, cameras, intrinsics (and tracks)."""
    K = torch.tensor([[0.9 * W, 0, (W - 1) / 2], [0, 0.9 * W, (H - 1) / 2], [0, 0, 1]], dtype=torch.float64)
    target = torch.tensor(sphere[:3], dtype=torch.float64)
    cams, depths = [], []
    for k in range(S):
        a = math.radians(-arc_deg / 2 + arc_deg * k / max(1, S - 1))
        eye = target + torch.tensor([4.0 * math.sin(a), -0.3 + 0.05 * k, -4.0 * math.cos(a)], dtype=torch.float64)
        cam = look_at(eye, target)
        cams.append(cam)
        depths.append(render_depth(cam, K, H, W, sphere=sphere))
    clip = {"depth": torch.stack(depths).float(), "cam_from_world": torch.stack(cams).float(),
            "intrinsics": K.expand(S, 3, 3).float()}
    if num_tracks:
        clip.update(exact_tracks(clip, num_tracks, seed))
    return clip


def exact_tracks(clip: dict, num_tracks: int, seed: int = 0) -> dict:
    """Tracks of random surface points of frame 0 through every frame, visibility by the depth test."""
    from vggt3d.geometry import depth_to_world_points, project_points

    depth, cams, K = clip["depth"].double(), clip["cam_from_world"].double(), clip["intrinsics"].double()
    S, H, W = depth.shape
    g = torch.Generator().manual_seed(seed)
    world, valid = depth_to_world_points(depth[0], cams[0], K[0])  # [H, W, 3]
    idx = torch.nonzero(valid.flatten()).flatten()
    idx = idx[torch.randperm(idx.numel(), generator=g)[:num_tracks]]
    pts = world.reshape(-1, 3)[idx]  # [N, 3]
    uv, z = project_points(pts.expand(S, -1, -1), cams, K)  # [S, N, 2], [S, N]
    u, v = uv[..., 0].round().long(), uv[..., 1].round().long()
    inside = (u >= 0) & (u < W) & (v >= 0) & (v < H) & (z > 0)
    d = depth[torch.arange(S)[:, None], v.clamp(0, H - 1), u.clamp(0, W - 1)]
    vis = inside & (z <= d * 1.02)
    return {"tracks": uv.float(), "track_visibility": vis}


# ------------------------------------------------------------------ perturbations
def shuffled(clip: dict, seed: int = 1) -> dict:
    """The same frames (each with its own geometry) in a random order that moves every frame."""
    S = clip["depth"].shape[0]
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(S, generator=g)
        if (perm != torch.arange(S)).all():
            break
    return {k: v[perm] for k, v in clip.items()}


def frame_replaced(clip: dict, other: dict, frame: int) -> dict:
    """Frame ``frame``'s depth taken from another scene (its camera kept)."""
    out = {k: v.clone() for k, v in clip.items()}
    out["depth"][frame] = other["depth"][frame]
    return out


def frame_warped(clip: dict, frame: int, shift: int = 8) -> dict:
    """Frame ``frame``'s depth map shifted sideways by ``shift`` pixels (edge repeated), its camera kept."""
    out = {k: v.clone() for k, v in clip.items()}
    d = out["depth"][frame]
    out["depth"][frame] = torch.cat([d[:, :1].expand(-1, shift), d[:, :-shift]], dim=1)
    return out


def random_depth(clip: dict, seed: int = 2) -> dict:
    """Every frame's depth replaced by independent random depth over the clip's depth range."""
    d = clip["depth"]
    valid = torch.isfinite(d) & (d > 0)
    lo, hi = d[valid].min(), d[valid].max()
    g = torch.Generator().manual_seed(seed)
    out = dict(clip)
    out["depth"] = lo + (hi - lo) * torch.rand(d.shape, generator=g)
    return out


def random_depth_scale(clip: dict, seed: int = 3) -> dict:
    """Every frame's depth multiplied by its own random factor in [0.6, 1.6] (no consistent scale)."""
    S = clip["depth"].shape[0]
    g = torch.Generator().manual_seed(seed)
    f = 0.6 + torch.rand(S, generator=g)
    out = dict(clip)
    out["depth"] = clip["depth"] * f[:, None, None]
    return out
