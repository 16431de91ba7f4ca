"""Multi-head self-attention with optional QK-norm, RoPE, key-bias masking and hooks.

QK-norm (LayerNorm on each head's queries and keys, Dehghani et al. 2023) and
RoPE are used by the aggregators; the encoders and the camera trunk use plain
attention. VGGT-Omega's blocks mask the bias of the keys (``qkv.bias_mask``).
The kernel is :func:`torch.nn.functional.scaled_dot_product_attention`, which
picks a fused (flash / memory-efficient) implementation where one exists.

Two hooks make streaming and long-sequence variants small additions (see
``docs/models.md``, "Extending the aggregator"):

- ``attn_bias``: a boolean mask (``True`` = may attend) or an additive float
  bias, broadcastable to ``[N, heads, P, P_kv]``, passed to the kernel;
- ``kv_hook(k, v) -> (k, v)``: called with this call's keys and values
  ``[N, heads, P, head_dim]`` (after QK-norm and RoPE); what it returns is
  attended over (``P_kv`` may differ from ``P``). A KV cache appends the past
  here and stores the present.
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch
import torch.nn.functional as F
from torch import nn

KVHook = Callable[[torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]


class PositionalRotation(Protocol):
    """A rotary embedding: ``rope(x [N, heads, P, head_dim], positions) -> same shape``."""

    def __call__(self, x: torch.Tensor, positions: object) -> torch.Tensor: ...


class MaskedBiasLinear(nn.Linear):
    """A fused ``qkv`` linear whose bias is multiplied by the buffer ``bias_mask`` (1 on q and v, 0 on k).

    VGGT-Omega's (DINOv3's) keys get no bias; the checkpoint stores the mask.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        third = out_features // 3
        mask = torch.ones(out_features)
        mask[third:2 * third] = 0.0
        self.register_buffer("bias_mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias * self.bias_mask)


class Attention(nn.Module):
    """Self-attention over ``[N, P, C]`` tokens; parameters ``qkv``, ``q_norm``, ``k_norm``, ``proj``."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool = False, rope: PositionalRotation | None = None,
                 norm_eps: float = 1e-5, k_bias_mask: bool = False) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = MaskedBiasLinear(dim, 3 * dim) if k_bias_mask else nn.Linear(dim, 3 * dim)
        self.q_norm = nn.LayerNorm(self.head_dim, eps=norm_eps) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim, eps=norm_eps) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)
        # Shared by all blocks of a stack and registered once by its owner (its buffers are saved there).
        object.__setattr__(self, "rope", rope)

    def forward(self, x: torch.Tensor, positions: object = None, attn_bias: torch.Tensor | None = None,
                kv_hook: KVHook | None = None) -> torch.Tensor:
        N, P, C = x.shape
        qkv = self.qkv(x).reshape(N, P, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [N, heads, P, head_dim]
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope is not None:
            if positions is None:
                raise ValueError("this attention layer uses RoPE and needs token positions")
            q, k = self.rope(q, positions), self.rope(k, positions)
        if kv_hook is not None:
            k, v = kv_hook(k, v)  # [N, heads, P_kv, head_dim]
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias)  # [N, heads, P, head_dim]
        x = x.transpose(1, 2).reshape(N, P, C)  # [N, P, C]
        return self.proj(x)
