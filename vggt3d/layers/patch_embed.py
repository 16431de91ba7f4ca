"""Non-overlapping patch embedding (ViT, Dosovitskiy et al. 2021)."""

from __future__ import annotations

import torch
from torch import nn


class PatchEmbed(nn.Module):
    """``patch x patch`` convolution with stride ``patch``: ``[N, 3, H, W] -> [N, h*w, C]``.

    Tokens are in row-major patch order (row ``i = p // w``, column ``j = p % w``).
    """

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)  # [N, C, h, w]
        return x.flatten(2).transpose(1, 2)  # [N, h*w, C]
