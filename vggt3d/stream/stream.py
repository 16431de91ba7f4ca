"""``GeometryStream``: causal geometry of a video one push at a time, from a key/value cache of the past.

::

    stream = model.stream()                       # or GeometryStream(model, StreamConfig(max_frames=64))
    for frames in video_chunks:                   # [s, 3, H, W] or [B, s, 3, H, W] in [0, 1]
        out = stream.push(frames)                 # the new frames' pose_enc, depth, depth_conf, ...
        cams, K = pose_encoding_to_cameras(out["pose_enc"], frames.shape[-2:])

Guarantee (tested for both model families): without eviction, the outputs of
every push equal the outputs of ``model(all frames so far, causal=True)`` for
those frames, to float precision. The per-frame stages (encoder, frame
attention, dense heads) run on the new frames only; every global-attention
layer and camera-trunk block attends to the cached keys and values of the
past frames (:class:`~vggt3d.stream.cache.FrameKVCache`) plus the new ones.
A push of one frame after T costs the per-frame stages of one frame and the
attention of its tokens to the cached ones, where recomputing the causal
pass costs the stages of all T+1 frames and attention among all of them: the
speed-up grows with T (``benchmarks/stream.py``, ``docs/world_models.md``).

With a budget (:class:`~vggt3d.stream.cache.StreamConfig`) old frames are
evicted (frame 0, the recent window and keyframes are kept); later outputs
then deviate from the unevicted stream, by an amount the benchmark reports.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from ..aggregator import AggregatorHooks
from ..runtime import precision_context
from .cache import FrameKVCache, StreamConfig

__all__ = ["GeometryStream"]


class GeometryStream:
    """A causal, incremental run of a :class:`vggt3d.VGGT3D` over a growing clip.

    Args:
        model: the model (its family must support causal attention).
        config: the cache budget and eviction policy (default: unbounded).
        layers: aggregator layers whose tokens ``push`` also returns (under
            ``"tokens"``, ``{layer: [B, s, P, 2C]}``); default none.
        heads: run the heads (cameras, depth, ...); False returns tokens only.
        precision: the aggregator's precision policy, as in ``model.forward``.

    The stream runs without gradients. ``reset()`` starts a new clip.
    """

    def __init__(self, model: Any, config: StreamConfig | None = None, *, layers: Sequence[int] | None = None,
                 heads: bool = True, precision: Any = "auto") -> None:
        model.check_causal()
        self.model = model
        self.config = config or StreamConfig()
        depth = model.config.aggregator.depth
        self.layers = sorted({int(i) % depth for i in (layers or [])})
        bad = [i for i in (layers or []) if not -depth <= int(i) < depth]
        if bad:
            raise ValueError(f"layers {list(layers)} must be aggregator layers in [-{depth}, {depth})")
        if not heads and not self.layers:
            raise ValueError("a stream with heads=False needs layers to return")
        self.heads = heads
        self.precision = precision
        self.cache = FrameKVCache(self.config)
        self.num_frames = 0  #: frames pushed so far
        self.image_size: tuple[int, int] | None = None
        self.batch_size: int | None = None

    def reset(self) -> None:
        """Forget every frame (a new clip)."""
        self.cache.reset()
        self.num_frames, self.image_size, self.batch_size = 0, None, None

    @property
    def cached_frames(self) -> list[int]:
        """Indices of the frames whose keys and values are cached."""
        return list(self.cache.frames)

    @property
    def cache_bytes(self) -> int:
        return self.cache.nbytes

    def _check(self, frames: Tensor) -> Tensor:
        images = self.model._check_images(frames)  # [B, s, 3, H, W]
        B, _, _, H, W = images.shape
        if self.image_size is not None and (H, W) != self.image_size:
            raise ValueError(f"this stream's frames are {self.image_size[0]}x{self.image_size[1]} (the size of its "
                             f"first frame), got {H}x{W}: resize every frame to the first one's size, or reset() "
                             f"the stream for a new clip")
        if self.batch_size is not None and B != self.batch_size:
            raise ValueError(f"this stream has a batch of {self.batch_size} clips, got {B}")
        return images

    @torch.no_grad()
    def push(self, frames: Tensor) -> dict[str, Any]:
        """Add frames ``[s, 3, H, W]`` or ``[B, s, 3, H, W]`` (RGB in [0, 1]); return their outputs.

        Keys as ``model.forward`` for the ``s`` new frames (``pose_enc [B, s,
        9]``, ``depth [B, s, H, W, 1]``, ...; no tracks), plus ``tokens`` when
        the stream has ``layers`` and ``frame_indices`` (their indices in the
        stream).

        Raises:
            ValueError: frames of another size (or batch) than the first push.
            StreamBudgetError: the push would exceed the cache budget and
                eviction is disabled (nothing is computed).
        """
        images = self._check(frames)
        B, s, _, H, W = images.shape
        m = self.model
        agg = m.aggregator
        evict = self.cache.plan(s)  # raises before any work
        self.cache.evict(evict)
        t0 = self.num_frames
        need = set(self.layers) | (set(m.head_layers(track=False)) if self.heads else set())
        last = agg.depth - 1  # every layer: later frames attend to all of them
        h, w = H // m.config.patch_size, W // m.config.patch_size
        P = agg.patch_start_idx + h * w
        device = images.device
        cache = self.cache
        cache.begin(s)
        hooks = AggregatorHooks(attn_bias=lambda i, S, T: cache.mask(T, device),
                                kv_hook=lambda i: cache.hook(("aggregator", i),
                                                             agg.patch_start_idx if i in agg.register_layers else P))
        tokens: dict[int, Tensor] = {}
        out: dict[str, Any] = {}
        try:
            with precision_context(self.precision, device):
                state = agg.embed(images, first_index=t0)
                for i in range(last + 1):
                    y = agg.step(i, state, hooks, keep=i in need)
                    if y is not None:
                        tokens[i] = y  # [B, s, P, 2C]
            if self.heads:
                out = m.forward_heads({i: tokens[i] for i in m.head_layers(track=False)}, (H, W), kv_cache=cache)
        except BaseException:
            cache.rollback()  # a failed push (out of memory, Ctrl-C) leaves the cache as it was
            raise
        cache.commit(list(range(t0, t0 + s)))
        self.num_frames += s
        self.image_size, self.batch_size = (H, W), B
        if self.layers:
            out["tokens"] = {i: tokens[i] for i in self.layers}
        out["frame_indices"] = list(range(t0, t0 + s))
        return out
