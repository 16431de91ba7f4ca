"""Scene normalisation of ground truth (TRAINING.md section 3): frame 0's camera, mean distance 1.

Convention: after normalisation the world frame is camera 0's frame (OpenCV
axes: x right, y down, z forward), ``cam_from_world[0] = [I | 0]``, and the
mean Euclidean distance of all valid points (all S frames) to camera 0's
centre is 1. Rotations and intrinsics are unchanged; ``world_points``,
``cam_points``, ``depths`` and the translations are divided by the scale ``s``,
returned as ``normalization_scale`` so metrics can undo it (multiply by ``s``).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from vggt3d.geometry import relative_to_first

__all__ = ["normalize_sample"]

SCALE_EPS = 1e-3  # added to the valid-pixel count, as in the original trainer
SCALE_RANGE = (1e-6, 1e6)


def normalize_sample(sample: Mapping[str, Any]) -> dict[str, Any]:
    """Re-express a sample (or a batch) in frame 0's camera and divide by the mean point distance.

    Convention: ``E'_i = E_i E_0^-1``; ``X' = R_0 X + t_0``;
    ``s = sum_valid |X'| / (N_valid + 1e-3)`` over all frames' valid pixels,
    clamped to [1e-6, 1e6]; ``world_points``, ``cam_points``, ``depths`` and the
    translations of ``E'`` are divided by ``s``; NaN/inf become 0. Invalid pixels
    keep zero points and depth. Tracks (pixels) and intrinsics are unchanged.

    Args:
        sample: a contract sample (``images [S, 3, H, W]``) or a batch of them
            (``[B, S, 3, H, W]``, as from :func:`vggt3d.data.make_dataloader`).

    Returns:
        A new dict with the normalised tensors and ``normalization_scale``: a float32
        tensor, ``[]`` for a sample or ``[B]`` for a batch.
    """
    for key in ("cam_from_world", "world_points", "point_masks", "depths", "cam_points"):
        if key not in sample:
            raise KeyError(f"normalize_sample: the sample has no {key!r}")
    extrinsics = sample["cam_from_world"]
    batched = extrinsics.dim() == 4  # [B, S, 3, 4]
    if extrinsics.dim() not in (3, 4) or extrinsics.shape[-2:] != (3, 4):
        raise ValueError(f"normalize_sample: cam_from_world must be [S, 3, 4] or [B, S, 3, 4], "
                         f"got {list(extrinsics.shape)}")
    out = dict(sample)
    e = extrinsics.double() if batched else extrinsics.double()[None]  # [B, S, 3, 4]
    mask = sample["point_masks"] if batched else sample["point_masks"][None]  # [B, S, H, W]
    world = (sample["world_points"] if batched else sample["world_points"][None]).double()  # [B, S, H, W, 3]
    depths = (sample["depths"] if batched else sample["depths"][None]).double()
    cam_points = (sample["cam_points"] if batched else sample["cam_points"][None]).double()

    relative = relative_to_first(e)  # [B, S, 3, 4]
    rotation0, translation0 = e[:, 0, :, :3], e[:, 0, :, 3]  # [B, 3, 3], [B, 3]
    # World points into camera 0's frame: X' = R_0 X + t_0, one [S*H*W, 3] set per batch element.
    flat = world.reshape(world.shape[0], -1, 3)  # [B, S*H*W, 3]
    world0 = (flat @ rotation0.transpose(1, 2) + translation0[:, None, :]).reshape(world.shape)
    world0 = world0 * mask[..., None]
    distance = world0.norm(dim=-1)  # [B, S, H, W]
    count = mask.flatten(1).sum(1).double()  # [B]
    scale = (distance.flatten(1).sum(1) / (count + SCALE_EPS)).clamp(*SCALE_RANGE)  # [B]

    inv = (1.0 / scale)[:, None, None, None]  # [B, 1, 1, 1]
    relative = relative.clone()
    relative[:, 0] = torch.eye(3, 4, dtype=relative.dtype)  # exactly [I | 0] by definition
    relative[..., 3] = relative[..., 3] * (1.0 / scale)[:, None, None]

    def finish(value: torch.Tensor) -> torch.Tensor:
        value = torch.nan_to_num(value, nan=0.0, posinf=0.0, neginf=0.0).float()
        return value if batched else value[0]

    out["cam_from_world"] = finish(relative)
    out["world_points"] = finish(world0 * inv[..., None])
    out["cam_points"] = finish(cam_points * inv[..., None])
    out["depths"] = finish(depths * inv)
    out["normalization_scale"] = scale.float() if batched else scale.float()[0]
    return out
