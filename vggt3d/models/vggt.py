"""The VGGT-1B family (Wang et al., "VGGT: Visual Geometry Grounded Transformer", CVPR 2025).

DINOv2-style encoder, :class:`~vggt3d.aggregator.Aggregator` (frame and global
attention with 2D RoPE), iterative camera head, DPT depth and point heads and
a CoTracker-style track head. Checkpoint names: ``aggregator.*``,
``camera_head.*``, ``depth_head.*``, ``point_head.*``, ``track_head.*``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..aggregator import Aggregator
from ..config import ModelConfig
from ..heads.camera import CameraHead
from ..heads.dpt import DPTHead
from ..heads.track import TrackHead

HEAD_ATTRIBUTES = {"camera": "camera_head", "depth": "depth_head", "point": "point_head", "track": "track_head"}
#: causal attention over frames (``model(images, causal=True)``, streams) is supported
SUPPORTS_CAUSAL = True


def build(model: nn.Module, config: ModelConfig) -> None:
    C2 = 2 * config.aggregator.embed_dim
    p = config.patch_size
    model.aggregator = Aggregator(config.aggregator, config.encoder, config.img_size, p)
    heads = set(config.heads)
    d = config.dense_head
    model.camera_head = CameraHead(config.camera_head, C2) if "camera" in heads else None
    model.point_head = (DPTHead(C2, p, d.features, d.out_channels, d.layers, output_dim=4, activation="inv_log")
                        if "point" in heads else None)
    model.depth_head = (DPTHead(C2, p, d.features, d.out_channels, d.layers, output_dim=2, activation="exp")
                        if "depth" in heads else None)
    model.track_head = TrackHead(config.track_head, C2, p) if "track" in heads else None
    model.text_alignment_head = None  # not in this family


def head_modules(model: Any) -> dict[str, nn.Module]:
    return {name: getattr(model, attr) for name, attr in HEAD_ATTRIBUTES.items() if getattr(model, attr) is not None}


def head_layers(model: Any, track: bool) -> list[int]:
    layers: set[int] = set()
    if model.camera_head is not None:
        layers.add(model.config.aggregator.depth - 1)
    for head in (model.depth_head, model.point_head):
        if head is not None:
            layers.update(head.layers)
    if track and model.track_head is not None:
        layers.update(model.track_head.feature_extractor.layers)
    return sorted(layers)


def check_queries(model: Any, image_size: tuple[int, int]) -> None:
    """Tracking needs the track head and images large enough for its correlation pyramid."""
    if model.track_head is None:
        raise ValueError("query_points were given but this model has no track head "
                         f"(config.heads = {model.config.heads})")
    need = model.track_head.min_image_size()
    if min(image_size) < need:
        raise ValueError(f"tracking with {model.track_head.corr_levels} correlation levels needs images of at "
                         f"least {need}x{need} pixels, got {image_size[0]}x{image_size[1]}")


def forward_heads(model: Any, tokens: dict[int, torch.Tensor], image_size: tuple[int, int],
                  query_points: torch.Tensor | None, causal: Any = None) -> dict[str, torch.Tensor]:
    """``causal``: None, or a frame-attention policy for the heads that mix frames (camera trunk, tracker)."""
    H, W = image_size
    start = model.aggregator.patch_start_idx
    out: dict[str, Any] = {}
    if model.camera_head is not None:
        poses = model.camera_head(tokens[model.config.aggregator.depth - 1], causal=causal)
        out["pose_enc"] = poses[-1]
        out["pose_enc_list"] = poses
    if model.depth_head is not None:
        out["depth"], out["depth_conf"] = model.depth_head(tokens, (H, W), start)
    if model.point_head is not None:
        out["world_points"], out["world_points_conf"] = model.point_head(tokens, (H, W), start)
    if query_points is not None:
        tracks, vis_logits, conf_logits = model.track_head(tokens, (H, W), start, query_points,
                                                           causal=causal is not None)
        out["track"], out["track_list"] = tracks[-1], tracks
        out["vis"], out["conf"] = torch.sigmoid(vis_logits), torch.sigmoid(conf_logits)
        out["vis_logits"], out["conf_logits"] = vis_logits, conf_logits
    return out
