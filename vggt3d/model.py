"""The assembled model: aggregator + camera, depth, point and track heads.

``VGGT3D()`` is the VGGT-1B architecture (Wang et al., "VGGT: Visual Geometry
Grounded Transformer", CVPR 2025); its ``state_dict`` has exactly the names and
shapes of the public ``facebook/VGGT-1B`` checkpoint.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Sequence

import torch
from torch import nn

from .config import ModelConfig
from .aggregator import Aggregator
from .hub import PretrainedMixin
from .heads.camera import CameraHead
from .heads.dpt import DPTHead
from .heads.track import TrackHead
from .runtime import autocast_dtype


class VGGT3D(PretrainedMixin, nn.Module):
    """Feed-forward multi-view geometry.

    ``forward(images, query_points=None)`` takes RGB images in [0, 1] of shape
    ``[S, 3, H, W]`` or ``[B, S, 3, H, W]`` (H, W multiples of the patch size,
    14) and returns a dict with the original VGGT keys:

    - ``pose_enc`` ``[B, S, 9]`` and ``pose_enc_list`` (one per refinement
      iteration): ``[tx, ty, tz, qx, qy, qz, qw, fov_h, fov_w]`` of
      ``cam_from_world`` (OpenCV axes, frame 0 is the world); decode with
      :func:`vggt3d.geometry.pose_encoding_to_cameras`.
    - ``depth`` ``[B, S, H, W, 1]`` (z in each camera) and ``depth_conf`` ``[B, S, H, W]``.
    - ``world_points`` ``[B, S, H, W, 3]`` (frame 0's camera coordinates) and ``world_points_conf``.
    - with ``query_points`` ``[N, 2]`` or ``[B, N, 2]`` (pixels ``(x, y)`` in
      frame 0, pixel centres at integers): ``track`` ``[B, S, N, 2]``, ``vis``
      and ``conf`` ``[B, S, N]`` in [0, 1]; also ``track_list`` (every
      iteration) and ``vis_logits`` / ``conf_logits`` (pre-sigmoid, for losses).

    On CUDA the aggregator runs under bf16 (fp16 where bf16 is unsupported)
    autocast and the heads in fp32, as the original does; on CPU everything is fp32.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config = config if config is not None else ModelConfig()
        C2 = 2 * config.aggregator.embed_dim
        p = config.patch_size
        self.aggregator = Aggregator(config.aggregator, config.encoder, config.img_size, p)
        heads = set(config.heads)
        self.camera_head = CameraHead(config.camera_head, C2) if "camera" in heads else None
        d = config.dense_head
        self.point_head = (DPTHead(C2, p, d.features, d.out_channels, d.layers, output_dim=4, activation="inv_log")
                           if "point" in heads else None)
        self.depth_head = (DPTHead(C2, p, d.features, d.out_channels, d.layers, output_dim=2, activation="exp")
                           if "depth" in heads else None)
        self.track_head = TrackHead(config.track_head, C2, p) if "track" in heads else None
        self.autocast = True

    # ------------------------------------------------------------------ inputs
    def _check_images(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.dim() == 4:
            images = images.unsqueeze(0)
        if images.dim() != 5:
            raise ValueError(f"images must be [S, 3, H, W] or [B, S, 3, H, W], got shape {tuple(images.shape)}")
        B, S, C, H, W = images.shape
        if C != 3:
            raise ValueError(f"images must have 3 (RGB) channels in dim -3, got {C} (shape {tuple(images.shape)})")
        if B == 0 or S == 0 or H == 0 or W == 0:
            raise ValueError(f"images is empty (shape {tuple(images.shape)})")
        p = self.config.patch_size
        if H % p or W % p:
            raise ValueError(
                f"image height and width must be multiples of the patch size {p}, got {H}x{W}; "
                f"resize or crop them (vggt3d.load_images does this)"
            )
        if not images.is_floating_point():
            raise TypeError(f"images must be floating point RGB in [0, 1], got dtype {images.dtype}")
        return images

    def _check_queries(self, query_points: torch.Tensor, B: int) -> torch.Tensor:
        if self.track_head is None:
            raise ValueError("query_points were given but this model has no track head (config.heads)")
        q = query_points
        if q.dim() == 2:
            q = q.unsqueeze(0)
        if q.dim() != 3 or q.shape[-1] != 2:
            raise ValueError(f"query_points must be [N, 2] or [B, N, 2] pixel (x, y), got shape {tuple(query_points.shape)}")
        if q.shape[0] != B:
            if q.shape[0] == 1:
                q = q.expand(B, -1, -1)
            else:
                raise ValueError(f"query_points batch {q.shape[0]} does not match images batch {B}")
        if q.shape[1] == 0:
            raise ValueError("query_points is empty (N = 0)")
        return q.float()

    # ----------------------------------------------------------------- helpers
    def head_layers(self) -> list[int]:
        """Aggregator layers read by the enabled heads (all that ``forward`` keeps)."""
        layers: set[int] = set()
        if self.camera_head is not None:
            layers.add(self.config.aggregator.depth - 1)
        for head in (self.depth_head, self.point_head):
            if head is not None:
                layers.update(head.layers)
        if self.track_head is not None:
            layers.update(self.track_head.feature_extractor.layers)
        return sorted(layers)

    def _aggregate(self, images: torch.Tensor, layers: Iterable[int]) -> dict[int, torch.Tensor]:
        dtype = autocast_dtype(images.device) if self.autocast else None
        ctx = torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with ctx:
            return self.aggregator(images, layers)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute aggregator blocks in the backward pass (saves memory when training)."""
        self.aggregator.set_grad_checkpointing(enable)

    def forward_intermediates(self, images: torch.Tensor, layers: Sequence[int] | None = None) -> dict[int, torch.Tensor]:
        """Aggregator tokens ``{layer: [B, S, P, 2C]}`` for the requested layers (default: all).

        ``P = 1 + R + h*w``: token 0 is the camera token, then R register
        tokens, then the patch tokens in row-major order. Layers past the last
        requested one are not computed.
        """
        images = self._check_images(images)
        depth = self.config.aggregator.depth
        layers = list(range(depth)) if layers is None else [i + depth if i < 0 else i for i in layers]
        return self._aggregate(images, layers)

    # ----------------------------------------------------------------- forward
    def forward(self, images: torch.Tensor, query_points: torch.Tensor | None = None) -> dict:
        images = self._check_images(images)
        B, S, _, H, W = images.shape
        if query_points is not None:
            query_points = self._check_queries(query_points, B)
            need = self.track_head.min_image_size()
            if min(H, W) < need:
                raise ValueError(
                    f"tracking with {self.track_head.corr_levels} correlation levels needs images of at least "
                    f"{need}x{need} pixels, got {H}x{W}"
                )
        tokens = self._aggregate(images, self.head_layers())
        tokens = {i: t.float() for i, t in tokens.items()}
        start = self.aggregator.patch_start_idx
        images = images.float()
        out: dict = {}
        with torch.autocast(images.device.type, enabled=False):
            if self.camera_head is not None:
                poses = self.camera_head(tokens[self.config.aggregator.depth - 1])
                out["pose_enc"] = poses[-1]
                out["pose_enc_list"] = poses
            if self.depth_head is not None:
                out["depth"], out["depth_conf"] = self.depth_head(tokens, (H, W), start)
            if self.point_head is not None:
                out["world_points"], out["world_points_conf"] = self.point_head(tokens, (H, W), start)
            if query_points is not None:
                tracks, vis_logits, conf_logits = self.track_head(tokens, (H, W), start, query_points)
                out["track"], out["track_list"] = tracks[-1], tracks
                out["vis"], out["conf"] = torch.sigmoid(vis_logits), torch.sigmoid(conf_logits)
                out["vis_logits"], out["conf_logits"] = vis_logits, conf_logits
        return out
