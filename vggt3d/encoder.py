"""Per-frame ViT encoders and their registry (``encoder.kind`` of the model config).

Both map normalized frames ``[N, 3, H, W]`` to the final-LayerNorm patch
tokens ``[N, h*w, C]`` (row-major patches); their parameters live under
``aggregator.patch_embed.`` in the checkpoints.

- ``dinov2``: DINOv2-style ViT with registers (Oquab et al., "DINOv2", 2023;
  Darcet et al., "Vision Transformers Need Registers", ICLR 2024), as in
  VGGT-1B (ViT-L/14, 4 registers).
- ``dinov3``: DINOv3-style ViT (Simeoni et al., "DINOv3", 2025), as in
  VGGT-Omega (ViT-L/16): no absolute position embedding, RoPE on the patch
  tokens, 4 storage tokens, no bias on the keys.

A new encoder is one class with this constructor and ``forward`` plus one
line in :data:`ENCODERS`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import EncoderConfig
from .layers import BlockSpec, DinoRope2D, PatchEmbed


class _ViTEncoder(nn.Module):
    """Shared parts: patch embedding, class token, blocks, final norm, gradient checkpointing."""

    def __init__(self, config: EncoderConfig, patch_size: int, spec: BlockSpec, rope: nn.Module | None) -> None:
        super().__init__()
        C = config.embed_dim
        self.patch_size = patch_size
        self.num_register_tokens = config.num_register_tokens
        self.patch_embed = PatchEmbed(patch_size, 3, C)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.mask_token = nn.Parameter(torch.zeros(1, C), requires_grad=False)
        self.blocks = nn.ModuleList(spec.build(rope) for _ in range(config.depth))
        self.norm = nn.LayerNorm(C, eps=config.norm_eps)
        self.grad_checkpointing = False

    def _blocks(self, x: torch.Tensor, positions: object = None) -> torch.Tensor:
        for block in self.blocks:
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(block, x, positions, use_reentrant=False)
            else:
                x = block(x, positions)
        return x


class DinoV2Encoder(_ViTEncoder):
    """DINOv2-style: ``[N, 3, H, W]`` (normalized) -> patch tokens ``[N, h*w, C]``.

    Token layout inside the encoder: ``[class, registers, patches]``; the
    position embedding is stored for a square grid of ``img_size / patch``
    patches (37x37 for VGGT-1B) and resized bicubically (antialiased, by output
    size) to any other grid ``h x w``. The output is the final LayerNorm of the
    patch tokens only; ``mask_token`` is kept for checkpoint compatibility and
    is unused at inference.
    """

    def __init__(self, config: EncoderConfig, img_size: int, patch_size: int) -> None:
        spec = BlockSpec(config.embed_dim, config.num_heads, config.mlp_ratio, layer_scale_init=1.0,
                         norm_eps=config.norm_eps)
        super().__init__(config, patch_size, spec, None)
        C = config.embed_dim
        grid = img_size // patch_size
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, C))
        self.register_tokens = nn.Parameter(torch.zeros(1, config.num_register_tokens, C))

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
        x = self.norm(self._blocks(x))
        return x[:, 1 + self.num_register_tokens:]  # [N, h*w, C]


#: Kept name of the VGGT-1B encoder.
DinoEncoder = DinoV2Encoder


class DinoV3Encoder(_ViTEncoder):
    """DINOv3-style: ``[N, 3, H, W]`` (normalized) -> patch tokens ``[N, h*w, C]``.

    Token layout: ``[class, R storage tokens, patches]``; position only from
    :class:`~vggt3d.layers.DinoRope2D` on the patch tokens (buffer
    ``rope_embed.periods``); k-bias masking in every block; LayerNorm eps from
    the config (1e-5). ``img_size`` has no effect (there is no position grid).
    """

    def __init__(self, config: EncoderConfig, img_size: int, patch_size: int) -> None:
        if config.rope_base is None:
            raise ValueError("a dinov3 encoder needs encoder.rope_base")
        rope = DinoRope2D(config.embed_dim // config.num_heads, config.rope_base)
        spec = BlockSpec(config.embed_dim, config.num_heads, config.mlp_ratio, layer_scale_init=1e-5,
                         norm_eps=config.norm_eps, k_bias_mask=True)
        super().__init__(config, patch_size, spec, rope)
        self.rope_embed = rope
        self.storage_tokens = nn.Parameter(torch.zeros(1, config.num_register_tokens, config.embed_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        N, _, H, W = images.shape
        h, w = H // self.patch_size, W // self.patch_size
        x = self.patch_embed(images)  # [N, h*w, C]
        cls = self.cls_token + 0 * self.mask_token  # the original's no-op, kept so gradients reach the same tensors
        x = torch.cat([cls.expand(N, -1, -1), self.storage_tokens.expand(N, -1, -1), x], dim=1)  # [N, 1+R+h*w, C]
        grid = self.rope_embed.grid(h, w, 1 + self.num_register_tokens, device=x.device)
        x = self.norm(self._blocks(x, grid))
        return x[:, 1 + self.num_register_tokens:]  # [N, h*w, C]


#: ``encoder.kind`` -> class; every class takes ``(config, img_size, patch_size)``.
ENCODERS: dict[str, type[nn.Module]] = {"dinov2": DinoV2Encoder, "dinov3": DinoV3Encoder}


def build_encoder(config: EncoderConfig, img_size: int, patch_size: int) -> nn.Module:
    """The encoder of ``config.kind`` (:data:`ENCODERS`)."""
    try:
        cls = ENCODERS[config.kind]
    except KeyError:
        raise ValueError(f"unknown encoder kind {config.kind!r}; choose from {sorted(ENCODERS)}") from None
    return cls(config, img_size, patch_size)
