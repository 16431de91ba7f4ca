"""Windows over long clips: which frames the model sees together, and which window each frame's features come from.

The model treats the first frame of its input specially: frame 0 gets the
"first" camera and register tokens, and its camera is the world frame of every
prediction. A clip longer than one window is therefore cut so that every
window starts with the same **anchor**, frame 0 of the clip::

    T = 10, window = 5, overlap = 1
    window 0: frames (0, 1, 2, 3, 4)   owns 0, 1, 2, 3
    window 1: frames (0, 4, 5, 6, 7)   owns 4, 5, 6
    window 2: frames (0, 6, 7, 8, 9)   owns 7, 8, 9     (every window is full)

so all windows share the reference frame (the same world frame and the same
special tokens), and the predictions of different windows live in one
coordinate frame. The non-anchor frames ``1..T-1`` are split into chunks of
``window - 1`` frames, consecutive chunks sharing at least ``overlap``
frames: the fewest chunks that do, with their starts spread evenly from frame 1
to frame ``T - window + 1`` (so every window is full). Each frame's features come from
exactly one window (its *owner*): frame 0 from window 0; a frame inside one
chunk only from that chunk's window; a frame shared by two chunks from the
window in which it sits further from the edge (the first half of the shared
frames goes to the earlier window, the second half, with the middle frame of
an odd count, to the later one).

These are the chunks of :func:`vggt3d.longvideo.chunks.plan_chunks` (the plan
``vggt3d reconstruct --chunk`` uses) over frames ``1..T-1``, each with the
anchor prepended: reconstruction chunks need a Sim(3) alignment through their
shared frames because each is predicted in its own first camera's frame;
prior windows need none, since the common anchor puts every window in frame 0's.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..longvideo.chunks import plan_chunks

__all__ = ["Window", "plan_windows", "frame_owners"]


@dataclass(frozen=True)
class Window:
    """One model call: ``frames`` (clip indices, ``frames[0]`` is the anchor) and the frames it ``owns``."""

    frames: tuple[int, ...]
    owned: tuple[int, ...]

    def position(self, frame: int) -> int:
        """Index of clip frame ``frame`` inside this window's model input."""
        return self.frames.index(frame)


def plan_windows(num_frames: int, window: int | None = None, overlap: int = 0) -> list[Window]:
    """Cut ``num_frames`` frames into anchored windows of at most ``window`` frames.

    ``window=None`` or ``window >= num_frames`` gives one window with every
    frame (a single pass). Otherwise every window holds exactly ``window``
    frames: the anchor (frame 0) and ``window - 1`` consecutive frames, and
    consecutive windows share ``overlap`` of those (``0 <= overlap <
    window - 1``). See the module docstring for which window owns which frame.

    Raises:
        ValueError: ``num_frames < 1``, ``window < 2`` or a bad ``overlap``.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if window is None or window >= num_frames:
        frames = tuple(range(num_frames))
        return [Window(frames, frames)]
    if window < 2:
        raise ValueError(f"window must be >= 2 frames (the anchor and at least one more), got {window}")
    chunk = window - 1
    if not 0 <= overlap < chunk:
        raise ValueError(f"overlap must be in [0, window - 1) = [0, {chunk}), got {overlap}")
    # The same plan as reconstruction chunks (shared code), over the non-anchor frames 1..T-1.
    chunks = plan_chunks(num_frames - 1, chunk, overlap, offset=1)
    return [Window((0,) + c.frames, ((0,) if k == 0 else ()) + c.owned) for k, c in enumerate(chunks)]


def frame_owners(windows: list[Window], num_frames: int) -> list[int]:
    """``owner[t]``: the index of the window whose features frame ``t`` gets."""
    owner = [-1] * num_frames
    for k, win in enumerate(windows):
        for t in win.owned:
            owner[t] = k
    if -1 in owner:
        raise ValueError(f"windows do not cover frame {owner.index(-1)} of {num_frames}")
    return owner
