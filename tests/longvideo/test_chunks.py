"""Chunk plans: full chunks, overlap, ownership, option checks; the prior's windows are the same plan."""

from __future__ import annotations

import pytest

from vggt3d.longvideo import ChunkPlanError, check_chunking, plan_chunks
from vggt3d.prior.windows import plan_windows


def test_documented_example():
    chunks = plan_chunks(10, 4, 1)
    assert [c.frames[0] for c in chunks] == [0, 3, 6] and all(len(c.frames) == 4 for c in chunks)
    assert sorted(f for c in chunks for f in c.owned) == list(range(10))


@pytest.mark.parametrize("T", [5, 17, 100, 1000])
@pytest.mark.parametrize("chunk,overlap", [(2, 1), (4, 0), (8, 3), (32, 8)])
def test_invariants(T, chunk, overlap):
    chunks = plan_chunks(T, chunk, overlap)
    assert sorted(f for c in chunks for f in c.owned) == list(range(T)), "every frame owned exactly once"
    for c in chunks:
        assert len(c.frames) == min(chunk, T)
        assert list(c.frames) == list(range(c.frames[0], c.frames[0] + len(c.frames)))
        assert set(c.owned) <= set(c.frames)
    for a, b in zip(chunks, chunks[1:]):
        assert len(set(a.frames) & set(b.frames)) >= overlap


@pytest.mark.parametrize("T,window,overlap", [(10, 5, 1), (23, 4, 2), (50, 9, 1), (7, 6, 3)])
def test_prior_windows_are_anchored_chunks(T, window, overlap):
    chunks = plan_chunks(T - 1, window - 1, overlap, offset=1)
    windows = plan_windows(T, window, overlap)
    assert [w.frames for w in windows] == [(0,) + c.frames for c in chunks]


def test_bad_options_fail_before_work():
    with pytest.raises(ChunkPlanError, match="longer than its overlap"):
        check_chunking(8, 8)
    with pytest.raises(ChunkPlanError, match="overlap 0 with loop closure"):
        check_chunking(8, 0, loop_closure=True)
    with pytest.raises(ChunkPlanError, match="cannot be aligned"):
        check_chunking(8, 0)
    with pytest.raises(ChunkPlanError, match="above what fits in memory"):
        check_chunking(64, 8, max_chunk=32)
    with pytest.raises(ChunkPlanError, match=">= 2"):
        check_chunking(1, 0)
    check_chunking(32, 8, loop_closure=True, max_chunk=32)
