"""Track head: DPT feature maps at half resolution + an iterative point tracker.

Given query points (pixels ``(x, y)`` in frame 0 of each sequence), predicts
their positions in every frame, a visibility and a confidence score
(VGGT Sec. 3.3; tracker after CoTracker, Karaev et al. 2024, and VGGSfM,
Wang et al. 2024).
"""

from __future__ import annotations

from typing import Mapping

import torch
from einops import rearrange
from torch import nn

from vggt3d.config import TrackHeadConfig
from vggt3d.layers import Mlp

from .dpt import DPTHead
from .tracker import CorrelationPyramid, UpdateTransformer, grid_sincos_embedding, flow_embedding, sample_point_features

#: Flow values are also fed raw, divided by this (the training image size).
MAX_SCALE = 518.0


class Tracker(nn.Module):
    """Feature maps ``[B, S, C, h', w']`` + queries ``[B, N, 2]`` -> tracks, visibility and confidence logits.

    Tracks are a list (one per iteration) of ``[B, S, N, 2]`` pixel positions;
    the logits are ``[B, S, N]`` (apply a sigmoid for probabilities).
    """

    def __init__(self, config: TrackHeadConfig) -> None:
        super().__init__()
        C = config.features
        self.stride = config.stride
        self.corr_levels = config.corr_levels
        self.corr_radius = config.corr_radius
        self.latent_dim = C
        self.transformer_dim = 3 * C + 4
        self.corr_mlp = Mlp(config.corr_levels * (2 * config.corr_radius + 1) ** 2, config.hidden_size, C)
        self.query_ref_token = nn.Parameter(torch.zeros(1, 2, self.transformer_dim))
        self.updateformer = UpdateTransformer(self.transformer_dim, config.hidden_size, C + 2,
                                              depth=config.transformer_depth)
        self.fmap_norm = nn.LayerNorm(C)
        self.ffeat_norm = nn.GroupNorm(1, C)
        self.ffeat_updater = nn.Sequential(nn.Linear(C, C), nn.GELU())
        self.vis_predictor = nn.Sequential(nn.Linear(C, 1))
        self.conf_predictor = nn.Sequential(nn.Linear(C, 1))

    def forward(self, query_points: torch.Tensor, fmaps: torch.Tensor, iterations: int, causal: bool = False):
        B, N, _ = query_points.shape
        _, S, C, h, w = fmaps.shape
        fmaps = self.fmap_norm(fmaps.permute(0, 1, 3, 4, 2)).permute(0, 1, 4, 2, 3)  # [B, S, C, h, w]
        query = query_points / float(self.stride)  # feature-map pixels
        coords = query[:, None].repeat(1, S, 1, 1)  # [B, S, N, 2]
        query_feats = sample_point_features(fmaps[:, 0], query)  # [B, N, C]
        feats = query_feats[:, None].repeat(1, S, 1, 1)  # [B, S, N, C]
        pyramid = CorrelationPyramid(fmaps, self.corr_levels, self.corr_radius)
        pos = sample_point_features(grid_sincos_embedding(self.transformer_dim, h, w, fmaps.device).expand(B, -1, -1, -1),
                                    query)  # [B, N, D]
        pos = rearrange(pos, "b n d -> (b n) 1 d")
        ref = torch.cat([self.query_ref_token[:, :1], self.query_ref_token[:, 1:].expand(-1, S - 1, -1)], dim=1)

        tracks = []
        for _ in range(iterations):
            coords = coords.detach()
            corr = self.corr_mlp(rearrange(pyramid.lookup(feats, coords), "b s n k -> (b n) s k"))  # [B*N, S, C]
            flow = rearrange(coords - coords[:, :1], "b s n two -> (b n) s two")  # [B*N, S, 2]
            flow_in = torch.cat([flow_embedding(flow, C // 2), flow / MAX_SCALE, flow / MAX_SCALE], dim=-1)
            feats_bn = rearrange(feats, "b s n c -> (b n) s c")  # [B*N, S, C]
            x = torch.cat([flow_in, corr, feats_bn], dim=-1) + pos + ref.to(flow.dtype)  # [B*N, S, D]
            delta = self.updateformer(rearrange(x, "(b n) s d -> b n s d", b=B), causal)  # [B, N, S, C+2]
            delta = rearrange(delta, "b n s d -> (b n s) d")
            feats_flat = feats_bn.reshape(B * N * S, C)
            feats_flat = feats_flat + self.ffeat_updater(self.ffeat_norm(delta[:, 2:]))
            feats = rearrange(feats_flat, "(b n s) c -> b s n c", b=B, n=N)  # [B, S, N, C]
            coords = coords + rearrange(delta[:, :2], "(b n s) two -> b s n two", b=B, n=N)
            coords[:, 0] = query  # frame 0 stays at the query
            tracks.append(coords * self.stride)
        vis_logits = self.vis_predictor(feats).squeeze(-1)  # [B, S, N]
        conf_logits = self.conf_predictor(feats).squeeze(-1)
        return tracks, vis_logits, conf_logits


class TrackHead(nn.Module):
    """Aggregator layers + queries ``[B, N, 2]`` (pixels in frame 0) -> tracks ``iterations x [B, S, N, 2]``."""

    def __init__(self, config: TrackHeadConfig, dim_in: int, patch_size: int) -> None:
        super().__init__()
        self.iterations = config.iterations
        self.stride = config.stride
        self.corr_levels = config.corr_levels
        self.feature_extractor = DPTHead(dim_in, patch_size, config.features, config.out_channels, config.layers,
                                         pos_embed=False, feature_only=True, down_ratio=2)
        self.tracker = Tracker(config)

    def min_image_size(self) -> int:
        """Smallest image side the correlation pyramid accepts (pixels)."""
        return 2 * 2 ** (self.corr_levels - 1)

    def forward(self, tokens: Mapping[int, torch.Tensor], image_hw: tuple[int, int], patch_start_idx: int,
                query_points: torch.Tensor, iterations: int | None = None, causal: bool = False):
        """``causal``: the tracker's time attention sees frames <= t only (the features are per frame)."""
        fmaps = self.feature_extractor(tokens, image_hw, patch_start_idx)  # [B, S, C, H/2, W/2]
        return self.tracker(query_points, fmaps, iterations or self.iterations, causal)

    def forward_from_frames(self, tokens: Mapping[int, torch.Tensor], image_hw: tuple[int, int],
                            patch_start_idx: int, queries: Mapping[int, torch.Tensor]) -> dict[int, tuple]:
        """Tracks of queries ``{frame q: [B, N_q, 2]}`` (pixels in frame q) through every frame.

        The per-frame features are computed once; for each q the tracker sees the
        frames in the order ``[q, others...]`` (q plays frame 0) and the results
        are put back in input order: ``{q: (track [B, S, N_q, 2], vis_logits, conf_logits [B, S, N_q])}``.
        """
        fmaps = self.feature_extractor(tokens, image_hw, patch_start_idx)  # [B, S, C, H/2, W/2]
        S = fmaps.shape[1]
        out = {}
        for q, points in queries.items():
            order = [q] + [i for i in range(S) if i != q]
            inverse = torch.as_tensor(sorted(range(S), key=order.__getitem__), device=fmaps.device)
            tracks, vis_logits, conf_logits = self.tracker(points, fmaps[:, order], self.iterations)
            out[q] = (tracks[-1][:, inverse], vis_logits[:, inverse], conf_logits[:, inverse])
        return out
