"""Tiny deterministic contract batches and a loader, for trainer tests that need no renderer.

A batch is already normalised (it carries ``normalization_scale``), so the
trainer uses it as is. Frame 0 is the identity camera; the others are small
rotations and translations; depth is a tilted plane plus a bump, and the
points are its exact unprojection.
"""

from __future__ import annotations

import math

import torch

from vggt3d.geometry import depth_to_world_points, invert_rigid


def _rotation(axis_angle: torch.Tensor) -> torch.Tensor:
    angle = axis_angle.norm()
    if angle < 1e-12:
        return torch.eye(3)
    k = axis_angle / angle
    K = torch.tensor([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return torch.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * (K @ K)


def make_batch(seed: int, B: int = 2, S: int = 2, H: int = 28, W: int = 28, num_tracks: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(B, S, 3, H, W, generator=g)
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    depths = torch.empty(B, S, H, W)
    cams = torch.empty(B, S, 3, 4)
    for b in range(B):
        for s in range(S):
            a, c = torch.rand(2, generator=g)
            depths[b, s] = 1.0 + 0.5 * a * u / W + 0.3 * c * torch.exp(-((u - W / 2) ** 2 + (v - H / 2) ** 2) / 30)
            if s == 0:
                R, t = torch.eye(3), torch.zeros(3)
            else:
                R = _rotation(0.1 * torch.randn(3, generator=g))
                t = 0.2 * torch.randn(3, generator=g)
            cams[b, s] = torch.cat([R, t[:, None]], 1)
    K = torch.tensor([[float(W), 0, (W - 1) / 2], [0, float(W), (H - 1) / 2], [0, 0, 1]]).expand(B, S, 3, 3).clone()
    world, mask = depth_to_world_points(depths, cams, K)
    cam_points = depth_to_world_points(depths, torch.eye(4)[:3].expand(B, S, 3, 4), K)[0]
    batch = {
        "images": images, "depths": depths, "cam_from_world": cams, "intrinsics": K, "point_masks": mask,
        "cam_points": cam_points, "world_points": world, "normalization_scale": torch.ones(B),
        "scene": [f"toy-{seed}-{b}" for b in range(B)], "frame_ids": [list(range(S))] * B,
        "original_sizes": torch.tensor([H, W]).expand(B, S, 2).clone(),
    }
    if num_tracks:
        ys = torch.randint(2, H - 2, (num_tracks,), generator=g).float()
        xs = torch.randint(2, W - 2, (num_tracks,), generator=g).float()
        tracks = torch.empty(B, S, num_tracks, 2)
        for b in range(B):
            d0 = depths[b, 0, ys.long(), xs.long()]
            pts = torch.stack([(xs - K[b, 0, 0, 2]) * d0 / W, (ys - K[b, 0, 1, 2]) * d0 / W, d0], -1)
            world_pts = (pts - cams[b, 0, :, 3]) @ cams[b, 0, :, :3]
            for s in range(S):
                cam = world_pts @ cams[b, s, :, :3].T + cams[b, s, :, 3]
                tracks[b, s] = (cam[:, :2] / cam[:, 2:]) * W + K[b, s, :2, 2]
        batch["tracks"] = tracks
        batch["track_visibility"] = torch.ones(B, S, num_tracks, dtype=torch.bool)
    assert torch.allclose(invert_rigid(invert_rigid(cams)), cams, atol=1e-5)
    return batch


class ToyLoader:
    """``length`` batches per epoch, each determined by ``(seed, epoch, index)``; ``fixed`` repeats one batch."""

    def __init__(self, length: int = 4, seed: int = 0, fixed: bool = False, **batch_kwargs) -> None:
        self.length, self.seed, self.fixed, self.batch_kwargs = length, seed, fixed, batch_kwargs
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        for i in range(self.length):
            seed = self.seed if self.fixed else self.seed * 100003 + self.epoch * 1009 + i
            yield make_batch(seed, **self.batch_kwargs)
