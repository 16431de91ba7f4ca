"""Transformer building blocks, one per file (DINOv2's ``layers/`` layout)."""

from .attention import Attention
from .block import Block
from .layer_scale import LayerScale
from .mlp import Mlp
from .patch_embed import PatchEmbed
from .rope import RotaryEmbedding2D, grid_positions

__all__ = ["Attention", "Block", "LayerScale", "Mlp", "PatchEmbed", "RotaryEmbedding2D", "grid_positions"]
