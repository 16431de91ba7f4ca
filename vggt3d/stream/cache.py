"""Frame-causal attention masks and the per-frame key/value cache of a geometry stream, with its memory budget.

Tokens of S frames are laid out frame-major, ``T`` per frame (``T = P`` in
global attention, ``Q = 1 + R`` at a register-attention layer, 1 in the
VGGT-1B camera trunk). Causal means: every token of frame t may attend to
every token of frames ``<= t`` and to none of later frames.

:class:`FrameKVCache` keeps, for every attention layer the stream runs
(global layers, camera-trunk blocks; one *key* each), the keys and values of
the cached frames as ``[B, heads, F*T, head_dim]`` (after QK-norm and RoPE, so
they never need recomputing). A push of ``s`` new frames attends to the cache
plus its own keys under :func:`causal_mask` with ``past = F`` cached frames,
then appends them.

Memory budget and eviction (:class:`StreamConfig`): the cache holds at most
``max_frames`` frames (and at most ``max_memory_mb``, converted into frames
once the size of one frame is known). Before a push that would exceed it,
frames are evicted in this order, never touching frame 0 (the reference frame
whose camera defines the world) or the ``recent`` newest frames:

1. the oldest frames that are not keyframes (keyframes: every
   ``keyframe_interval``-th frame, 0, k, 2k, ...);
2. then the oldest keyframes.

So a long stream keeps frame 0, a sparse set of keyframes over its history
and a dense window of recent frames. With ``evict=False`` a push over budget
raises :class:`StreamBudgetError` before any work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable

import torch
from torch import Tensor

__all__ = ["CausalFrames", "FrameKVCache", "StreamBudgetError", "StreamConfig", "causal_mask"]


class StreamBudgetError(RuntimeError):
    """A push would take the key/value cache over its budget and eviction is disabled."""


def causal_mask(S: int, T: int, past: int = 0, device: torch.device | str | None = None) -> Tensor:
    """Boolean mask ``[S*T, (past+S)*T]`` (True = may attend): ``S`` new frames of ``T`` tokens each after
    ``past`` cached frames; a token of new frame ``s`` sees every cached frame and new frames ``<= s``."""
    q = torch.arange(S, device=device).repeat_interleave(T) + past  # [S*T] frame of each query
    k = torch.arange(past + S, device=device).repeat_interleave(T)  # [(past+S)*T] frame of each key
    return q[:, None] >= k[None, :]


class CausalFrames:
    """Frame-causal attention over ``S`` frames in one pass (no cache): what a causal full pass gives the heads.

    The same interface as :class:`FrameKVCache` (``mask(T)``, ``hook(key, T)``),
    so a head written once serves the full pass and the stream.
    """

    streaming = False

    def __init__(self, S: int) -> None:
        self.S = S

    def mask(self, T: int, device: torch.device | str | None = None) -> Tensor:
        return causal_mask(self.S, T, 0, device)

    def hook(self, key: Hashable, T: int) -> None:
        return None


@dataclass
class StreamConfig:
    """Memory budget and eviction policy of a stream's key/value cache (see the module docstring).

    ``max_frames`` / ``max_memory_mb`` None means unbounded: the stream then
    returns exactly what the causal full pass returns.
    """

    #: most frames kept in the cache (None: no limit)
    max_frames: int | None = None
    #: most megabytes (2^20 bytes) of keys and values (None: no limit)
    max_memory_mb: float | None = None
    #: evict frames when over budget (False: raise StreamBudgetError)
    evict: bool = True
    #: newest frames that are never evicted (None: half of ``max_frames``, or 8 with a memory budget only)
    recent: int | None = None
    #: every k-th frame is a keyframe, evicted only after all other old frames
    keyframe_interval: int = 8

    def __post_init__(self) -> None:
        if self.recent is not None and self.recent < 1 or self.keyframe_interval < 1:
            raise ValueError(f"recent and keyframe_interval must be >= 1, got {self.recent} and "
                             f"{self.keyframe_interval}")
        if self.max_frames is not None and self.max_frames < 2:
            raise ValueError(f"max_frames must be >= 2 (frame 0 and the newest frame), got {self.max_frames}")
        if self.max_memory_mb is not None and not (math.isfinite(self.max_memory_mb) and self.max_memory_mb > 0):
            raise ValueError(f"max_memory_mb must be a positive number, got {self.max_memory_mb}")
        if self.evict and self.max_frames is not None and self.recent is not None \
                and self.max_frames < 1 + self.recent:
            raise ValueError(f"max_frames={self.max_frames} cannot hold frame 0 and the recent={self.recent} newest "
                             f"frames; raise max_frames to at least {1 + self.recent} or lower recent")

    @property
    def recent_frames(self) -> int:
        """The number of newest frames never evicted (``recent`` or its default)."""
        if self.recent is not None:
            return self.recent
        return max(1, self.max_frames // 2) if self.max_frames is not None else 8

    @property
    def bounded(self) -> bool:
        return self.max_frames is not None or self.max_memory_mb is not None


class FrameKVCache:
    """Keys and values of the cached frames for every attention layer of a stream (one key per layer)."""

    streaming = True

    def __init__(self, config: StreamConfig | None = None) -> None:
        self.config = config or StreamConfig()
        self.frames: list[int] = []  #: absolute indices of the cached frames, ascending
        self.evicted: list[int] = []  #: every frame evicted so far
        self._kv: dict[Hashable, tuple[Tensor, Tensor]] = {}
        self._tokens: dict[Hashable, int] = {}  # tokens per frame of each key
        self._new: dict[Hashable, tuple[int, int]] = {}  # key -> (tokens before the push, bytes added)
        self._num_new = 0
        self._frame_bytes: int | None = None

    # ------------------------------------------------------------------ budget
    @property
    def nbytes(self) -> int:
        """Bytes of the cached keys and values."""
        return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in self._kv.values())

    def budget_frames(self) -> int | None:
        """The frame budget (``max_frames`` and ``max_memory_mb`` combined; None: unbounded or not known yet)."""
        c = self.config
        limits = [c.max_frames] if c.max_frames is not None else []
        if c.max_memory_mb is not None and self._frame_bytes:
            limits.append(max(1, int(c.max_memory_mb * 2**20 // self._frame_bytes)))
        return min(limits) if limits else None

    def plan(self, num_new: int) -> list[int]:
        """Frames to evict before caching ``num_new`` more (raises :class:`StreamBudgetError` when they cannot be)."""
        budget = self.budget_frames()
        if budget is None or len(self.frames) + num_new <= budget:
            return []
        c = self.config
        over = len(self.frames) + num_new - budget
        if not c.evict:
            raise StreamBudgetError(
                f"the stream's key/value cache holds {len(self.frames)} frames and {num_new} more would exceed its "
                f"budget of {budget} frames (max_frames={c.max_frames}, max_memory_mb={c.max_memory_mb}) with "
                f"eviction disabled; enable eviction (evict=True), raise the budget, or reset() the stream")
        if num_new > budget - 1:
            raise StreamBudgetError(f"cannot push {num_new} frames at once into a cache of {budget} frames "
                                    f"(frame 0 stays cached); push at most {budget - 1} frames at a time")
        keep_recent = max(0, c.recent_frames - num_new)
        protected = {0} | set(self.frames[len(self.frames) - keep_recent:] if keep_recent else [])
        candidates = [f for f in self.frames if f not in protected]
        ordered = ([f for f in candidates if f % c.keyframe_interval] +
                   [f for f in candidates if f % c.keyframe_interval == 0])
        if len(ordered) < over:
            raise StreamBudgetError(f"the cache budget of {budget} frames cannot hold frame 0, the "
                                    f"{c.recent_frames} most recent frames and {num_new} new ones; raise the budget "
                                    f"or lower recent")
        return sorted(ordered[:over])

    def evict(self, frames: list[int]) -> None:
        """Drop ``frames`` from every layer's keys and values."""
        if not frames:
            return
        drop = set(frames)
        keep = [i for i, f in enumerate(self.frames) if f not in drop]
        index = torch.tensor(keep, dtype=torch.long)
        for key, (k, v) in self._kv.items():
            T = self._tokens[key]
            B, H, _, D = k.shape
            idx = index.to(k.device)
            k = k.reshape(B, H, -1, T, D).index_select(2, idx).reshape(B, H, -1, D)  # [B, heads, F'*T, d]
            v = v.reshape(B, H, -1, T, D).index_select(2, idx).reshape(B, H, -1, D)
            self._kv[key] = (k, v)
        self.frames = [self.frames[i] for i in keep]
        self.evicted.extend(sorted(drop))

    # ------------------------------------------------------------------ a push
    def begin(self, num_new: int) -> None:
        """Start a push of ``num_new`` frames (after :meth:`evict`)."""
        self.rollback()
        self._new, self._num_new = {}, num_new

    @property
    def num_cached(self) -> int:
        return len(self.frames)

    def mask(self, T: int, device: torch.device | str | None = None) -> Tensor:
        """Attention mask of the push: ``[s*T, (F+s)*T]`` (F cached frames, s new)."""
        return causal_mask(self._num_new, T, len(self.frames), device)

    def hook(self, key: Hashable, T: int):
        """A :data:`vggt3d.layers.KVHook` for layer ``key`` (``T`` tokens per frame): past + new keys and values.

        The layer's cache is replaced at once by past + new (so the old copy is
        freed layer by layer, not all at the end); :meth:`rollback` undoes it.
        """
        def kv_hook(k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
            if key in self._new:
                raise RuntimeError(f"stream layer {key!r} was run twice in one push")
            self._tokens[key] = T
            added = k.numel() * k.element_size() + v.numel() * v.element_size()
            past = self._kv.get(key)
            old = 0 if past is None else past[0].shape[2]
            if past is not None:
                k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)  # [B, heads, (F+s)*T, d]
            self._kv[key] = (k.detach(), v.detach())
            self._new[key] = (old, added)
            return k, v
        return kv_hook

    def rollback(self) -> None:
        """Drop the keys and values a failed push appended (the cache is as before :meth:`begin`)."""
        for key, (old, _) in self._new.items():
            if old == 0:
                del self._kv[key]
            else:
                k, v = self._kv[key]
                self._kv[key] = (k[:, :, :old], v[:, :, :old])
        self._new, self._num_new = {}, 0

    def commit(self, new_frames: list[int]) -> None:
        """Keep the keys and values of the push's frames."""
        if len(new_frames) != self._num_new:
            raise RuntimeError("commit() got a different number of frames than begin()")
        if self._new and self._num_new:
            self._frame_bytes = sum(a for _, a in self._new.values()) // self._num_new
        self.frames.extend(new_frames)
        self._new, self._num_new = {}, 0

    def reset(self) -> None:
        self.__init__(self.config)
