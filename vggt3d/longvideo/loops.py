"""Loop closure: find revisits, verify them geometrically, and turn them into pose-graph edges.

1. **Candidates** (:func:`loop_candidates`): pairs of frames ``(a, b)`` at least
   ``min_gap`` frames apart whose per-frame descriptors (e.g. the model's mean
   patch tokens, L2-normalised) are most similar, and/or whose cameras, after
   chaining the chunks, are close in position and viewing direction. Non-maximum
   suppression keeps one candidate per revisit.
2. **Loop chunk** (:func:`loop_chunk_frames`): the frames around ``a`` and around
   ``b`` are predicted together in one extra pass, so the model relates the two
   visits directly.
3. **Verification** (:func:`verify_loop`): inside the loop chunk, points seen
   from the ``b`` frames must re-project into the ``a`` frames with consistent
   depth (co-visibility), and the loop chunk must align, with the checks of
   :func:`vggt3d.longvideo.align.align_pair`, to the chunks holding ``a`` and ``b``.
   The two alignments become pose-graph edges.

Convention: ``cam_from_world`` 4x4, OpenCV axes (x right, y down, z forward);
intrinsics in the pixels of the point maps, pixel centres at integers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .align import AlignmentConfig, ChunkGeometry, PairAlignment, align_pair
from .sim3 import AlignmentError

__all__ = ["LoopCandidate", "covisibility", "loop_candidates", "loop_chunk_frames", "verify_loop"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopCandidate:
    """Frames ``a < b`` that may show the same place; ``score`` in [0, 1] (higher is likelier)."""

    a: int
    b: int
    score: float


def _suppress(a_idx: np.ndarray, b_idx: np.ndarray, s: np.ndarray, min_gap: int, max_loops: int
              ) -> list[LoopCandidate]:
    """Greedy non-maximum suppression over candidate pairs ``(a, b)`` with scores ``s``."""
    order = np.argsort(-s, kind="stable")
    picked: list[LoopCandidate] = []
    radius = max(1, min_gap // 2)
    for o in order:
        if len(picked) >= max_loops:
            break
        a, b = int(a_idx[o]), int(b_idx[o])
        if any(abs(a - p.a) < radius and abs(b - p.b) < radius for p in picked):
            continue
        picked.append(LoopCandidate(a, b, float(s[o])))
    return picked


def loop_candidates(num_frames: int, *, descriptors: np.ndarray | None = None,
                    cam_from_world: np.ndarray | None = None, min_gap: int = 30, threshold: float = 0.8,
                    radius: float = 0.05, max_angle_deg: float = 30.0, max_loops: int = 4,
                    block: int = 512) -> list[LoopCandidate]:
    """Revisit candidates from descriptors, from chained cameras, or both (the larger score counts).

    Args:
        descriptors: ``[T, D]`` per-frame descriptors (cosine similarity after removing their mean is the score).
        cam_from_world: ``[T, 4, 4]`` cameras after chaining the chunks; the score
            is ``1 - distance / (radius * path length)`` where the viewing
            directions differ by at most ``max_angle_deg``.
        min_gap: frames closer in time are never a loop.
        threshold: minimum score.
        block: frames scored at a time (memory ``block x T``, not ``T x T``); each
            frame keeps its best later partner, then non-maximum suppression picks.
    """
    if descriptors is None and cam_from_world is None:
        raise ValueError("loop_candidates needs descriptors, cameras, or both")
    if min_gap < 1:
        raise ValueError(f"min_gap must be >= 1, got {min_gap}")
    T = num_frames
    d = centres = forward = None
    scale = 1.0
    if descriptors is not None:
        d = np.asarray(descriptors, dtype=np.float64).reshape(T, -1)
        d = d - d.mean(axis=0)  # pooled features share a large common part; compare what sets frames apart
        d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    if cam_from_world is not None:
        cam = np.asarray(cam_from_world, dtype=np.float64)
        centres = -np.einsum("tji,tj->ti", cam[:, :3, :3], cam[:, :3, 3])  # -R^T t
        scale = max(radius * float(np.linalg.norm(np.diff(centres, axis=0), axis=1).sum()), 1e-12)
        forward = cam[:, 2, :3]  # the camera's z axis in world coordinates
    a_all, b_all, s_all = [], [], []
    cols = np.arange(T)
    for r0 in range(0, T, block):
        rows = np.arange(r0, min(r0 + block, T))
        scores = np.zeros((len(rows), T))
        if d is not None:
            scores = np.maximum(scores, d[rows] @ d.T)
        if centres is not None:
            dist = np.linalg.norm(centres[rows, None] - centres[None], axis=-1)
            angle = np.degrees(np.arccos(np.clip(forward[rows] @ forward.T, -1.0, 1.0)))
            scores = np.maximum(scores, np.where(angle <= max_angle_deg, 1.0 - dist / scale, 0.0))
        scores[cols[None, :] < rows[:, None] + min_gap] = -np.inf  # only later frames, at least min_gap on
        best = scores.argmax(axis=1)
        value = scores[np.arange(len(rows)), best]
        keep = value >= threshold
        a_all.append(rows[keep])
        b_all.append(best[keep])
        s_all.append(value[keep])
    return _suppress(np.concatenate(a_all), np.concatenate(b_all), np.concatenate(s_all), min_gap, max_loops)


def loop_chunk_frames(candidate: LoopCandidate, size: int, num_frames: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The frames of a loop chunk: ``size // 2`` consecutive frames around ``a`` and the rest around ``b``."""
    if size < 4:
        raise ValueError(f"a loop chunk needs >= 4 frames, got {size}")
    half_a = size // 2

    def around(centre: int, n: int, lo: int, hi: int) -> tuple[int, ...]:
        start = int(np.clip(centre - n // 2, lo, max(lo, hi - n)))
        return tuple(range(start, min(start + n, hi)))

    a_frames = around(candidate.a, half_a, 0, num_frames)
    b_frames = around(candidate.b, size - half_a, a_frames[-1] + 1, num_frames)
    return a_frames, b_frames


def covisibility(chunk: ChunkGeometry, group_a: tuple[int, ...], group_b: tuple[int, ...], *,
                 rel_tol: float = 0.05, samples: int = 1024) -> float:
    """Fraction of ``group_b``'s points (inside an ``a`` image, in front of it) whose depth agrees with that image's.

    Uses the chunk's own cameras, intrinsics and point maps (``chunk.intrinsics`` is required).
    """
    if chunk.intrinsics is None:
        raise ValueError("covisibility needs the chunk's intrinsics")
    H, W = chunk.points.shape[1:3]
    pts = np.concatenate([chunk.points[chunk.index(f)].reshape(-1, 3)[chunk.conf[chunk.index(f)].reshape(-1) > 0]
                          for f in group_b])
    if len(pts) == 0:
        return 0.0
    pts = pts[:: max(1, len(pts) // samples)]
    seen = agree = 0
    for f in group_a:
        k = chunk.index(f)
        cam, K = chunk.cam_from_world[k], chunk.intrinsics[k]
        depth = (chunk.points[k].reshape(-1, 3) @ cam[2, :3] + cam[2, 3]).reshape(H, W)
        depth = np.where(chunk.conf[k] > 0, depth, np.nan)
        x = pts @ cam[:3, :3].T + cam[:3, 3]
        front = x[:, 2] > 1e-9
        uv = x[front, :2] / x[front, 2:3] @ K[:2, :2].T + K[:2, 2]
        u, v = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
        inside = (u >= 0) & (u < W) & (v >= 0) & (v < H)
        d_img = depth[v[inside], u[inside]]
        z = x[front, 2][inside]
        ok = np.isfinite(d_img)
        seen += int(ok.sum())
        agree += int((np.abs(z[ok] - d_img[ok]) <= rel_tol * d_img[ok]).sum())
    return agree / seen if seen else 0.0


def verify_loop(chunks: list[ChunkGeometry], loop_index: int, group_a: tuple[int, ...], group_b: tuple[int, ...],
                chunk_a: int, chunk_b: int, config: AlignmentConfig | None = None, *,
                min_covisibility: float = 0.5) -> list[PairAlignment]:
    """Verify loop chunk ``chunks[loop_index]`` and return its two edges (to ``chunk_a`` and ``chunk_b``).

    Raises:
        AlignmentError: the two visits are not co-visible in the loop chunk, or an alignment fails.
    """
    loop = chunks[loop_index]
    score = covisibility(loop, group_a, group_b)
    if score < min_covisibility:
        raise AlignmentError(f"loop frames {group_a[0]}-{group_a[-1]} / {group_b[0]}-{group_b[-1]}: only "
                             f"{score:.0%} of the points agree across the two visits (need {min_covisibility:.0%})")
    edges = []
    for target, group in ((chunk_a, group_a), (chunk_b, group_b)):
        shared = tuple(f for f in group if f in set(chunks[target].frames.tolist()))
        edges.append(align_pair(chunks, target, loop_index, config, frames=shared))
    log.debug("loop %s/%s verified: co-visibility %.2f", group_a, group_b, score)
    return edges
