"""Rotation matrices <-> quaternions in scalar-last (x, y, z, w) order.

Convention (module-wide): quaternions are ``quat_xyzw = (qx, qy, qz, qw)`` (scalar
last, as in VGGT's pose encoding and SciPy); rotation matrices act on column
vectors, ``x' = R @ x``. Matrices are returned in the quaternion's dtype/device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .transforms import _check_tensor

__all__ = ["quat_xyzw_to_rotation_matrix", "rotation_matrix_to_quat_xyzw"]


def quat_xyzw_to_rotation_matrix(quat_xyzw: Tensor) -> Tensor:
    """Convert quaternions (scalar last) to rotation matrices.

    Convention: ``quat_xyzw = (x, y, z, w)``; non-unit quaternions are valid and give
    the rotation of the normalised quaternion (the formula uses ``s = 2 / |q|^2``).
    A zero quaternion has no rotation and yields non-finite values.

    Args:
        quat_xyzw: ``[..., 4]``.

    Returns:
        ``[..., 3, 3]`` rotation matrices.
    """
    _check_tensor("quat_xyzw", quat_xyzw, [(4,)])
    x, y, z, w = quat_xyzw.unbind(-1)
    s = 2.0 / (quat_xyzw * quat_xyzw).sum(-1)  # [...]
    entries = (
        1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
        s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
        s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
    )  # fmt: skip
    return torch.stack(entries, dim=-1).unflatten(-1, (3, 3))  # [..., 3, 3]


def _sqrt_nonnegative(x: Tensor) -> Tensor:
    """``sqrt(max(x, 0))`` with a zero (not infinite) gradient where ``x <= 0``."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def rotation_matrix_to_quat_xyzw(rotation: Tensor) -> Tensor:
    """Convert rotation matrices to unit quaternions (scalar last), standardised to ``qw >= 0``.

    Convention: ``R`` acts on column vectors; the output is ``(x, y, z, w)`` with
    ``w >= 0``. Method: the four candidate quaternions obtained by dividing by each
    of ``|w|, |x|, |y|, |z|`` (computed from the diagonal) are formed and the one
    with the largest divisor is kept (PyTorch3D's best-conditioned candidate
    method), so the result is stable for every rotation, including 180 degrees.

    Args:
        rotation: ``[..., 3, 3]``.

    Returns:
        ``[..., 4]`` unit quaternions.
    """
    _check_tensor("rotation", rotation, [(3, 3)])
    m = rotation
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]

    # 2|w|, 2|x|, 2|y|, 2|z| from the diagonal: [..., 4] in (w, x, y, z) order.
    abs_wxyz = _sqrt_nonnegative(
        torch.stack(
            [
                1.0 + m00 + m11 + m22,
                1.0 + m00 - m11 - m22,
                1.0 - m00 + m11 - m22,
                1.0 - m00 - m11 + m22,
            ],
            dim=-1,
        )
    )
    # Row k is 4 * q_k * q (in (w, x, y, z) order), for k = w, x, y, z: [..., 4, 4].
    scaled = torch.stack(
        [
            torch.stack([abs_wxyz[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], dim=-1),
            torch.stack([m21 - m12, abs_wxyz[..., 1] ** 2, m10 + m01, m02 + m20], dim=-1),
            torch.stack([m02 - m20, m10 + m01, abs_wxyz[..., 2] ** 2, m12 + m21], dim=-1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, abs_wxyz[..., 3] ** 2], dim=-1),
        ],
        dim=-2,
    )
    # Dividing row k by 2 * (2|q_k|) gives q up to sign; the floor avoids 0/0 in rows
    # that are never selected.
    candidates = scaled / (2.0 * abs_wxyz.clamp_min(0.1)).unsqueeze(-1)  # [..., 4, 4]
    best = abs_wxyz.argmax(dim=-1)  # [...]
    index = best[..., None, None].expand(best.shape + (1, 4))
    quat_wxyz = candidates.gather(-2, index).squeeze(-2)  # [..., 4]
    quat_xyzw = torch.cat([quat_wxyz[..., 1:], quat_wxyz[..., :1]], dim=-1)
    return torch.where(quat_xyzw[..., 3:] < 0, -quat_xyzw, quat_xyzw)
