"""Window plans over long clips: the anchor, full windows, ownership, overlap."""

from __future__ import annotations

import pytest

from vggt3d.prior.windows import frame_owners, plan_windows


def test_single_pass_when_the_clip_fits():
    for T, window in ((1, None), (5, None), (5, 5), (5, 8)):
        (win,) = plan_windows(T, window, 0)
        assert win.frames == win.owned == tuple(range(T))


def test_documented_example():
    windows = plan_windows(10, 5, 1)
    assert [w.frames for w in windows] == [(0, 1, 2, 3, 4), (0, 4, 5, 6, 7), (0, 6, 7, 8, 9)]
    assert [w.owned for w in windows] == [(0, 1, 2, 3), (4, 5, 6), (7, 8, 9)]
    assert frame_owners(windows, 10) == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]


@pytest.mark.parametrize("T", [3, 7, 10, 23, 50])
@pytest.mark.parametrize("window,overlap", [(2, 0), (4, 0), (4, 2), (6, 3), (9, 1)])
def test_invariants(T, window, overlap):
    windows = plan_windows(T, window, overlap)
    owners = frame_owners(windows, T)  # every frame owned exactly once (raises otherwise)
    assert sorted(t for w in windows for t in w.owned) == list(range(T))
    for w in windows:
        assert w.frames[0] == 0, "every window starts with the anchor, frame 0"
        assert len(w.frames) == min(window, T), "every window is full"
        assert list(w.frames[1:]) == list(range(w.frames[1], w.frames[1] + len(w.frames) - 1)), "consecutive frames"
        assert set(w.owned) <= set(w.frames)
        assert list(w.owned) == sorted(w.owned)
    for a, b in zip(windows, windows[1:]):
        assert len(set(a.frames[1:]) & set(b.frames[1:])) >= min(overlap, T - 1)
    assert owners == sorted(owners), "owned frames are contiguous, in window order"


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_frames"):
        plan_windows(0, 4)
    with pytest.raises(ValueError, match="window must be >= 2"):
        plan_windows(10, 1)
    with pytest.raises(ValueError, match="overlap"):
        plan_windows(10, 4, 3)
