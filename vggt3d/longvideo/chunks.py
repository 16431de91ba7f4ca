"""Overlapping chunks of a long frame sequence, and which chunk each frame's outputs come from.

A video of ``T`` frames is cut into chunks of ``chunk`` consecutive frames,
consecutive chunks sharing at least ``overlap`` frames: the fewest chunks that
do, their starts spread evenly from the first frame to ``T - chunk`` (so every
chunk is full)::

    T = 10, chunk = 4, overlap = 1
    chunk 0: frames 0 1 2 3        owns 0 1 2
    chunk 1: frames 3 4 5 6        owns 3 4
    chunk 2: frames 5 6 7 8 ...    (starts spread evenly)

The shared frames are what aligns chunk ``k + 1`` to chunk ``k`` (a Sim(3)
from their points, :mod:`vggt3d.longvideo.align`). Each frame's outputs come
from exactly one chunk, its *owner*: a frame inside one chunk from that chunk;
a frame shared by two chunks from the one in which it sits further from the
edge (the first half of the shared frames goes to the earlier chunk, the second
half, with the middle frame of an odd count, to the later one).

The geometry prior's windows (:mod:`vggt3d.prior.windows`) are the same plan
over frames ``1..T-1`` with the clip's first frame prepended to every window as
a common anchor; reconstruction chunks have no anchor and are aligned instead.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Chunk", "ChunkPlanError", "check_chunking", "plan_chunks"]


class ChunkPlanError(ValueError):
    """Chunk size and overlap that cannot work (raised before any work)."""


@dataclass(frozen=True)
class Chunk:
    """Consecutive ``frames`` predicted in one pass, and the frames whose outputs it ``owns``."""

    frames: tuple[int, ...]
    owned: tuple[int, ...]

    def position(self, frame: int) -> int:
        """Index of sequence frame ``frame`` inside this chunk's model input."""
        return self.frames.index(frame)


def check_chunking(chunk: int, overlap: int, *, loop_closure: bool = False, max_chunk: int | None = None) -> None:
    """Validate chunk options before any work.

    Raises:
        ChunkPlanError: ``chunk < 2``, ``overlap`` outside ``[0, chunk)`` (a chunk
            must be longer than its overlap), ``overlap < 3`` where alignment needs
            shared frames (``loop_closure`` or any chunking: 0 shared frames
            cannot be aligned), or ``chunk > max_chunk`` (the planner's limit).
    """
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (chunk, overlap)):
        raise ChunkPlanError(f"--chunk and --overlap must be integers, got {chunk!r} and {overlap!r}")
    if chunk < 2:
        raise ChunkPlanError(f"--chunk must be >= 2 frames, got {chunk}")
    if not 0 <= overlap < chunk:
        raise ChunkPlanError(f"--overlap must be in [0, --chunk) = [0, {chunk}): a chunk must be longer than "
                             f"its overlap, got --chunk {chunk} --overlap {overlap}")
    if overlap == 0 and loop_closure:
        raise ChunkPlanError("--overlap 0 with loop closure: chunks that share no frames cannot be aligned or "
                             "closed into a loop; use --overlap 4 or more (or --no-loop-closure)")
    if overlap < 1:
        raise ChunkPlanError("--overlap 0: chunks that share no frames cannot be aligned into one "
                             "reconstruction; use --overlap 4 or more")
    if max_chunk is not None and chunk > max_chunk:
        raise ChunkPlanError(f"--chunk {chunk} is above what fits in memory ({max_chunk} frames per chunk at this "
                             "size, by the memory planner); use --chunk "
                             f"{max_chunk} or less, or raise --max-memory")


def plan_chunks(num_frames: int, chunk: int | None, overlap: int = 0, *, offset: int = 0) -> list[Chunk]:
    """Cut frames ``offset .. offset + num_frames - 1`` into full chunks of ``chunk`` frames.

    ``chunk=None`` or ``chunk >= num_frames`` gives one chunk with every frame.
    Consecutive chunks share at least ``overlap`` frames (``0 <= overlap < chunk``);
    see the module docstring for ownership.

    Raises:
        ChunkPlanError: ``num_frames < 1``, ``chunk < 1`` or a bad ``overlap``.
    """
    if num_frames < 1:
        raise ChunkPlanError(f"num_frames must be >= 1, got {num_frames}")
    if chunk is None or chunk >= num_frames:
        frames = tuple(range(offset, offset + num_frames))
        return [Chunk(frames, frames)]
    if chunk < 1:
        raise ChunkPlanError(f"chunk must be >= 1 frame, got {chunk}")
    if not 0 <= overlap < chunk:
        raise ChunkPlanError(f"overlap must be in [0, chunk) = [0, {chunk}), got {overlap}")
    stride = chunk - overlap
    span = num_frames - chunk  # how far the last chunk starts after the first (>= 1 here)
    count = 1 + -(-span // stride)  # fewest chunks whose neighbours share >= overlap frames
    # Spread the starts evenly over [0, span] (rounded), so no chunk is nearly redundant.
    starts = [(k * span + (count - 1) // 2) // (count - 1) for k in range(count)]
    # Owner boundaries: chunk k owns [bounds[k], bounds[k + 1]); shared frames split in half.
    bounds = [0] + [(starts[k] + starts[k - 1] + chunk) // 2 for k in range(1, count)] + [num_frames]
    return [Chunk(tuple(range(offset + s, offset + s + chunk)),
                  tuple(range(offset + bounds[k], offset + bounds[k + 1]))) for k, s in enumerate(starts)]
