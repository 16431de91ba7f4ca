"""Ground-truth point tracks from depth and cameras (TRAINING.md section 6, our own code).

A track follows one 3D point: the query is a valid pixel of frame 0, its world
point is projected into every frame, and it is *visible* in a frame where the
projection falls inside the image and agrees with that frame's depth map.

Convention: tracks are pixel positions ``(x, y)`` with pixel centres at
integers; ``cam_from_world`` with OpenCV axes (x right, y down, z forward).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from vggt3d.geometry import project_points

__all__ = ["depth_visibility", "select_tracks", "tracks_from_depth"]

BORDER = 4  # pixels: a projection closer to the border than this is not visible
DEPTH_TOLERANCE = 0.05  # relative depth agreement required for visibility


def depth_visibility(uv: Tensor, z: Tensor, depths: Tensor, border: int = BORDER,
                     tolerance: float = DEPTH_TOLERANCE) -> Tensor:
    """Visibility of projected points by a depth test against depth maps.

    Convention: a point at ``uv`` (pixels, centres at integers) with camera depth
    ``z`` is visible iff ``z > 0``, ``border <= floor(u) < W - border`` (same for v)
    and one of the pixels ``floor(uv) + {(0,0), (1,0), (0,1), (1,1)}`` has a valid
    depth ``D`` with ``|z - D| < tolerance * z`` and ``< tolerance * D``.

    Args:
        uv: ``[S, N, 2]`` projected pixels.
        z: ``[S, N]`` camera depth of the projected points.
        depths: ``[S, H, W]`` depth maps (0 = invalid).

    Returns:
        ``[S, N]`` bool.
    """
    S, H, W = depths.shape
    finite = torch.isfinite(uv).all(-1) & torch.isfinite(z)
    uv = torch.where(finite[..., None], uv, torch.zeros_like(uv))
    base = torch.floor(uv).long()  # [S, N, 2]
    inside = finite & (z > 0)
    inside &= (base[..., 0] >= border) & (base[..., 0] < W - border)
    inside &= (base[..., 1] >= border) & (base[..., 1] < H - border)
    consistent = torch.zeros_like(inside)
    frame = torch.arange(S)[:, None].expand_as(z)
    for du, dv in ((0, 0), (1, 0), (0, 1), (1, 1)):
        u = (base[..., 0] + du).clamp(0, W - 1)
        v = (base[..., 1] + dv).clamp(0, H - 1)
        d = depths[frame, v, u]  # [S, N]
        err = (z - d).abs()
        consistent |= (d > 0) & (err < tolerance * z) & (err < tolerance * d)
    return inside & consistent


def select_tracks(visibility: np.ndarray, num_tracks: int, rng: np.random.Generator) -> np.ndarray:
    """Pick ``num_tracks`` candidate indices from ``visibility [S, M]`` (frame 0 is the query frame).

    Candidates visible in frame 0 and at least one other frame come first; when
    more than twice as many exist as needed, the better-seen half is kept (by
    visible count); the pick is then uniform. A shortfall is filled by repeating
    candidates (sampling with replacement), so the result always has
    ``num_tracks`` entries when ``M > 0``.
    """
    count = visibility.sum(0)
    good = np.flatnonzero(visibility[0] & (count >= 2))
    if len(good) >= num_tracks:
        if len(good) >= 2 * num_tracks:
            order = np.argsort(-count[good], kind="stable")
            good = good[order[: len(good) // 2]]
        return rng.choice(good, size=num_tracks, replace=False)
    fallback = np.flatnonzero(visibility[0])
    if len(fallback) == 0:
        fallback = np.arange(visibility.shape[1])
    extra = rng.choice(fallback, size=num_tracks - len(good), replace=True) if len(fallback) else np.zeros(0, int)
    return np.concatenate([good, extra]).astype(np.int64)


def tracks_from_depth(sample: dict, num_tracks: int, rng: np.random.Generator, candidates: int = 4
                      ) -> dict[str, Tensor]:
    """Tracks of ``num_tracks`` frame-0 pixels with visibility by :func:`depth_visibility`.

    Args:
        sample: a contract sample (``world_points``, ``point_masks``, ``depths``,
            ``cam_from_world``, ``intrinsics``), after any crop/resize.
        num_tracks: N.
        rng: source of the random pick.
        candidates: how many frame-0 pixels to test per wanted track.

    Returns:
        ``{"tracks": [S, N, 2] float32 pixels (x, y), "track_visibility": [S, N] bool}``.
        A frame 0 without valid pixels gives zero tracks that are never visible.
    """
    depths = sample["depths"]
    S, H, W = depths.shape
    valid = np.flatnonzero(sample["point_masks"][0].reshape(-1).numpy())
    if len(valid) == 0 or num_tracks <= 0:
        return {"tracks": torch.zeros(S, max(num_tracks, 0), 2), "track_visibility": torch.zeros(S, max(num_tracks, 0),
                                                                                                dtype=torch.bool)}
    picks = rng.choice(valid, size=min(len(valid), candidates * num_tracks), replace=False)
    world = sample["world_points"][0].reshape(-1, 3)[torch.from_numpy(picks)].double()  # [M, 3]
    uv, z = project_points(world.expand(S, -1, -1), sample["cam_from_world"].double(),
                           sample["intrinsics"].double())  # [S, M, 2], [S, M]
    # Frame 0 projects back to the query pixel centres; use them exactly.
    uv[0] = torch.from_numpy(np.stack([picks % W, picks // W], axis=1).astype(np.float64))
    visibility = depth_visibility(uv, z, depths.double())
    chosen = torch.from_numpy(select_tracks(visibility.numpy(), num_tracks, rng))
    tracks = torch.nan_to_num(uv[:, chosen], nan=0.0, posinf=0.0, neginf=0.0)  # invisible anyway
    return {"tracks": tracks.float(), "track_visibility": visibility[:, chosen]}
