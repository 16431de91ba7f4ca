"""VGGT's 9-number camera encoding ``absT_quaR_FoV`` <-> extrinsics and intrinsics.

Convention (module-wide): ``pose_enc = [tx, ty, tz, qx, qy, qz, qw, fov_h, fov_w]``
where ``[R | t]`` is ``cam_from_world`` (``X_cam = R @ X_world + t``, OpenCV axes:
x right, y down, z forward), the quaternion is scalar last, and the fields of
view are in radians for an image of ``image_size_hw = (H, W)`` pixels. The
principal point is not encoded: it is ``(W / 2, H / 2)`` (not ``(W - 1) / 2``).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

from .projection import _broadcast_shapes
from .rotation import quat_xyzw_to_rotation_matrix, rotation_matrix_to_quat_xyzw
from .transforms import _check_tensor

__all__ = ["cameras_to_pose_encoding", "pose_encoding_to_cameras"]

ImageSize = Sequence[int] | Tensor


def _image_size(image_size_hw: ImageSize) -> tuple[float, float]:
    """Return ``(H, W)`` as floats from a pair, a 2-element tensor or array."""
    if isinstance(image_size_hw, Tensor) or hasattr(image_size_hw, "tolist"):
        values = image_size_hw.tolist()  # tensor or numpy array
    else:
        values = list(image_size_hw) if isinstance(image_size_hw, Sequence) else []
    values = values if isinstance(values, list) else []
    ok = all(isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0 for v in values)
    if len(values) != 2 or not ok:
        raise ValueError(f"image_size_hw must be two positive numbers (H, W), got {image_size_hw!r}")
    return float(values[0]), float(values[1])


def pose_encoding_to_cameras(pose_enc: Tensor, image_size_hw: ImageSize) -> tuple[Tensor, Tensor]:
    """Decode ``[tx, ty, tz, qx, qy, qz, qw, fov_h, fov_w]`` into extrinsics and intrinsics.

    Convention: ``cam_from_world = [R(q) | t]`` (OpenCV axes: x right, y down,
    z forward; non-unit q allowed), ``fy = (H / 2) / tan(fov_h / 2)``,
    ``fx = (W / 2) / tan(fov_w / 2)``, ``cx = W / 2``, ``cy = H / 2``, zero skew.

    Args:
        pose_enc: ``[..., 9]``, e.g. ``[B, S, 9]``.
        image_size_hw: ``(H, W)`` of the network input, in pixels.

    Returns:
        ``(cam_from_world [..., 3, 4], intrinsics [..., 3, 3])``.
    """
    _check_tensor("pose_enc", pose_enc, [(9,)])
    height, width = _image_size(image_size_hw)
    translation = pose_enc[..., :3]  # [..., 3]
    rotation = quat_xyzw_to_rotation_matrix(pose_enc[..., 3:7])  # [..., 3, 3]
    cam_from_world = torch.cat([rotation, translation.unsqueeze(-1)], dim=-1)  # [..., 3, 4]

    fy = (height / 2.0) / torch.tan(pose_enc[..., 7] / 2.0)  # [...]
    fx = (width / 2.0) / torch.tan(pose_enc[..., 8] / 2.0)  # [...]
    zero = torch.zeros_like(fx)
    one = torch.ones_like(fx)
    entries = (
        fx, zero, zero + width / 2.0,
        zero, fy, zero + height / 2.0,
        zero, zero, one,
    )  # fmt: skip
    intrinsics = torch.stack(entries, dim=-1).unflatten(-1, (3, 3))  # [..., 3, 3]
    return cam_from_world, intrinsics


def cameras_to_pose_encoding(cam_from_world: Tensor, intrinsics: Tensor, image_size_hw: ImageSize) -> Tensor:
    """Encode extrinsics and intrinsics as ``[tx, ty, tz, qx, qy, qz, qw, fov_h, fov_w]``.

    Convention: ``cam_from_world = [R | t]`` (OpenCV axes: x right, y down,
    z forward); the quaternion is unit norm with ``qw >= 0``;
    ``fov_h = 2 atan((H / 2) / fy)``, ``fov_w = 2 atan((W / 2) / fx)``. The principal
    point and skew of ``intrinsics`` are ignored.

    Args:
        cam_from_world: ``[..., 3, 4]`` (or ``[..., 4, 4]``).
        intrinsics: ``[..., 3, 3]`` in pixels for an image of ``image_size_hw``.
        image_size_hw: ``(H, W)`` in pixels.

    Returns:
        ``[..., 9]`` with the broadcast leading shape of the two inputs.
    """
    _check_tensor("cam_from_world", cam_from_world, [(3, 4), (4, 4)])
    _check_tensor("intrinsics", intrinsics, [(3, 3)])
    height, width = _image_size(image_size_hw)
    quat = rotation_matrix_to_quat_xyzw(cam_from_world[..., :3, :3])  # [..., 4]
    translation = cam_from_world[..., :3, 3]  # [..., 3]
    fov_h = 2.0 * torch.atan((height / 2.0) / intrinsics[..., 1, 1])  # [...]
    fov_w = 2.0 * torch.atan((width / 2.0) / intrinsics[..., 0, 0])  # [...]
    lead = _broadcast_shapes(tuple(translation.shape[:-1]), tuple(fov_h.shape))
    parts = [translation.expand(lead + (3,)), quat.expand(lead + (4,))]
    parts += [fov_h.expand(lead).unsqueeze(-1), fov_w.expand(lead).unsqueeze(-1)]
    return torch.cat(parts, dim=-1)  # [..., 9]
