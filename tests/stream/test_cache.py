"""The stream's key/value cache: causal masks, appending, the eviction policy, the budget errors."""

from __future__ import annotations

import pytest
import torch

from vggt3d.stream import CausalFrames, FrameKVCache, StreamBudgetError, StreamConfig, causal_mask


def test_causal_mask_layout():
    m = causal_mask(3, 2)  # 3 frames of 2 tokens
    assert m.shape == (6, 6)
    frame = torch.arange(3).repeat_interleave(2)
    assert torch.equal(m, frame[:, None] >= frame[None, :])
    past = causal_mask(2, 2, past=3)  # 2 new frames after 3 cached ones
    assert past.shape == (4, 10)
    assert past[:, :6].all() and past[:2, 6:8].all() and not past[:2, 8:].any() and past[2:].all()
    assert torch.equal(CausalFrames(3).mask(2), m) and CausalFrames(3).hook("x", 2) is None


def push(cache: FrameKVCache, frames: list[int], T: int = 2, value: float | None = None) -> tuple[torch.Tensor, ...]:
    """One push of ``frames`` through one layer: keys/values filled with each frame's index."""
    cache.evict(cache.plan(len(frames)))
    cache.begin(len(frames))
    k = torch.tensor(frames, dtype=torch.float32).repeat_interleave(T).view(1, 1, -1, 1).expand(1, 2, -1, 4)
    out = cache.hook("layer", T)(k, k + 0.5)
    cache.commit(frames)
    return out


def test_cache_appends_past_and_present():
    cache = FrameKVCache()
    k, v = push(cache, [0, 1])
    assert k.shape == (1, 2, 4, 4) and torch.equal(v, k + 0.5)
    k, _ = push(cache, [2])
    assert k[0, 0, :, 0].tolist() == [0, 0, 1, 1, 2, 2] and cache.frames == [0, 1, 2]
    assert cache.nbytes == 2 * 1 * 2 * 6 * 4 * 4


def test_eviction_keeps_frame_zero_recent_frames_and_keyframes():
    cache = FrameKVCache(StreamConfig(max_frames=6, recent=2, keyframe_interval=4))
    for t in range(12):
        k, _ = push(cache, [t])
        assert len(cache.frames) <= 6
        cached = sorted(set(k[0, 0, :, 0].long().tolist()))
        assert cached == cache.frames  # what the push attended to is what is cached
    # frame 0, keyframes 4 and 8 (older non-keyframes went first), and the newest frames
    assert cache.frames == [0, 4, 8, 9, 10, 11]
    assert 1 in cache.evicted and 0 not in cache.evicted


def test_memory_budget_in_megabytes():
    cache = FrameKVCache(StreamConfig(max_memory_mb=3 * 2 * 2 * 2 * 4 * 4 / 2**20, recent=1))  # 3 frames' k and v
    for t in range(5):
        push(cache, [t])
    assert cache.budget_frames() == 3 and cache.frames == [0, 3, 4]


def test_budget_errors_come_before_work():
    cache = FrameKVCache(StreamConfig(max_frames=3, evict=False))
    push(cache, [0, 1, 2])
    with pytest.raises(StreamBudgetError, match="eviction disabled"):
        cache.plan(1)
    assert cache.frames == [0, 1, 2]
    evicting = FrameKVCache(StreamConfig(max_frames=4, recent=2))
    push(evicting, [0])
    with pytest.raises(StreamBudgetError, match="at most 3 frames at a time"):
        evicting.plan(4)
    with pytest.raises(ValueError, match="max_frames"):
        StreamConfig(max_frames=4, recent=8)
    with pytest.raises(ValueError, match="max_memory_mb"):
        StreamConfig(max_memory_mb=float("nan"))
    with pytest.raises(ValueError, match="recent"):
        StreamConfig(recent=0)
