"""Building blocks of the CoTracker-style point tracker used by the track head.

Karaev et al., "CoTracker: It is Better to Track Together" (ECCV 2024), as
adapted by VGGSfM and VGGT: a correlation pyramid sampled around the current
track estimates, and an update transformer that alternates attention over time
(per track) and over space (through a small set of learned virtual tracks).
Parameter names follow the released checkpoint (including its ``virual_tracks``
spelling and PyTorch ``MultiheadAttention`` names).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vggt3d.layers import Mlp

NUM_VIRTUAL_TRACKS = 64
NUM_HEADS = 8


def sample_bilinear(fmap: torch.Tensor, xy: torch.Tensor, padding_mode: str = "border") -> torch.Tensor:
    """Sample ``fmap [N, C, H, W]`` at pixel coordinates ``xy [N, ..., 2]`` (x, y).

    Convention: pixel centres at integers, ``align_corners=True`` (pixel 0 and
    W-1 map to -1 and +1). Returns ``[N, C, ...]``.
    """
    H, W = fmap.shape[-2:]
    scale = torch.tensor([2.0 / max(W - 1, 1), 2.0 / max(H - 1, 1)], device=xy.device, dtype=fmap.dtype)
    grid = xy.to(fmap.dtype) * scale - 1.0
    return F.grid_sample(fmap, grid, align_corners=True, padding_mode=padding_mode)


def sample_point_features(fmap: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """Features of ``fmap [B, C, H, W]`` at points ``xy [B, N, 2]`` -> ``[B, N, C]`` (border padding)."""
    return sample_bilinear(fmap, xy[:, :, None]).squeeze(-1).transpose(1, 2)


def flow_embedding(flow: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of 2D displacements ``[..., 2]`` -> ``[..., 2*dim]``.

    Per axis, ``dim`` channels interleave ``sin(v * f_k)`` and ``cos(v * f_k)``
    with ``f_k = 2k * 1000 / dim`` (the CoTracker "2D embedding"); x first, then y.
    """
    freqs = torch.arange(0, dim, 2, device=flow.device, dtype=torch.float32) * (1000.0 / dim)  # [dim/2]
    parts = []
    for axis in range(2):
        angles = flow[..., axis:axis + 1] * freqs  # [..., dim/2]
        parts.append(torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2))  # [..., dim] interleaved
    return torch.cat(parts, dim=-1)


def grid_sincos_embedding(dim: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """MAE-style 2D sin-cos embedding of a ``height x width`` pixel grid, ``[1, dim, height, width]``.

    First half of the channels encodes x (column), the second y (row); each
    half is ``[sin(p * w_k), cos(p * w_k)]`` with ``w_k = 10000 ** (-k / (dim/4))``.
    """
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / (dim / 4.0))

    def embed(p: torch.Tensor) -> torch.Tensor:
        angles = p[:, None] * omega[None]
        return torch.cat([angles.sin(), angles.cos()], dim=-1).float()  # [n, dim/2]

    ex = embed(torch.arange(width, dtype=torch.float64))[None].expand(height, -1, -1)  # [h, w, dim/2]
    ey = embed(torch.arange(height, dtype=torch.float64))[:, None].expand(-1, width, -1)
    return torch.cat([ex, ey], dim=-1).permute(2, 0, 1)[None].to(device)  # [1, dim, h, w]


