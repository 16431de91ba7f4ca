"""Rigid transforms: inversion, homogeneous form, and re-expression relative to frame 0.

Convention (module-wide): a rigid transform ``T = [R | t]`` maps points from one
frame to another, ``X_target = R @ X_source + t``. Camera extrinsics are
``cam_from_world`` with OpenCV axes (x right, y down, z forward). Both the
``[..., 3, 4]`` and the homogeneous ``[..., 4, 4]`` layouts are accepted where
stated; the bottom row of a ``[..., 4, 4]`` input is assumed to be ``[0, 0, 0, 1]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["invert_rigid", "relative_to_first", "to_homogeneous_transform"]


def _check_tensor(name: str, value: object, trailing: Sequence[Sequence[int]], min_ndim: int = 0) -> Tensor:
    """Raise a ValueError naming ``name`` unless ``value`` ends with one of the ``trailing`` shapes.

    Convention: ``trailing`` lists the allowed trailing dimension sizes, e.g.
    ``[(3, 4), (4, 4)]``; ``min_ndim`` is the minimum total number of dimensions.
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    for dims in trailing:
        k = len(dims)
        if value.ndim >= max(k, min_ndim) and tuple(value.shape[value.ndim - k :]) == tuple(dims):
            return value
    allowed = " or ".join("[..., " + ", ".join(str(d) for d in dims) + "]" for dims in trailing)
    raise ValueError(f"{name} must have shape {allowed}, got {list(value.shape)}")


def _rigid_shape(name: str, transform: Tensor) -> int:
    """Return 3 or 4 (rows) for a ``[..., 3, 4]`` / ``[..., 4, 4]`` transform, else raise ValueError."""
    _check_tensor(name, transform, [(3, 4), (4, 4)])
    return transform.shape[-2]


def to_homogeneous_transform(transform: Tensor) -> Tensor:
    """Append the row ``[0, 0, 0, 1]`` to a ``[..., 3, 4]`` rigid transform.

    Convention: ``[R | t]`` -> ``[[R, t], [0, 0, 0, 1]]``; a ``[..., 4, 4]`` input is
    returned unchanged.

    Args:
        transform: ``[..., 3, 4]`` (or ``[..., 4, 4]``).

    Returns:
        ``[..., 4, 4]`` with the same dtype and device.
    """
    if _rigid_shape("transform", transform) == 4:
        return transform
    bottom = transform.new_zeros(transform.shape[:-2] + (1, 4))
    bottom[..., 0, 3] = 1.0
    return torch.cat([transform, bottom], dim=-2)  # [..., 4, 4]


def invert_rigid(transform: Tensor) -> Tensor:
    """Invert a rigid transform, e.g. ``cam_from_world`` -> ``world_from_cam``.

    Convention: ``[R | t]^-1 = [R^T | -R^T t]`` (R assumed orthonormal); the output
    has the input's layout (``[..., 3, 4]`` or ``[..., 4, 4]``).

    Args:
        transform: ``[..., 3, 4]`` or ``[..., 4, 4]``.

    Returns:
        The inverse, same shape as ``transform``.
    """
    rows = _rigid_shape("transform", transform)
    rot_t = transform[..., :3, :3].transpose(-1, -2)  # [..., 3, 3]
    trans = transform[..., :3, 3:]  # [..., 3, 1]
    inverse = torch.cat([rot_t, -rot_t @ trans], dim=-1)  # [..., 3, 4]
    return to_homogeneous_transform(inverse) if rows == 4 else inverse


def relative_to_first(cam_from_world: Tensor) -> Tensor:
    """Re-express every camera relative to the first view, so view 0 becomes ``[I | 0]``.

    Convention: ``E'_i = E_i @ E_0^-1`` (4x4 products), i.e. the new world frame is
    camera 0's frame (OpenCV axes: x right, y down, z forward).

    Args:
        cam_from_world: ``[..., S, 3, 4]`` or ``[..., S, 4, 4]``, e.g. ``[B, S, 3, 4]``.

    Returns:
        Same shape as ``cam_from_world``.
    """
    rows = _rigid_shape("cam_from_world", cam_from_world)
    if cam_from_world.ndim < 3:
        raise ValueError(
            f"cam_from_world must have shape [..., S, {rows}, 4] with a view dimension, "
            f"got {list(cam_from_world.shape)}"
        )
    homogeneous = to_homogeneous_transform(cam_from_world)  # [..., S, 4, 4]
    first_inv = invert_rigid(homogeneous[..., :1, :, :])  # [..., 1, 4, 4]
    relative = homogeneous @ first_inv  # [..., S, 4, 4]
    return relative if rows == 4 else relative[..., :3, :]
