"""Training-free token merging for the global (inter-frame) attention (the idea of FastVGGT, our own design).

Global attention costs ``O((S P)^2)`` in the frame count ``S``; most patch
tokens of a video are near-duplicates of tokens in other frames. Before each
inter-frame block, :class:`TokenMerger` keeps

- every token of the reference frame (frame 0 defines the world frame),
- every frame's camera and register tokens (the heads read them),
- the most distinctive patch tokens (``protect``: farthest, in cosine, from their frame's mean patch token),

picks evenly spread *destination* tokens among the remaining patch tokens and
merges every other one (*source*) into its most similar destination (cosine
similarity of the block's input, a running mean), so that a fraction ``ratio``
of all tokens is gone. The block runs on the merged tokens (their RoPE
positions are the destinations'); then every token is *unmerged*: it keeps its
own residual stream and receives the update of the token it was merged into,
``x_n + (block(x_m) - x_m)[dst(n)]``. ``ratio = 0`` is the exact path.

Use through the model contract: ``model(images, hooks=merge_hooks(0.5))``
(the frame count is read from the call), or ``merge_ratio=`` in
:func:`vggt3d.reconstruct`.

Shapes: ``x [B, S*T, C]`` with ``T`` tokens per frame, ``[camera, registers, patches]``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["MergeConfig", "TokenMerger", "merge_hooks", "merged_tokens"]

log = logging.getLogger(__name__)


@dataclass
class MergeConfig:
    """Token merging settings.

    Attributes:
        ratio: fraction of the global-attention tokens merged away, in ``[0, 0.95]`` (0 = exact).
        protect: fraction of the mergeable patch tokens kept unmerged as the most distinctive.
        block_rows: source tokens matched at a time (bounds the similarity matrix's memory).
    """

    ratio: float = 0.5
    protect: float = 0.1
    block_rows: int = 4096

    def __post_init__(self) -> None:
        if not (isinstance(self.ratio, int | float) and 0.0 <= float(self.ratio) <= 0.95):
            raise ValueError(f"merge ratio must be a number in [0, 0.95], got {self.ratio!r}")
        if not 0.0 <= float(self.protect) < 1.0:
            raise ValueError(f"MergeConfig.protect must be in [0, 1), got {self.protect!r}")
        if int(self.block_rows) < 1:
            raise ValueError(f"MergeConfig.block_rows must be >= 1, got {self.block_rows!r}")


def merged_tokens(N: int, frames: int, ratio: float) -> int:
    """Tokens left of ``N`` after merging away ``ratio`` of them (never fewer than frame 0 and the specials)."""
    return N - int(ratio * N)


def _plan(x: torch.Tensor, S: int, T: int, start: int, cfg: MergeConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """For one sequence ``x [S*T, C]``: kept indices ``[K]`` and ``assign [S*T]`` (position in the kept list)."""
    N = S * T
    device = x.device
    idx = torch.arange(N, device=device)
    local = idx % T
    fixed = (idx < T) | (local < start)  # frame 0, and every frame's camera + register tokens
    cand = idx[~fixed]  # mergeable patch tokens
    r = min(int(cfg.ratio * N), max(len(cand) - 1, 0))
    if r <= 0:
        return idx, idx
    feats = F.normalize(x.float(), dim=-1)
    patches = feats.reshape(S, T, -1)[:, start:]  # [S, h*w, C]
    mean = F.normalize(patches.mean(dim=1), dim=-1)  # [S, C]
    distinct = 1.0 - (feats[cand] * mean[cand // T]).sum(-1)  # [M]
    n_protect = min(int(cfg.protect * len(cand)), len(cand) - r - 1)
    order = torch.argsort(distinct, descending=True)
    protected = cand[order[:max(n_protect, 0)]]
    rest = torch.sort(cand[order[max(n_protect, 0):]]).values  # in sequence order
    n_dst = len(rest) - r
    pick = torch.zeros(len(rest), dtype=torch.bool, device=device)
    pick[torch.linspace(0, len(rest) - 1, n_dst, device=device).round().long()] = True  # evenly spread
    if int(pick.sum()) < n_dst:  # rounding collisions (tiny sets): top up with the first unpicked
        pick[torch.nonzero(~pick).flatten()[: n_dst - int(pick.sum())]] = True
    dst, src = rest[pick], rest[~pick]
    kept = torch.sort(torch.cat([idx[fixed], protected, dst])).values  # [K]
    position = torch.full((N,), -1, dtype=torch.long, device=device)
    position[kept] = torch.arange(len(kept), device=device)
    match = torch.empty(len(src), dtype=torch.long, device=device)
    dst_feats = feats[dst]
    for i in range(0, len(src), cfg.block_rows):
        match[i:i + cfg.block_rows] = (feats[src[i:i + cfg.block_rows]] @ dst_feats.T).argmax(dim=1)
    position[src] = position[dst[match]]
    return kept, position


class TokenMerger:
    """An ``inter_frame`` hook (:class:`vggt3d.aggregator.AggregatorHooks`): merge, attend, unmerge.

    ``frames`` is the sequence length S of the call; ``patch_start`` the number of special tokens per frame.
    """

    def __init__(self, config: MergeConfig, frames: int, patch_start: int) -> None:
        self.config, self.frames, self.patch_start = config, int(frames), int(patch_start)
        self.tokens_in = self.tokens_attended = 0  # summed over calls, for FLOP accounting

    def __call__(self, layer: int, block: Any, x: torch.Tensor, positions: Any, attn_bias: Any, kv_hook: Any
                 ) -> torch.Tensor:
        if attn_bias is not None or kv_hook is not None:
            raise ValueError("token merging cannot be combined with an attention mask or a KV cache (causal or "
                             "streaming runs); drop --merge")
        B, N, C = x.shape
        S = self.frames
        if N % S:
            raise ValueError(f"token merging: {N} tokens are not {S} frames of equal length")
        T = N // S
        if T <= self.patch_start or self.config.ratio == 0:
            self.tokens_in += B * N
            self.tokens_attended += B * N
            return block(x, positions, None, None)
        out = torch.empty_like(x)
        for b in range(B):
            kept, assign = _plan(x[b], S, T, self.patch_start, self.config)
            sums = torch.zeros(len(kept), C, dtype=torch.float32, device=x.device).index_add_(0, assign, x[b].float())
            counts = torch.zeros(len(kept), dtype=torch.float32, device=x.device).index_add_(
                0, assign, torch.ones(N, device=x.device))
            x_m = (sums / counts[:, None]).to(x.dtype)[None]  # [1, K, C] merged tokens (running means)
            pos = None if positions is None else positions[b:b + 1, kept]  # the destinations' positions
            delta = block(x_m, pos, None, None) - x_m  # [1, K, C]
            out[b] = x[b] + delta[0, assign]  # unmerge: own residual + the update of the merged token
            self.tokens_in += N
            self.tokens_attended += len(kept)
        return out


def merge_hooks(ratio: float | MergeConfig, frames: int, patch_start: int, hooks: Any = None) -> Any:
    """:class:`~vggt3d.aggregator.AggregatorHooks` (``hooks`` extended) merging tokens in every global block."""
    from .aggregator import AggregatorHooks

    config = ratio if isinstance(ratio, MergeConfig) else MergeConfig(ratio=float(ratio))
    hooks = hooks or AggregatorHooks()
    if hooks.inter_frame is not None:
        raise ValueError("hooks.inter_frame is already set; token merging replaces it")
    return dataclasses.replace(hooks, inter_frame=TokenMerger(config, frames, patch_start))
