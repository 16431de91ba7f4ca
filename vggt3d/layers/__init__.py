"""Transformer building blocks, one per file (DINOv2's ``layers/`` layout)."""

from .attention import Attention, KVHook, MaskedBiasLinear
from .block import Block, BlockSpec
from .layer_scale import LayerScale
from .mlp import Mlp
from .patch_embed import PatchEmbed
from .rope import DinoRope2D, RopeGrid, RotaryEmbedding2D, grid_positions

__all__ = ["Attention", "Block", "BlockSpec", "DinoRope2D", "KVHook", "LayerScale", "MaskedBiasLinear", "Mlp",
           "PatchEmbed", "RopeGrid", "RotaryEmbedding2D", "grid_positions"]