class CorrelationPyramid:
    """Average-pooled feature pyramid with local correlation lookup.

    ``fmaps [B, S, C, H, W]``; level ``l`` is pooled ``2^l`` times. Lookup takes
    track features ``[B, S, N, C]`` and positions ``[B, S, N, 2]`` (level-0
    pixels) and returns ``[B, S, N, levels * (2r+1)^2]`` correlations divided by
    ``sqrt(C)``, bilinearly sampled with zero padding. The window offsets are
    laid out as in the released tracker: the first window axis moves x, the
    second moves y.
    """

    def __init__(self, fmaps: torch.Tensor, levels: int, radius: int) -> None:
        B, S, C, H, W = fmaps.shape
        need = 2 ** (levels - 1)
        if min(H, W) < need:
            raise ValueError(
                f"the track head's {levels}-level correlation pyramid needs feature maps of at least {need}x{need} "
                f"pixels, got {H}x{W}; use larger images (the track features are at 1/2 of the image size)"
            )
        self.radius = radius
        self.levels = [fmaps]
        for _ in range(levels - 1):
            f = self.levels[-1]
            pooled = F.avg_pool2d(f.reshape(B * S, C, f.shape[-2], f.shape[-1]), kernel_size=2, stride=2)
            self.levels.append(pooled.reshape(B, S, C, *pooled.shape[-2:]))
        lin = torch.linspace(-radius, radius, 2 * radius + 1, device=fmaps.device, dtype=fmaps.dtype)
        self.offsets = torch.stack(torch.meshgrid(lin, lin, indexing="ij"), dim=-1)  # [2r+1, 2r+1, 2]

    def lookup(self, feats: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        B, S, N, C = feats.shape
        K = 2 * self.radius + 1
        out = []
        for lvl, fmap in enumerate(self.levels):
            H, W = fmap.shape[-2:]
            corr = torch.matmul(feats, fmap.reshape(B, S, C, H * W)) / math.sqrt(C)  # [B, S, N, H*W]
            centre = coords.reshape(B * S * N, 1, 1, 2) / 2**lvl
            window = centre + self.offsets.to(coords.dtype).view(1, K, K, 2)  # [B*S*N, K, K, 2]
            sampled = sample_bilinear(corr.reshape(B * S * N, 1, H, W), window, padding_mode="zeros")
            out.append(sampled.reshape(B, S, N, K * K))
        return torch.cat(out, dim=-1)


class SelfAttentionBlock(nn.Module):
    """``x = norm1(x); x = x + attn(x); x = x + mlp(norm2(x))`` (residual from the normalized input)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``attn_mask``: as :class:`torch.nn.MultiheadAttention` (bool, True = may NOT attend)."""
        x = self.norm1(x)
        x = x + self.attn(x, x, x, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.norm2(x))


class CrossAttentionBlock(nn.Module):
    """Queries ``x`` attend to ``context``; same residual layout as :class:`SelfAttentionBlock`."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x)
        context = self.norm_context(context)
        x = x + self.cross_attn(x, context, context, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class UpdateTransformer(nn.Module):
    """Tokens ``[B, N, S, D_in]`` (tracks x frames) -> deltas ``[B, N, S, D_out]``.

    Each layer attends over time within a track; space attention runs through
    ``NUM_VIRTUAL_TRACKS`` learned virtual tracks (virtual <- points,
    virtual <-> virtual, points <- virtual), which keeps it linear in N.
    """

    def __init__(self, input_dim: int, hidden_size: int, output_dim: int, depth: int,
                 num_heads: int = NUM_HEADS, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.input_norm = nn.LayerNorm(input_dim)
        self.input_transform = nn.Linear(input_dim, hidden_size)
        self.output_norm = nn.LayerNorm(hidden_size)
        self.flow_head = nn.Linear(hidden_size, output_dim)
        self.virual_tracks = nn.Parameter(torch.zeros(1, NUM_VIRTUAL_TRACKS, 1, hidden_size))
        self.time_blocks = nn.ModuleList(SelfAttentionBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth))
        self.space_virtual_blocks = nn.ModuleList(
            SelfAttentionBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth))
        self.space_point2virtual_blocks = nn.ModuleList(
            CrossAttentionBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth))
        self.space_virtual2point_blocks = nn.ModuleList(
            CrossAttentionBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth))

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        """``causal``: time attention sees frames <= t only (space attention is per frame already)."""
        init = self.input_transform(self.input_norm(x))  # [B, N, S, D]
        B, N, S, D = init.shape
        V = NUM_VIRTUAL_TRACKS
        tokens = torch.cat([init, self.virual_tracks.expand(B, V, S, D)], dim=1)  # [B, N+V, S, D]
        future = torch.ones(S, S, dtype=torch.bool, device=x.device).triu(1) if causal else None  # True = masked
        for i, time_block in enumerate(self.time_blocks):
            tokens = time_block(tokens.reshape(B * (N + V), S, D), future).reshape(B, N + V, S, D)
            space = tokens.permute(0, 2, 1, 3).reshape(B * S, N + V, D)  # [B*S, N+V, D]
            points, virtual = space[:, :N], space[:, N:]
            virtual = self.space_virtual2point_blocks[i](virtual, points)
            virtual = self.space_virtual_blocks[i](virtual)
            points = self.space_point2virtual_blocks[i](points, virtual)
            tokens = torch.cat([points, virtual], dim=1).reshape(B, S, N + V, D).permute(0, 2, 1, 3)  # [B, N+V, S, D]
        tokens = tokens[:, :N] + init
        return self.flow_head(self.output_norm(tokens))
