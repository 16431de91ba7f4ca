"""From a data-loader batch to what the model and the losses take.

Batches are dicts in the keys of :mod:`vggt3d.data.sample` with a leading
batch dimension (``images [B, S, 3, H, W]``, ``depths [B, S, H, W]``, ...).
:func:`prepare_batch` normalises the ground truth of each sequence
(TRAINING.md 3, via :func:`vggt3d.data.normalize_sample`, unless the batch
already carries ``normalization_scale``), moves it to the device, and adds
``gt_pose_enc [B, S, 9]`` and, for the track loss, ``query_points [B, N, 2]``
with their ``query_tracks`` / ``query_visibility``.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor

from vggt3d.geometry import cameras_to_pose_encoding

def normalize_batch(batch: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`vggt3d.data.normalize_sample` on a batch (a no-op if it already carries ``normalization_scale``)."""
    if "normalization_scale" in batch:
        return dict(batch)
    from vggt3d.data import normalize_sample  # training-time dependency only

    return normalize_sample(batch)


def slice_batch(batch: Mapping[str, Any], start: int, stop: int) -> dict[str, Any]:
    """Sequences ``start:stop`` of a batch (tensors and per-sequence lists are sliced, the rest kept)."""
    B = batch["images"].shape[0]
    out = {}
    for k, v in batch.items():
        if isinstance(v, Tensor) and v.dim() > 0 and v.shape[0] == B:
            out[k] = v[start:stop]
        elif isinstance(v, (list, tuple)) and len(v) == B:
            out[k] = v[start:stop]
        else:
            out[k] = v
    return out


def prepare_batch(batch: Mapping[str, Any], device: torch.device | str = "cpu", track_queries: int = 0,
                  normalize: bool = True) -> dict[str, Any]:
    """Normalised ground truth on ``device`` plus ``gt_pose_enc`` and track queries.

    Args:
        batch: a collated batch (``images [B, S, 3, H, W]`` ...).
        track_queries: if > 0 and the batch has ``tracks``, the first
            ``track_queries`` tracks become ``query_points [B, N, 2]`` (their
            frame-0 positions), ``query_tracks [B, S, N, 2]`` and
            ``query_visibility [B, S, N]``.
    """
    batch = normalize_batch(batch) if normalize else dict(batch)
    out = {k: (v.to(device, non_blocking=True) if isinstance(v, Tensor) else v) for k, v in batch.items()}
    H, W = out["images"].shape[-2:]
    out["images"] = out["images"].float()
    out["point_masks"] = out["point_masks"].bool()
    out["gt_pose_enc"] = cameras_to_pose_encoding(out["cam_from_world"].float(), out["intrinsics"].float(), (H, W))
    if track_queries > 0 and "tracks" in out:
        tracks = torch.nan_to_num(out["tracks"][:, :, :track_queries].float())  # [B, S, N, 2]
        out["query_tracks"] = tracks
        out["query_visibility"] = out["track_visibility"][:, :, :track_queries].bool()
        out["query_points"] = tracks[:, 0]  # [B, N, 2] pixels in frame 0
    return out


def num_images(batch: Mapping[str, Any]) -> int:
    """B * S of a batch."""
    B, S = batch["images"].shape[:2]
    return int(B * S)
