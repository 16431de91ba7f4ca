"""DINOv2-style ViT encoder with register tokens.

Oquab et al., "DINOv2: Learning Robust Visual Features without Supervision"
(2023) and Darcet et al., "Vision Transformers Need Registers" (ICLR 2024).
VGGT uses a ViT-L/14 with 4 registers; its parameters live under
``aggregator.patch_embed.`` in the checkpoint.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import EncoderConfig
from .layers import Block, PatchEmbed


class DinoEncoder(nn.Module):
    """Encode frames independently: ``[N, 3, H, W]`` (normalized) -> patch tokens ``[N, h*w, C]``.

    Token layout inside the encoder: ``[class, registers, patches]``; the
    position embedding is stored for a square grid of ``img_size / patch``
    patches (37x37 for VGGT-1B) and resized bicubically (antialiased, by output
    size) to any other grid ``h x w``. The output is the final LayerNorm of the
    patch tokens only; ``mask_token`` is kept for checkpoint compatibility and
    is unused at inference.
    """

    def __init__(self, config: EncoderConfig, img_size: int, patch_size: int) -> None:
        super().__init__()
        C = config.embed_dim
        self.patch_size = patch_size
        self.num_register_tokens = config.num_register_tokens
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, 3, C)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, C))
        self.register_tokens = nn.Parameter(torch.zeros(1, config.num_register_tokens, C))
        self.mask_token = nn.Parameter(torch.zeros(1, C), requires_grad=False)
        self.blocks = nn.ModuleList(
            Block(C, config.num_heads, config.mlp_ratio, layer_scale_init=1.0, norm_eps=1e-6)
            for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(C, eps=1e-6)
        self.grad_checkpointing = False

    def position_embedding(self, h: int, w: int) -> torch.Tensor:
        """Position embedding for an ``h x w`` patch grid: ``[1, 1 + h*w, C]`` (class slot first)."""
        stored = self.pos_embed
        M = int(math.isqrt(stored.shape[1] - 1))
        if h == M and w == M:
            return stored
        cls_pos, patch_pos = stored[:, :1], stored[:, 1:].float()
        grid = patch_pos.reshape(1, M, M, -1).permute(0, 3, 1, 2)  # [1, C, M, M]
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", antialias=True)  # [1, C, h, w]
        patch_pos = grid.permute(0, 2, 3, 1).reshape(1, h * w, -1).to(stored.dtype)  # [1, h*w, C]
        return torch.cat([cls_pos, patch_pos], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        N, _, H, W = images.shape
        h, w = H // self.patch_size, W // self.patch_size
        x = self.patch_embed(images)  # [N, h*w, C]
        x = torch.cat([self.cls_token.expand(N, -1, -1), x], dim=1)  # [N, 1 + h*w, C]
        x = x + self.position_embedding(h, w)
        x = torch.cat([x[:, :1], self.register_tokens.expand(N, -1, -1), x[:, 1:]], dim=1)  # [N, 1+R+h*w, C]
        for block in self.blocks:
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        x = self.norm(x)
        return x[:, 1 + self.num_register_tokens:]  # [N, h*w, C]
