"""Alternating-attention aggregator (VGGT Sec. 3.3, Wang et al. 2025).

Every frame is encoded by the DINOv2-style encoder, prefixed with one camera
token and R register tokens, and then passed through ``depth`` pairs of
(frame attention, global attention) blocks:

- frame attention sees each frame alone: tokens ``[B*S, P, C]``;
- global attention sees all frames of a sequence: tokens ``[B, S*P, C]``.

Layer ``i`` of the output is ``concat(frame_block_i(...), global_block_i(...))``
along channels, ``[B, S, P, 2C]``. Only the layers a caller asks for are kept,
which is most of the memory saving over keeping all of them.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from .config import AggregatorConfig, EncoderConfig
from .encoder import DinoEncoder
from .layers import Block, RotaryEmbedding2D, grid_positions

#: ImageNet statistics; the model normalizes internally, loaders return [0, 1] RGB.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _first_and_rest(token: torch.Tensor, B: int, S: int) -> torch.Tensor:
    """``[1, 2, X, C]`` -> ``[B*S, X, C]``: slot 0 for frame 0 of each sequence, slot 1 for the others."""
    first = token[:, :1].expand(B, 1, *token.shape[2:])
    rest = token[:, 1:].expand(B, S - 1, *token.shape[2:])
    return torch.cat([first, rest], dim=1).reshape(B * S, *token.shape[2:])


class Aggregator(nn.Module):
    """Images ``[B, S, 3, H, W]`` in [0, 1] -> selected layers ``{i: [B, S, P, 2C]}``.

    ``P = 1 + R + h*w`` tokens per frame in the order [camera, registers, patches].
    """

    def __init__(self, config: AggregatorConfig, encoder: EncoderConfig, img_size: int, patch_size: int) -> None:
        super().__init__()
        C = config.embed_dim
        self.depth = config.depth
        self.patch_size = patch_size
        self.patch_start_idx = 1 + config.num_register_tokens
        self.patch_embed = DinoEncoder(encoder, img_size, patch_size)
        self.rope = RotaryEmbedding2D(base=100.0)
        self.frame_blocks = nn.ModuleList(
            Block(C, config.num_heads, config.mlp_ratio, layer_scale_init=0.01, qk_norm=True, rope=self.rope)
            for _ in range(config.depth)
        )
        self.global_blocks = nn.ModuleList(
            Block(C, config.num_heads, config.mlp_ratio, layer_scale_init=0.01, qk_norm=True, rope=self.rope)
            for _ in range(config.depth)
        )
        self.camera_token = nn.Parameter(torch.zeros(1, 2, 1, C))
        self.register_token = nn.Parameter(torch.zeros(1, 2, config.num_register_tokens, C))
        self.grad_checkpointing = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable
        self.patch_embed.grad_checkpointing = enable

    def _run(self, block: nn.Module, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(block, x, pos, use_reentrant=False)
        return block(x, pos)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """DINOv2 patch tokens ``[B*S, h*w, C]`` of images ``[B, S, 3, H, W]`` in [0, 1]."""
        B, S, _, H, W = images.shape
        mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(1, 1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(1, 1, 3, 1, 1)
        x = (images - mean) / std
        return self.patch_embed(x.reshape(B * S, 3, H, W))

    def forward(self, images: torch.Tensor, layers: Iterable[int]) -> dict[int, torch.Tensor]:
        keep = sorted(set(int(i) for i in layers))
        bad = [i for i in keep if not 0 <= i < self.depth]
        if bad:
            raise ValueError(f"aggregator layers {bad} out of range [0, {self.depth})")
        B, S, _, H, W = images.shape
        h, w = H // self.patch_size, W // self.patch_size
        patches = self.encode(images)  # [B*S, h*w, C]
        C = patches.shape[-1]
        specials = [_first_and_rest(self.camera_token, B, S), _first_and_rest(self.register_token, B, S)]
        x = torch.cat([t.to(patches.dtype) for t in specials] + [patches], dim=1)  # [B*S, P, C]
        P = x.shape[1]
        pos = grid_positions(B * S, h, w, self.patch_start_idx, device=images.device)  # [B*S, P, 2]
        pos_global = pos.reshape(B, S * P, 2)  # [B, S*P, 2]

        out: dict[int, torch.Tensor] = {}
        last = keep[-1] if keep else -1
        for i in range(last + 1):
            x = self._run(self.frame_blocks[i], x, pos)  # [B*S, P, C]
            frame_out = x.reshape(B, S, P, C) if i in out or i in keep else None
            x = self._run(self.global_blocks[i], x.reshape(B, S * P, C), pos_global)  # [B, S*P, C]
            if frame_out is not None:
                out[i] = torch.cat([frame_out, x.reshape(B, S, P, C)], dim=-1)  # [B, S, P, 2C]
            x = x.reshape(B * S, P, C)  # [B*S, P, C]
        return out
