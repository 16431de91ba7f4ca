"""Multi-head self-attention with optional QK-norm and 2D RoPE.

QK-norm (LayerNorm on each head's queries and keys, Dehghani et al. 2023) and
RoPE are used by the VGGT aggregator; the DINOv2 encoder and the camera-head
trunk use plain attention. The kernel is
:func:`torch.nn.functional.scaled_dot_product_attention`, which picks a fused
(flash / memory-efficient) implementation where one exists.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .rope import RotaryEmbedding2D


class Attention(nn.Module):
    """Self-attention over ``[N, P, C]`` tokens; parameters ``qkv``, ``q_norm``, ``k_norm``, ``proj``."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool = False, rope: RotaryEmbedding2D | None = None,
                 norm_eps: float = 1e-5) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = nn.LayerNorm(self.head_dim, eps=norm_eps) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim, eps=norm_eps) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)
        self.rope = rope

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        N, P, C = x.shape
        qkv = self.qkv(x).reshape(N, P, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [N, heads, P, head_dim]
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope is not None:
            if positions is None:
                raise ValueError("this attention layer uses RoPE and needs token positions")
            q, k = self.rope(q, positions), self.rope(k, positions)
        x = F.scaled_dot_product_attention(q, k, v)  # [N, heads, P, head_dim]
        x = x.transpose(1, 2).reshape(N, P, C)  # [N, P, C]
        return self.proj(x)
