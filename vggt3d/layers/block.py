"""Pre-norm transformer block with layer scale (DINOv2/v3, the VGGT aggregators and camera trunks).

:class:`BlockSpec` holds the parts a block is made of (width, heads, norm
epsilon, QK-norm, key-bias masking, layer-scale init); the model families
derive one spec per stack from their config and build blocks from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
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

    def forward_token_chunked(self, x: torch.Tensor, positions: object = None, attn_bias: torch.Tensor | None = None,
                              kv_hook: KVHook | None = None, token_chunk: int = 4096) -> torch.Tensor:
        """:meth:`forward` with everything but the attention kernel run ``token_chunk`` tokens at a time.

        ``x`` ``[N, P, C]``. The norms, the ``qkv`` projection (QK-norm and
        RoPE), the output projection and the MLP are token-wise, so they run on
        ``[N, token_chunk, C]`` slices; only SDPA sees all ``P`` tokens (its
        fused kernels need no ``P x P`` matrix). The working set beyond
        ``q, k, v`` and the attention output (``4 N P C``) is that of one chunk
        instead of the MLP's ``2 mlp_ratio N P C``. Equal to :meth:`forward`
        within float rounding. ``positions``: ``[N, P, 2]`` RoPE positions or ``None``.
        """
        N, P, C = x.shape
        if token_chunk <= 0 or token_chunk >= P:
            return self.forward(x, positions, attn_bias, kv_hook)
        if positions is not None and not isinstance(positions, torch.Tensor):
            raise TypeError("token-chunked blocks take per-token position tensors [N, P, 2] or None")
        attn = self.attn
        heads, hd = attn.num_heads, attn.head_dim
        q = k = v = None  # [N, heads, P, head_dim], allocated in the projection's (autocast) dtype
        for a in range(0, P, token_chunk):
            b = min(a + token_chunk, P)
            qkv = attn.qkv(self.norm1(x[:, a:b])).reshape(N, b - a, 3, heads, hd)
            qc, kc, vc = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [N, heads, p, head_dim]
            qc, kc = attn.q_norm(qc), attn.k_norm(kc)
            if attn.rope is not None:
                if positions is None:
                    raise ValueError("this attention layer uses RoPE and needs token positions")
                pos = positions[:, a:b]
                qc, kc = attn.rope(qc, pos), attn.rope(kc, pos)
            if q is None:
                q, k, v = (t.new_empty(N, heads, P, hd) for t in (qc, kc, vc))
            q[:, :, a:b], k[:, :, a:b], v[:, :, a:b] = qc, kc, vc
            del qkv, qc, kc, vc
        if kv_hook is not None:
            k, v = kv_hook(k, v)  # [N, heads, P_kv, head_dim]
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias)  # [N, heads, P, head_dim]
        del q, k, v
        out = torch.empty_like(x)  # [N, P, C]
        for a in range(0, P, token_chunk):
            b = min(a + token_chunk, P)
            y = x[:, a:b] + self.ls1(attn.proj(o[:, :, a:b].transpose(1, 2).reshape(N, b - a, C)))
            out[:, a:b] = y + self.ls2(self.mlp(self.norm2(y)))
        return out
