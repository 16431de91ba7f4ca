"""From per-chunk predictions to one trajectory: chain, close loops, optimise, merge.

:func:`align_sequence` is model-free: it takes the chunks' geometry and, for
loop closure, a callback that predicts a loop chunk from a tuple of frame
indices (the model in :mod:`vggt3d.longvideo.chunked`, exact synthetic
geometry in the tests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .align import AlignmentConfig, ChunkAlignment, ChunkGeometry, align_chunks, merge_frames
from .chunks import Chunk
from .loops import LoopCandidate, loop_candidates, loop_chunk_frames, verify_loop
from .sim3 import AlignmentError

__all__ = ["LoopConfig", "SequenceAlignment", "align_sequence"]

log = logging.getLogger(__name__)


@dataclass
class LoopConfig:
    """Loop closure settings.

    Attributes:
        enabled: look for revisits at all.
        min_gap: frames closer in time than this are never a loop (default: 3 chunks' worth, see ``align_sequence``).
        threshold: minimum candidate score (cosine similarity of descriptors, or camera proximity).
        radius: camera proximity counts within this fraction of the path length.
        max_loops: candidates tried (each costs one extra model pass).
        chunk: frames per loop chunk (half around each visit; default: the chunk size).
        min_covisibility: verification: share of the second visit's points that must agree with the first's depth.
    """

    enabled: bool = True
    min_gap: int | None = None
    threshold: float = 0.85
    radius: float = 0.03
    max_loops: int = 4
    chunk: int | None = None
    min_covisibility: float = 0.5

    def __post_init__(self) -> None:
        if self.max_loops < 0 or not 0 < self.radius < 1 or not 0 < self.min_covisibility <= 1:
            raise ValueError("LoopConfig: max_loops >= 0, radius in (0, 1) and min_covisibility in (0, 1] needed")


@dataclass
class SequenceAlignment:
    """The merged per-frame outputs (see :func:`vggt3d.longvideo.align.merge_frames`) and how they were made."""

    frames: dict[str, np.ndarray]
    alignment: ChunkAlignment
    loops: list[LoopCandidate] = field(default_factory=list)  # verified and used
    rejected: list[tuple[LoopCandidate, str]] = field(default_factory=list)


def align_sequence(plan: list[Chunk], chunks: list[ChunkGeometry], *, descriptors: np.ndarray | None = None,
                   predict: Callable[[tuple[int, ...]], ChunkGeometry] | None = None,
                   config: AlignmentConfig | None = None, loops: LoopConfig | None = None) -> SequenceAlignment:
    """Align ``chunks`` (predicted for ``plan``), close loops through ``predict``, merge by ownership.

    Args:
        plan: the chunk plan (:func:`vggt3d.longvideo.chunks.plan_chunks`).
        chunks: one :class:`ChunkGeometry` per planned chunk, in order.
        descriptors: ``[T, D]`` per-frame descriptors for revisit candidates
            (cameras of the chained trajectory are used as well).
        predict: ``frames -> ChunkGeometry`` for loop chunks; ``None`` skips loop closure.

    Raises:
        AlignmentError: two consecutive chunks do not agree (the message names them).
    """
    if len(plan) != len(chunks):
        raise ValueError(f"{len(plan)} planned chunks but {len(chunks)} predictions")
    cfg, loop_cfg = config or AlignmentConfig(), loops or LoopConfig()
    owners = {f: k for k, c in enumerate(plan) for f in c.owned}
    T = len(owners)
    chained = align_chunks(chunks, config=cfg)
    if predict is None or not loop_cfg.enabled or len(plan) < 3 or loop_cfg.max_loops == 0:
        return SequenceAlignment(merge_frames(chunks, chained.world_from_chunk, owners), chained)

    size = loop_cfg.chunk or len(plan[0].frames)
    min_gap = loop_cfg.min_gap or 3 * len(plan[0].frames)
    first = merge_frames(chunks, chained.world_from_chunk, owners)
    candidates = loop_candidates(T, descriptors=descriptors, cam_from_world=first["cam_from_world"],
                                 min_gap=min(min_gap, T - 1), threshold=loop_cfg.threshold,
                                 radius=loop_cfg.radius, max_loops=loop_cfg.max_loops)
    everything, edges, used, rejected = list(chunks), [], [], []
    for cand in candidates:
        group_a, group_b = loop_chunk_frames(cand, size, T)
        geometry = predict(group_a + group_b)
        everything.append(geometry)
        try:
            edges += verify_loop(everything, len(everything) - 1, group_a, group_b,
                                 owners[group_a[len(group_a) // 2]], owners[group_b[len(group_b) // 2]], cfg,
                                 min_covisibility=loop_cfg.min_covisibility)
            used.append(cand)
        except AlignmentError as exc:
            everything.pop()
            rejected.append((cand, str(exc)))
            log.info("loop candidate frames %d / %d rejected: %s", cand.a, cand.b, exc)
    if not used:
        return SequenceAlignment(first, chained, [], rejected)
    closed = align_chunks(everything, edges, config=cfg, loop_chunks=len(everything) - len(chunks),
                          sequential=chained.edges)
    log.info("closed %d loop(s) over %d chunks", len(used), len(chunks))
    return SequenceAlignment(merge_frames(everything, closed.world_from_chunk, owners), closed, used, rejected)
