"""Alternating-attention aggregators (VGGT Sec. 3.3, Wang et al. 2025) and their layer-by-layer step.

Every frame is encoded by the per-frame encoder (:mod:`vggt3d.encoder`),
prefixed with one camera token and R register tokens, and then passed through
``depth`` pairs of (frame attention, inter-frame attention) blocks:

- frame attention sees each frame alone: tokens ``[B*S, P, C]``;
- inter-frame ("global") attention sees all frames of a sequence: tokens
  ``[B, S*P, C]`` (frame-major), or, at a *register-attention* layer
  (VGGT-Omega), only the ``Q = 1 + R`` special tokens of every frame,
  ``[B, S*Q, C]``, the patch tokens passing unchanged.

Layer ``i`` of the output is ``concat(frame_out_i, inter_frame_out_i)`` along
channels, ``[B, S, P, 2C]``. Only the layers a caller asks for are kept.

The seam (``docs/models.md``): :meth:`AlternatingAggregator.embed` builds the
token state of a set of frames, :meth:`AlternatingAggregator.step` runs one
layer on it, and :class:`AggregatorHooks` lets a caller chunk the per-frame
stages over frames, pass an attention mask/bias and a KV hook to the
inter-frame attention, or replace the inter-frame block call (token merging).
:meth:`forward` is the plain loop over :meth:`step`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn

from .config import AggregatorConfig, EncoderConfig
from .encoder import build_encoder
from .layers import Block, BlockSpec, KVHook, RotaryEmbedding2D, grid_positions

#: ImageNet statistics; the model normalizes internally, loaders return [0, 1] RGB.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _first_and_rest(token: torch.Tensor, B: int, S: int, first_index: int = 0) -> torch.Tensor:
    """``[1, 2, X, C]`` -> ``[B*S, X, C]``: slot 0 for frame 0 of each sequence, slot 1 for the others.

    ``first_index``: the sequence index of the first of these S frames (a
    stream's later chunks start past frame 0 and take slot 1 throughout).
    """
    if first_index > 0:
        return token[:, 1:].expand(B, S, *token.shape[2:]).reshape(B * S, *token.shape[2:])
    first = token[:, :1].expand(B, 1, *token.shape[2:])
    rest = token[:, 1:].expand(B, S - 1, *token.shape[2:])
    return torch.cat([first, rest], dim=1).reshape(B * S, *token.shape[2:])


@dataclass
class AggregatorState:
    """Tokens between two layers: ``x`` ``[B*S, P, C]`` plus the grid they came from.

    ``frame_pos`` / ``global_pos``: what the frame and inter-frame attention
    take as ``positions`` (RoPE positions or grids; ``None`` = no RoPE there).
    """

    x: torch.Tensor
    B: int
    S: int
    h: int
    w: int
    frame_pos: object
    global_pos: object

    @property
    def P(self) -> int:
        return self.x.shape[1]


#: ``(layer, block, x [B, T, C], positions, attn_bias, kv_hook) -> [B, T, C]``: replaces one inter-frame block call.
InterFrameFn = Callable[[int, Block, torch.Tensor, object, "torch.Tensor | None", "KVHook | None"], torch.Tensor]


@dataclass
class AggregatorHooks:
    """Optional changes to how :meth:`AlternatingAggregator.step` runs (all default to the plain model).

    - ``frame_chunk``: frames per chunk in the per-frame stages (encoder and
      frame attention); results do not depend on it, peak memory does. Unset
      with ``token_chunk`` set: as many frames as fit in ``token_chunk`` tokens.
    - ``attn_bias(layer, S, tokens_per_frame)``: mask (bool, True = attend) or
      additive bias broadcastable to ``[B, heads, S*T, S*T_kv]`` for the
      inter-frame attention of ``layer`` (``T`` = P, or Q at register layers).
    - ``kv_hook(layer)``: a :data:`~vggt3d.layers.KVHook` for that inter-frame
      attention (``None`` = none), e.g. a KV cache for streaming.
    - ``inter_frame``: replaces the call of the inter-frame block (token merging).
    - ``token_chunk``: tokens per chunk in the token-wise parts of the
      inter-frame blocks (norms, ``qkv``, projection, MLP); only the attention
      kernel sees all ``S*T`` tokens (:meth:`~vggt3d.layers.Block.forward_token_chunked`).
      This is the lean exact pass (:func:`lean_hooks`); results equal the
      plain pass within float rounding. ``0`` switches it off where it is the
      default (:meth:`vggt3d.VGGT3D.forward_intermediates` without gradients).
    """

    frame_chunk: int | None = None
    token_chunk: int | None = None
    attn_bias: Callable[[int, int, int], "torch.Tensor | None"] | None = None
    kv_hook: Callable[[int], "KVHook | None"] | None = None
    inter_frame: InterFrameFn | None = None


class AlternatingAggregator(nn.Module):
    """Images ``[B, S, 3, H, W]`` in [0, 1] -> selected layers ``{i: [B, S, P, 2C]}``.

    ``P = 1 + R + h*w`` tokens per frame in the order [camera, registers, patches].
    Subclasses build ``patch_embed`` (the encoder), ``frame_blocks``, the
    inter-frame blocks (:attr:`inter_blocks`), ``camera_token``,
    ``register_token`` and define :meth:`_positions`.
    """

    #: layers whose inter-frame block sees only the special tokens
    register_layers: frozenset[int] = frozenset()

    def __init__(self, config: AggregatorConfig, encoder: EncoderConfig, img_size: int, patch_size: int) -> None:
        super().__init__()
        C = config.embed_dim
        self.depth = config.depth
        self.patch_size = patch_size
        self.patch_start_idx = 1 + config.num_register_tokens
        self.patch_embed = build_encoder(encoder, img_size, patch_size)
        self.camera_token = nn.Parameter(torch.zeros(1, 2, 1, C))
        self.register_token = nn.Parameter(torch.zeros(1, 2, config.num_register_tokens, C))
        self.grad_checkpointing = False

    @property
    def inter_blocks(self) -> nn.ModuleList:
        raise NotImplementedError

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable
        self.patch_embed.grad_checkpointing = enable

    def _run(self, block: nn.Module, x: torch.Tensor, pos: object, bias: torch.Tensor | None = None,
             kv_hook: KVHook | None = None) -> torch.Tensor:
        if self.grad_checkpointing and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(block, x, pos, bias, kv_hook, use_reentrant=False)
        return block(x, pos, bias, kv_hook)

    def _positions(self, B: int, S: int, h: int, w: int, device: torch.device) -> tuple[object, object]:
        """``(frame_pos, global_pos)`` for ``B*S`` frames of ``h x w`` patches."""
        raise NotImplementedError

    # ------------------------------------------------------------------ stages
    def encode(self, images: torch.Tensor, frame_chunk: int | None = None) -> torch.Tensor:
        """Encoder patch tokens ``[B*S, h*w, C]`` of images ``[B, S, 3, H, W]`` in [0, 1]."""
        B, S, _, H, W = images.shape
        mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        x = images.reshape(B * S, 3, H, W)
        n = frame_chunk or B * S
        parts = [self.patch_embed((x[i:i + n] - mean) / std) for i in range(0, B * S, n)]
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    def embed(self, images: torch.Tensor, first_index: int = 0, frame_chunk: int | None = None) -> AggregatorState:
        """The state before layer 0: ``[camera, registers, patches]`` per frame, ``x`` ``[B*S, P, C]``.

        ``first_index``: sequence index of the first frame (0 = these frames
        start the sequence; frame 0 takes the reference-frame tokens).
        """
        B, S, _, H, W = images.shape
        h, w = H // self.patch_size, W // self.patch_size
        patches = self.encode(images, frame_chunk)  # [B*S, h*w, C]
        specials = [_first_and_rest(self.camera_token, B, S, first_index),
                    _first_and_rest(self.register_token, B, S, first_index)]
        x = torch.cat([t.to(patches.dtype) for t in specials] + [patches], dim=1)  # [B*S, P, C]
        frame_pos, global_pos = self._positions(B, S, h, w, images.device)
        return AggregatorState(x, B, S, h, w, frame_pos, global_pos)

    def step(self, i: int, state: AggregatorState, hooks: AggregatorHooks | None = None,
             keep: bool = True) -> torch.Tensor | None:
        """Run layer ``i`` on ``state`` (updated in place); return its output ``[B, S, P, 2C]`` if ``keep``."""
        hooks = hooks or AggregatorHooks()
        B, S, P = state.B, state.S, state.P
        x = state.x
        n = _frames_per_chunk(hooks, B * S, P)
        frame_pos = state.frame_pos
        if n >= B * S:
            x = self._run(self.frame_blocks[i], x, frame_pos)  # [B*S, P, C]
        else:
            x = torch.cat([self._run(self.frame_blocks[i], x[j:j + n], _slice_pos(frame_pos, j, n))
                           for j in range(0, B * S, n)])  # [B*S, P, C]
        C = x.shape[-1]
        frame_out = x.reshape(B, S, P, C) if keep else None
        block = self.inter_blocks[i]
        T = self.patch_start_idx if i in self.register_layers else P  # tokens per frame the block sees
        y = x.reshape(B, S, P, C)[:, :, :T].reshape(B, S * T, C)  # [B, S*T, C]
        bias = hooks.attn_bias(i, S, T) if hooks.attn_bias is not None else None
        kv = hooks.kv_hook(i) if hooks.kv_hook is not None else None
        pos = state.global_pos
        if hooks.inter_frame is not None:
            y = hooks.inter_frame(i, block, y, pos, bias, kv)
        elif hooks.token_chunk and not (self.grad_checkpointing and torch.is_grad_enabled()):
            y = block.forward_token_chunked(y, pos, bias, kv, hooks.token_chunk)  # [B, S*T, C]
        else:
            y = self._run(block, y, pos, bias, kv)  # [B, S*T, C]
        if T < P:
            y = torch.cat([y.reshape(B, S, T, C), x.reshape(B, S, P, C)[:, :, T:]], dim=2)  # [B, S, P, C]
        state.x = y.reshape(B * S, P, C)
        if frame_out is None:
            return None
        return torch.cat([frame_out, y.reshape(B, S, P, C)], dim=-1)  # [B, S, P, 2C]

    def forward(self, images: torch.Tensor, layers: Iterable[int], hooks: AggregatorHooks | None = None,
                callback: Callable[[int], None] | None = None) -> dict[int, torch.Tensor]:
        """Run up to the last requested layer; ``callback(i)`` after each layer ``i``."""
        keep = sorted({int(i) for i in layers})
        bad = [i for i in keep if not 0 <= i < self.depth]
        if bad:
            raise ValueError(f"aggregator layers {bad} out of range [0, {self.depth})")
        B, S, _, H, W = images.shape
        patches = (H // self.patch_size) * (W // self.patch_size)
        state = self.embed(images, frame_chunk=_frames_per_chunk(hooks, B * S, patches))
        out: dict[int, torch.Tensor] = {}
        wanted = set(keep)
        for i in range(keep[-1] + 1 if keep else 0):
            y = self.step(i, state, hooks, keep=i in wanted)
            if y is not None:
                out[i] = y
            if callback is not None:
                callback(i)
        return out


#: Default of the lean exact pass: tokens per chunk in the global blocks, and per frame chunk in the per-frame stages.
LEAN_TOKEN_CHUNK = 2048


def lean_hooks(hooks: AggregatorHooks | None = None, frame_chunk: int | None = None,
               token_chunk: int = LEAN_TOKEN_CHUNK) -> AggregatorHooks:
    """``hooks`` (or plain ones) with the lean exact pass switched on where the caller left it unset.

    The token-wise parts of the inter-frame blocks run ``token_chunk`` tokens
    at a time and the per-frame stages (encoder, frame blocks) ``frame_chunk``
    frames at a time (unset: as many frames as fit in ``token_chunk`` tokens),
    so only the inter-frame attention kernel holds all tokens at once. A
    caller's ``token_chunk=0`` (off) is kept.
    """
    hooks = hooks or AggregatorHooks()
    return dataclasses.replace(hooks, frame_chunk=hooks.frame_chunk or frame_chunk,
                               token_chunk=token_chunk if hooks.token_chunk is None else hooks.token_chunk)


def _frames_per_chunk(hooks: AggregatorHooks | None, frames: int, tokens_per_frame: int) -> int:
    """Frames per chunk in the per-frame stages: ``frame_chunk``, else what fits in ``token_chunk`` tokens, else all."""
    if hooks is None:
        return frames
    if hooks.frame_chunk:
        return min(hooks.frame_chunk, frames)
    if hooks.token_chunk:
        return max(1, min(frames, hooks.token_chunk // max(tokens_per_frame, 1)))
    return frames


def _slice_pos(pos: object, start: int, n: int) -> object:
    """Frame positions of frames ``start .. start+n`` (tensors are per frame; grids are shared)."""
    if isinstance(pos, torch.Tensor):
        return pos[start:start + n]
    return pos


class Aggregator(AlternatingAggregator):
    """VGGT-1B: 2D RoPE (integer positions, base ``rope_base``) and QK-norm in frame and global attention.

    Parameters ``frame_blocks.i`` and ``global_blocks.i``; specials at RoPE position (0, 0).
    """

    def __init__(self, config: AggregatorConfig, encoder: EncoderConfig, img_size: int, patch_size: int) -> None:
        super().__init__(config, encoder, img_size, patch_size)
        spec = BlockSpec(config.embed_dim, config.num_heads, config.mlp_ratio, layer_scale_init=0.01, qk_norm=True)
        self.rope = RotaryEmbedding2D(base=config.rope_base)
        self.frame_blocks = nn.ModuleList(spec.build(self.rope) for _ in range(config.depth))
        self.global_blocks = nn.ModuleList(spec.build(self.rope) for _ in range(config.depth))

    @property
    def inter_blocks(self) -> nn.ModuleList:
        return self.global_blocks

    def _positions(self, B: int, S: int, h: int, w: int, device: torch.device) -> tuple[object, object]:
        pos = grid_positions(B * S, h, w, self.patch_start_idx, device=device)  # [B*S, P, 2]
        return pos, pos.reshape(B, S * pos.shape[1], 2)  # [B*S, P, 2], [B, S*P, 2]
