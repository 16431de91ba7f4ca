"""Unprojection of depth maps to 3D points, and projection of 3D points to pixels.

Convention (module-wide): pinhole cameras with OpenCV axes (x right, y down,
z forward); ``cam_from_world = [R | t]`` maps ``X_cam = R @ X_world + t``;
intrinsics ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels. Pixel centres
are at integer coordinates: pixel ``(row v, column u)`` of a depth map is the
image point ``(u, v)``. Depth is the camera-space z, not the ray length.

Broadcasting: for depth maps ``[..., H, W]`` the leading dimensions of depth,
intrinsics and extrinsics broadcast as usual (right-aligned). For point sets
``[..., N, 3]`` (or ``[..., H, W, 3]``) the leading dimensions of the camera
tensors are matched against the *first* dimensions of the points (size-1
dimensions broadcast) and every remaining point dimension indexes points; so
``K [3, 3]`` applies to all points and ``K [B, S, 3, 3]`` to ``points [B, S, N, 3]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .transforms import _check_tensor

__all__ = ["cam_points_to_world", "depth_to_cam_points", "depth_to_world_points", "project_points"]

_VALID_DEPTH = 1e-8


def _broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """Right-aligned broadcast of shapes (``torch.broadcast_shapes`` without its symbolic-shape import cost)."""
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for shape in shapes:
        for i, n in enumerate(shape, start=ndim - len(shape)):
            if n != 1:
                if out[i] not in (1, n):
                    raise RuntimeError(f"shapes {shapes} do not broadcast")
                out[i] = n
    return tuple(out)


def _per_point(name: str, camera: Tensor, points: Tensor, points_name: str) -> tuple[Tensor, Tensor, tuple]:
    """Pair ``camera [L..., r, c]`` with ``points [L..., P..., 3]`` for one batched matmul per camera.

    Returns ``camera [L'..., r, c]``, ``points [L'..., M, 3]`` (``M = prod(P...)``,
    ``L'`` the broadcast of ``L`` and the points' first dims) and the output
    shape ``[L'..., P...]`` without the coordinate dim.
    """
    lead = tuple(camera.shape[:-2])
    point_dims = points.ndim - 1 - len(lead)
    try:
        if point_dims < 0:
            raise RuntimeError
        shape = _broadcast_shapes(lead, tuple(points.shape[: len(lead)]))
    except RuntimeError:
        raise ValueError(
            f"the leading dimensions of {name} {list(lead)} must match the first dimensions "
            f"of {points_name} {list(points.shape)}"
        ) from None
    per_point = tuple(points.shape[len(lead):-1])
    camera = camera.expand(shape + tuple(camera.shape[-2:]))
    points = points.expand(shape + per_point + (3,)).reshape(shape + (-1, 3))  # [L'..., M, 3]
    return camera, points, shape + per_point


def _squeeze_depth(depth: Tensor) -> Tensor:
    """Accept ``[..., H, W]`` or ``[..., H, W, 1]`` depth and return ``[..., H, W]``."""
    if not isinstance(depth, Tensor):
        raise TypeError(f"depth must be a torch.Tensor, got {type(depth).__name__}")
    if depth.ndim >= 3 and depth.shape[-1] == 1:
        depth = depth[..., 0]  # [..., H, W]
    if depth.ndim < 2:
        raise ValueError(f"depth must have shape [..., H, W] or [..., H, W, 1], got {list(depth.shape)}")
    return depth


def depth_to_cam_points(depth: Tensor, intrinsics: Tensor) -> Tensor:
    """Unproject a depth map into camera-space points.

    Convention: ``X_cam(u, v) = ((u - cx) d / fx, (v - cy) d / fy, d)`` with pixel
    centres at integers (u column, v row), OpenCV axes (x right, y down, z forward),
    zero skew. A trailing singleton dimension of ``depth`` is read as a channel,
    so a width-1 map must be given as ``[..., H, 1, 1]``.

    Args:
        depth: ``[..., H, W]`` or ``[..., H, W, 1]``, e.g. ``[B, S, H, W, 1]``.
        intrinsics: ``[..., 3, 3]``, leading dims broadcasting with those of depth.

    Returns:
        ``[..., H, W, 3]`` camera-space points.
    """
    depth = _squeeze_depth(depth)
    _check_tensor("intrinsics", intrinsics, [(3, 3)])
    height, width = depth.shape[-2:]
    fx, fy = intrinsics[..., 0, 0, None, None], intrinsics[..., 1, 1, None, None]  # [..., 1, 1]
    cx, cy = intrinsics[..., 0, 2, None, None], intrinsics[..., 1, 2, None, None]  # [..., 1, 1]
    u = torch.arange(width, dtype=depth.dtype, device=depth.device).expand(height, width)  # [H, W]
    v = torch.arange(height, dtype=depth.dtype, device=depth.device)[:, None].expand(height, width)
    x = (u - cx) * depth / fx  # [..., H, W]
    y = (v - cy) * depth / fy
    z = depth.expand_as(x)
    return torch.stack([x, y, z], dim=-1)  # [..., H, W, 3]


def cam_points_to_world(cam_points: Tensor, cam_from_world: Tensor) -> Tensor:
    """Move camera-space points into the world frame.

    Convention: ``X_world = R^T (X_cam - t)`` for ``cam_from_world = [R | t]``
    (OpenCV axes: x right, y down, z forward).

    Args:
        cam_points: ``[..., H, W, 3]`` or ``[..., N, 3]``.
        cam_from_world: ``[..., 3, 4]`` (or ``[..., 4, 4]``); its leading dims match
            the first dims of ``cam_points`` (see the module docstring).

    Returns:
        World points with the shape of ``cam_points`` (leading dims broadcast).
    """
    _check_tensor("cam_points", cam_points, [(3,)])
    _check_tensor("cam_from_world", cam_from_world, [(3, 4), (4, 4)])
    transform, points, shape = _per_point("cam_from_world", cam_from_world[..., :3, :], cam_points, "cam_points")
    rotation, translation = transform[..., :3], transform[..., None, :, 3]  # [L..., 3, 3], [L..., 1, 3]
    # Row-vector form: (X - t) @ R equals R^T (X - t) for every point; one matmul per camera.
    return ((points - translation) @ rotation).reshape(shape + (3,))  # [..., 3]


def depth_to_world_points(depth: Tensor, cam_from_world: Tensor, intrinsics: Tensor) -> tuple[Tensor, Tensor]:
    """Unproject depth maps into world points, with the mask of valid pixels.

    Convention: ``X_world = R^T (X_cam - t)`` with ``X_cam`` from
    :func:`depth_to_cam_points` (pixel centres at integers, OpenCV axes: x right,
    y down, z forward); a pixel is valid iff ``depth > 1e-8``.

    Args:
        depth: ``[..., H, W]`` or ``[..., H, W, 1]``, e.g. ``[B, S, H, W]``.
        cam_from_world: ``[..., 3, 4]`` (or ``[..., 4, 4]``), e.g. ``[B, S, 3, 4]``.
        intrinsics: ``[..., 3, 3]``, e.g. ``[B, S, 3, 3]``.

    Returns:
        ``(world_points [..., H, W, 3], valid_mask [..., H, W] bool)``; leading dims
        of the three inputs broadcast (right-aligned).
    """
    depth = _squeeze_depth(depth)
    _check_tensor("cam_from_world", cam_from_world, [(3, 4), (4, 4)])
    _check_tensor("intrinsics", intrinsics, [(3, 3)])
    try:
        lead = _broadcast_shapes(tuple(depth.shape[:-2]), tuple(cam_from_world.shape[:-2]), tuple(intrinsics.shape[:-2]))
    except RuntimeError:
        raise ValueError(
            f"leading dimensions do not broadcast: depth {list(depth.shape)}, "
            f"cam_from_world {list(cam_from_world.shape)}, intrinsics {list(intrinsics.shape)}"
        ) from None
    depth = depth.expand(lead + depth.shape[-2:])  # [..., H, W]
    cam_points = depth_to_cam_points(depth, intrinsics)  # [..., H, W, 3]
    transform = cam_from_world[..., :3, :].expand(lead + (3, 4))  # [..., 3, 4]
    world_points = cam_points_to_world(cam_points, transform)  # [..., H, W, 3]
    return world_points, depth > _VALID_DEPTH


def project_points(world_points: Tensor, cam_from_world: Tensor, intrinsics: Tensor) -> tuple[Tensor, Tensor]:
    """Project world points into pixels.

    Convention: ``X_cam = R X_world + t``, ``(u, v) = (K X_cam)[:2] / z`` with pixel
    centres at integers, OpenCV axes (x right, y down, z forward). Points with
    ``z <= 0`` are behind the camera: their ``uv`` is returned as computed (inf or
    mirrored), so callers should mask on ``depth > 0``.

    Args:
        world_points: ``[..., N, 3]`` (or ``[..., H, W, 3]``).
        cam_from_world: ``[..., 3, 4]`` (or ``[..., 4, 4]``); leading dims match the
            first dims of ``world_points`` (see the module docstring).
        intrinsics: ``[..., 3, 3]``, same rule.

    Returns:
        ``(uv [..., N, 2] pixels (x, y), depth [..., N] camera z)``.
    """
    _check_tensor("world_points", world_points, [(3,)])
    _check_tensor("cam_from_world", cam_from_world, [(3, 4), (4, 4)])
    _check_tensor("intrinsics", intrinsics, [(3, 3)])
    transform, points, shape = _per_point("cam_from_world", cam_from_world[..., :3, :], world_points, "world_points")
    calibration, _, _ = _per_point("intrinsics", intrinsics, world_points, "world_points")
    calibration = calibration.expand(transform.shape[:-2] + (3, 3))
    cam_points = points @ transform[..., :3].transpose(-1, -2) + transform[..., None, :, 3]  # [L..., M, 3]
    homogeneous = cam_points @ calibration.transpose(-1, -2)  # [L..., M, 3]
    depth = cam_points[..., 2].reshape(shape)  # [..., N]
    uv = (homogeneous[..., :2] / homogeneous[..., 2:]).reshape(shape + (2,))  # [..., N, 2]
    return uv, depth
