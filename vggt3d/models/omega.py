"""The VGGT-Omega family (facebookresearch/vggt-omega, 2026): DINOv3 encoder, register attention, one-pass heads.

Differences from VGGT-1B (``tests/fixtures/golden/omega/README.md``): a
DINOv3-style encoder (patch 16, RoPE, storage tokens); 16 registers; every
aggregator block has LayerNorm eps 1e-5, QK-norm, layer scale and no key
bias; DINOv3 RoPE in frame attention only; at the register-attention layers
the inter-frame block sees only the special tokens; a one-pass trunk camera
head; a pixel-shuffle depth head; an optional text-alignment head.
Checkpoint names: ``aggregator.*`` (``inter_frame_blocks``),
``camera_head.*``, ``dense_head.*``, ``text_alignment_head.*``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..aggregator import AlternatingAggregator
from ..config import AggregatorConfig, EncoderConfig, ModelConfig
from ..heads.dpt_shuffle import ShuffleDPTHead
from ..heads.text import TextAlignmentHead
from ..heads.trunk_camera import TrunkCameraHead
from ..layers import BlockSpec, DinoRope2D

#: LayerNorm epsilon of every Omega block and head
NORM_EPS = 1e-5
HEAD_ATTRIBUTES = {"camera": "camera_head", "depth": "dense_head", "text_alignment": "text_alignment_head"}
#: ``forward`` echoes its input under ``images`` (with B added), as the original does
ECHO_IMAGES = True


class OmegaAggregator(AlternatingAggregator):
    """Frame blocks with DINOv3 RoPE (patch tokens only), inter-frame blocks without RoPE.

    Parameters ``frame_blocks.i``, ``inter_frame_blocks.i``, ``rope_embed.periods``.
    At the layers in ``register_attention_layers`` the inter-frame block runs
    on the ``Q = 1 + R`` special tokens of every frame, ``[B, S*Q, C]``.
    """

    def __init__(self, config: AggregatorConfig, encoder: EncoderConfig, img_size: int, patch_size: int) -> None:
        super().__init__(config, encoder, img_size, patch_size)
        spec = BlockSpec(config.embed_dim, config.num_heads, config.mlp_ratio, layer_scale_init=1e-5, qk_norm=True,
                         norm_eps=NORM_EPS, qk_norm_eps=NORM_EPS, k_bias_mask=True)
        self.rope_embed = DinoRope2D(config.embed_dim // config.num_heads, config.rope_base)
        self.frame_blocks = nn.ModuleList(spec.build(self.rope_embed) for _ in range(config.depth))
        self.inter_frame_blocks = nn.ModuleList(spec.build() for _ in range(config.depth))
        self.register_layers = frozenset(config.register_attention_layers)

    @property
    def inter_blocks(self) -> nn.ModuleList:
        return self.inter_frame_blocks

    def _positions(self, B: int, S: int, h: int, w: int, device: torch.device) -> tuple[object, object]:
        return self.rope_embed.grid(h, w, self.patch_start_idx, device=device), None


def build(model: nn.Module, config: ModelConfig) -> None:
    C2 = 2 * config.aggregator.embed_dim
    Q = config.patch_start_idx()
    model.aggregator = OmegaAggregator(config.aggregator, config.encoder, config.img_size, config.patch_size)
    heads = set(config.heads)
    model.camera_head = TrunkCameraHead(config.camera_head, C2, Q, NORM_EPS) if "camera" in heads else None
    d = config.dense_head
    model.dense_head = (ShuffleDPTHead(C2, config.patch_size, d.features, d.out_channels, d.layers, norm_eps=NORM_EPS)
                        if "depth" in heads else None)
    model.text_alignment_head = (TextAlignmentHead(config.text_head, C2, Q, NORM_EPS)
                                 if "text_alignment" in heads and config.text_head is not None else None)
    model.point_head = model.track_head = None  # not in this family (callers may test for them)


def head_modules(model: Any) -> dict[str, nn.Module]:
    return {name: getattr(model, attr) for name, attr in HEAD_ATTRIBUTES.items() if getattr(model, attr) is not None}


def head_layers(model: Any, track: bool) -> list[int]:
    last = model.config.aggregator.depth - 1
    layers = {last} if model.camera_head is not None or model.text_alignment_head is not None else set()
    if model.dense_head is not None:
        layers.update(model.dense_head.layers)
    return sorted(layers)


def check_queries(model: Any, image_size: tuple[int, int]) -> None:
    raise ValueError("query_points were given but VGGT-Omega models have no track head; use a VGGT-1B model "
                     "(e.g. facebook/VGGT-1B) to track points")


#: causal attention over frames (``model(images, causal=True)``, streams) is supported
SUPPORTS_CAUSAL = True


def forward_heads(model: Any, tokens: dict[int, torch.Tensor], image_size: tuple[int, int],
                  query_points: torch.Tensor | None, causal: Any = None) -> dict[str, torch.Tensor]:
    """``causal``: None, or a frame-attention policy for the camera trunk. The text embedding describes
    the whole clip (one per sequence): a causal pass computes it over all frames, a stream omits it."""
    last = tokens[model.config.aggregator.depth - 1] if model.config.aggregator.depth - 1 in tokens else None
    out: dict[str, Any] = {}
    if last is not None:
        out["camera_and_register_tokens"] = last[:, :, :model.aggregator.patch_start_idx]  # [B, S, Q, 2C]
    if model.camera_head is not None:
        poses = model.camera_head(last, causal=causal)
        out["pose_enc"] = poses[-1]
        out["pose_enc_list"] = poses
    if model.dense_head is not None:
        out["depth"], out["depth_conf"] = model.dense_head(tokens, image_size, model.aggregator.patch_start_idx)
    if model.text_alignment_head is not None and not getattr(causal, "streaming", False):
        out["text_alignment_embedding"], out["text_alignment_token"] = model.text_alignment_head(last)
    return out
