"""VGGT-Omega's depth decoder: DPT front end and fusion, then 1x1 convs and a pixel shuffle.

Differences from :class:`~.dpt.DPTHead` (VGGT-1B): the residual units' skip
path carries ``x`` (not ``relu(x)``); ``refinenet1`` keeps l1's size (no x2
upsampling); there are no ``output_conv1/2``. The fused map ``[N, F, 4h, 4w]``
gets the position embedding again, then ``proj`` (depth) and ``proj_conf``
(confidence), each ``F -> (p/4)^2`` channels, are pixel-shuffled by ``p/4``
to ``[N, 1, H, W]``. ``depth = exp(.)`` ``[B, S, H, W, 1]``,
``depth_conf = 1 + exp(.)`` ``[B, S, H, W]``. Parameters: ``dense_head.*``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .dpt import DPTHead


class ShuffleDPTHead(DPTHead):
    """Aggregator layers ``{i: [B, S, P, 2C]}`` -> ``(depth [B, S, H, W, 1], conf [B, S, H, W])``."""

    def __init__(self, dim_in: int, patch_size: int, features: int, out_channels: Sequence[int],
                 layers: Sequence[int], frames_chunk_size: int = 8, norm_eps: float = 1e-5) -> None:
        nn.Module.__init__(self)
        if patch_size % 4:
            raise ValueError(f"the pixel-shuffle decoder needs a patch size divisible by 4, got {patch_size}")
        self.patch_size = patch_size
        self.layers = list(layers)
        self.activation = "exp"
        self.use_pos_embed = True
        self.feature_only = False
        self.down_ratio = 1
        self.frames_chunk_size = frames_chunk_size
        self.shuffle = patch_size // 4
        self._build_front_end(dim_in, out_channels, features, norm_eps=norm_eps, relu_skip=False)
        self.proj = nn.Conv2d(features, self.shuffle**2, 1)
        self.proj_conf = nn.Conv2d(features, self.shuffle**2, 1)

    def _decode(self, tokens: Sequence[torch.Tensor], H: int, W: int) -> torch.Tensor:
        """Tokens (patches only) ``4 x [N, h*w, 2C]`` -> ``[N, 2, H, W]`` (raw depth, raw confidence)."""
        out = self._fuse(tokens, H, W, upsample_last=False)  # [N, F, 4h, 4w]
        out = self._add_pos(out, H, W)
        depth = F.pixel_shuffle(self.proj(out), self.shuffle)  # [N, 1, H, W]
        conf = F.pixel_shuffle(self.proj_conf(out), self.shuffle)  # [N, 1, H, W]
        return torch.cat([depth, conf], dim=1)  # [N, 2, H, W]
