"""Text-alignment head (VGGT-Omega-1B-256-Text-Alignment): one embedding per sequence.

Input: the last layer's special tokens per frame ``[B, S, Q, 2C]`` ->
``token_norm`` -> ``[B, S*Q, 2C]``; a learned ``language_token`` is prepended
and ``readout_blocks`` (the camera trunk's block type) attend over all of
them. Token 0 -> ``language_token_norm`` is ``text_alignment_token`` ``[B,
2C]``; ``embedding_projector`` (Linear 2C->C, GELU, LayerNorm, Linear C->2C)
and an L2 normalization give ``text_alignment_embedding`` ``[B, 2C]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vggt3d.config import TextHeadConfig
from vggt3d.layers import BlockSpec


class TextAlignmentHead(nn.Module):
    """Last aggregator layer ``[B, S, P, 2C]`` -> ``(embedding [B, 2C], token [B, 2C])``."""

    def __init__(self, config: TextHeadConfig, dim_in: int, num_special: int, norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.num_special = num_special
        spec = BlockSpec(dim_in, config.num_heads, config.mlp_ratio, layer_scale_init=1e-5, norm_eps=norm_eps,
                         k_bias_mask=True)
        self.token_norm = nn.LayerNorm(dim_in, eps=norm_eps)
        self.language_token = nn.Parameter(torch.zeros(1, 1, dim_in))
        self.readout_blocks = nn.ModuleList(spec.build() for _ in range(config.depth))
        self.language_token_norm = nn.LayerNorm(dim_in, eps=norm_eps)
        self.embedding_projector = nn.Sequential(nn.Linear(dim_in, dim_in // 2), nn.GELU(),
                                                 nn.LayerNorm(dim_in // 2, eps=norm_eps), nn.Linear(dim_in // 2, dim_in))

    def forward(self, last_layer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, S, _, C2 = last_layer.shape
        Q = self.num_special
        x = self.token_norm(last_layer[:, :, :Q]).reshape(B, S * Q, C2)  # [B, S*Q, 2C]
        x = torch.cat([self.language_token.expand(B, -1, -1), x], dim=1)  # [B, 1 + S*Q, 2C]
        for block in self.readout_blocks:
            x = block(x)
        token = self.language_token_norm(x[:, 0])  # [B, 2C]
        embedding = F.normalize(self.embedding_projector(token), dim=-1, eps=1e-12)  # [B, 2C]
        return embedding, token
