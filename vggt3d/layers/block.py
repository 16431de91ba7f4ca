"""Pre-norm transformer block with layer scale (DINOv2/v3, the VGGT aggregators and camera trunks).

:class:`BlockSpec` holds the parts a block is made of (width, heads, norm
epsilon, QK-norm, key-bias masking, layer-scale init); the model families
derive one spec per stack from their config and build blocks from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .attention import Attention, KVHook, PositionalRotation
from .layer_scale import LayerScale
from .mlp import Mlp


@dataclass(frozen=True)
class BlockSpec:
    """The parts of a :class:`Block`: ``dim`` wide, ``num_heads`` heads, MLP ``mlp_ratio * dim``.

    ``norm_eps``: LayerNorm epsilon of ``norm1``/``norm2`` (and the QK-norm);
    ``qk_norm``: LayerNorm on each head's q and k; ``k_bias_mask``: no bias on
    the keys (``qkv.bias_mask``); ``layer_scale_init``: initial ``gamma``.
    """

    dim: int
    num_heads: int
    mlp_ratio: float = 4.0
    layer_scale_init: float = 0.01
    qk_norm: bool = False
    norm_eps: float = 1e-5
    qk_norm_eps: float = 1e-5
    k_bias_mask: bool = False

    def build(self, rope: PositionalRotation | None = None) -> "Block":
        return Block(self.dim, self.num_heads, self.mlp_ratio, layer_scale_init=self.layer_scale_init,
                     qk_norm=self.qk_norm, rope=rope, norm_eps=self.norm_eps, k_bias_mask=self.k_bias_mask,
                     qk_norm_eps=self.qk_norm_eps)


class Block(nn.Module):
    """``x + ls1(attn(norm1(x)))`` then ``x + ls2(mlp(norm2(x)))`` on ``[N, P, C]`` tokens.

    ``attn_bias`` and ``kv_hook`` go to :class:`Attention` (masks, KV caches).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, layer_scale_init: float = 0.01,
                 qk_norm: bool = False, rope: PositionalRotation | None = None, norm_eps: float = 1e-5,
                 k_bias_mask: bool = False, qk_norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qk_norm=qk_norm, rope=rope, norm_eps=qk_norm_eps,
                              k_bias_mask=k_bias_mask)
        self.ls1 = LayerScale(dim, layer_scale_init)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, layer_scale_init)

    def forward(self, x: torch.Tensor, positions: object = None, attn_bias: torch.Tensor | None = None,
                kv_hook: KVHook | None = None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), positions, attn_bias, kv_hook))
        return x + self.ls2(self.mlp(self.norm2(x)))
