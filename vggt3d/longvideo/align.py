"""Align chunk predictions into one trajectory: pairwise Sim(3) through shared frames, then a pose graph.

Each chunk is predicted in its own frame (its first camera, the model's
scale). Two chunks that share frames see the same pixels of those frames, so
their point maps at those pixels are direct correspondences: a robust,
confidence-weighted Sim(3) (:func:`vggt3d.longvideo.sim3.robust_sim3`) maps
one chunk into the other. The fit is verified geometrically: most of the
confidence must agree, the residual must be small relative to the points'
spread, and the fitted rotation must agree with the shared frames' camera
rotations. Consecutive fits are chained into a first trajectory; loop edges
(:mod:`vggt3d.longvideo.loops`) are added and the Sim(3) pose graph is
optimised (:mod:`vggt3d.longvideo.posegraph`).

Convention: ``cam_from_world`` 4x4 with OpenCV axes (x right, y down, z
forward) in each chunk's own world frame; points ``[S, H, W, 3]`` in that frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .posegraph import GraphEdge, optimize_pose_graph
from .sim3 import AlignmentError, Sim3, Sim3Fit, robust_sim3

__all__ = ["AlignmentConfig", "ChunkGeometry", "ChunkAlignment", "PairAlignment", "align_chunks", "align_pair",
           "merge_frames"]

log = logging.getLogger(__name__)


@dataclass
class AlignmentConfig:
    """Thresholds of the pairwise alignment and its verification.

    Attributes:
        max_points_per_frame: shared-frame pixels used per frame (a regular subsample).
        inlier_threshold: RANSAC/IRLS inlier distance, as a fraction of the points' RMS spread.
        min_inlier_fraction: verification: the inliers must carry at least this much of the confidence.
        max_relative_residual: verification: inlier RMS residual / spread at most this.
        max_rotation_deg: verification: fitted rotation vs. the shared cameras' relative rotations (median).
        conf_power: correspondence weight ``(conf_a * conf_b) ** conf_power``.
        loop_weight: pose-graph weight of loop edges against consecutive ones (1). A loop
            chunk relates the two visits in one pass, free of the drift the chain
            accumulates, so it is trusted more; on the synthetic room loop 4 closes
            the loop about 5x better than 1 (``tests/longvideo/test_trajectories.py``).
    """

    max_points_per_frame: int = 2048
    inlier_threshold: float = 0.05
    min_inlier_fraction: float = 0.5
    max_relative_residual: float = 0.05
    max_rotation_deg: float = 5.0
    conf_power: float = 0.5
    ransac_iterations: int = 64
    loop_weight: float = 4.0

    def __post_init__(self) -> None:
        for name in ("max_points_per_frame", "inlier_threshold", "max_relative_residual", "max_rotation_deg",
                     "loop_weight"):
            if not getattr(self, name) > 0:
                raise ValueError(f"AlignmentConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if not 0 < self.min_inlier_fraction <= 1:
            raise ValueError(f"AlignmentConfig.min_inlier_fraction must be in (0, 1], got {self.min_inlier_fraction}")


@dataclass
class ChunkGeometry:
    """One chunk's predictions in its own frame.

    Attributes:
        frames: ``[S]`` sequence indices of the chunk's frames.
        cam_from_world: ``[S, 4, 4]`` rigid (OpenCV axes), in the chunk's frame.
        points: ``[S, H, W, 3]`` world points (from depth and cameras, or the point map).
        conf: ``[S, H, W]`` confidence (> 0; 0 marks pixels without a prediction).
        intrinsics: ``[S, 3, 3]`` in the pixels of ``points`` (for co-visibility checks).
    """

    frames: np.ndarray
    cam_from_world: np.ndarray
    points: np.ndarray
    conf: np.ndarray
    intrinsics: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, dtype=np.int64).reshape(-1)
        S = len(self.frames)
        if self.cam_from_world.shape != (S, 4, 4) or self.points.shape[0] != S or self.points.shape[-1] != 3 \
                or self.conf.shape != self.points.shape[:-1]:
            raise ValueError(f"chunk arrays disagree: frames {S}, cam_from_world {self.cam_from_world.shape}, "
                             f"points {self.points.shape}, conf {self.conf.shape}")

    def index(self, frame: int) -> int:
        """Position of sequence frame ``frame`` in this chunk."""
        hits = np.flatnonzero(self.frames == frame)
        if not len(hits):
            raise KeyError(f"frame {frame} is not in this chunk")
        return int(hits[0])


@dataclass
class PairAlignment:
    """``transform`` maps chunk ``j`` into chunk ``i`` (``chunk_i_from_chunk_j``), verified on ``shared`` frames."""

    i: int
    j: int
    transform: Sim3
    fit: Sim3Fit
    shared: tuple[int, ...]
    rotation_error_deg: float
    unit: float  # RMS spread of chunk j's shared points


@dataclass
class ChunkAlignment:
    """``world_from_chunk`` for every chunk (chunk 0's frame is the world), and the edges that produced it."""

    world_from_chunk: list[Sim3]
    edges: list[PairAlignment] = field(default_factory=list)
    chained: list[Sim3] = field(default_factory=list)  # before the pose graph


def _rotation_angle_deg(r: np.ndarray) -> np.ndarray:
    cos = (np.trace(r, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def align_pair(chunks: list[ChunkGeometry], i: int, j: int, config: AlignmentConfig | None = None,
               frames: tuple[int, ...] | None = None) -> PairAlignment:
    """Robust Sim(3) ``chunk_i_from_chunk_j`` from the frames both chunks hold (or the given ``frames``), verified.

    Raises:
        AlignmentError: no shared frame, or the verification fails (names the chunks and why).
    """
    cfg = config or AlignmentConfig()
    a, b = chunks[i], chunks[j]
    shared = tuple(sorted(set(a.frames.tolist()) & set(b.frames.tolist()))) if frames is None else tuple(frames)
    if not shared:
        raise AlignmentError(f"chunks {i} and {j} share no frame; they cannot be aligned")
    src, dst, w, rot_errors = [], [], [], []
    for f in shared:
        ia, ib = a.index(f), b.index(f)
        pa, pb = a.points[ia].reshape(-1, 3), b.points[ib].reshape(-1, 3)
        ca, cb = a.conf[ia].reshape(-1), b.conf[ib].reshape(-1)
        step = max(1, len(pa) // cfg.max_points_per_frame)
        sel = slice(0, None, step)
        src.append(pb[sel])
        dst.append(pa[sel])
        w.append((np.clip(ca[sel], 0, None) * np.clip(cb[sel], 0, None)) ** cfg.conf_power)
    src_all, dst_all, w_all = np.concatenate(src), np.concatenate(dst), np.concatenate(w)
    try:
        fit = robust_sim3(src_all, dst_all, w_all, inlier_threshold=cfg.inlier_threshold,
                          ransac_iterations=cfg.ransac_iterations, seed=i * 7919 + j)
    except AlignmentError as exc:
        raise AlignmentError(f"chunks {i} and {j} cannot be aligned on frames {list(shared)}: {exc}") from exc
    for f in shared:  # the camera of frame f in chunk i: R_a = R_b R^T  ->  R = R_a^T R_b
        r_a, r_b = a.cam_from_world[a.index(f), :3, :3], b.cam_from_world[b.index(f), :3, :3]
        rot_errors.append(_rotation_angle_deg(fit.transform.rotation.T @ (r_a.T @ r_b)))
    rot_error = float(np.median(rot_errors))
    keep = np.isfinite(src_all).all(1) & (w_all > 0)
    unit = float(np.sqrt(((src_all[keep] - src_all[keep].mean(0)) ** 2).sum(1).mean()))
    problems = []
    if fit.inlier_fraction < cfg.min_inlier_fraction:
        problems.append(f"only {fit.inlier_fraction:.0%} of the confidence agrees (need "
                        f"{cfg.min_inlier_fraction:.0%})")
    if fit.relative_residual > cfg.max_relative_residual:
        problems.append(f"residual {fit.relative_residual:.3f} of the scene size (limit {cfg.max_relative_residual})")
    if rot_error > cfg.max_rotation_deg:
        problems.append(f"cameras disagree with the fit by {rot_error:.1f} deg (limit {cfg.max_rotation_deg})")
    if problems:
        raise AlignmentError(f"chunks {i} and {j} (frames {shared[0]}-{shared[-1]}) do not agree: "
                             + "; ".join(problems))
    return PairAlignment(i, j, fit.transform, fit, shared, rot_error, max(unit, 1e-9))


def align_chunks(chunks: list[ChunkGeometry], loop_edges: list[PairAlignment] | None = None,
                 config: AlignmentConfig | None = None, loop_chunks: int = 0,
                 sequential: list[PairAlignment] | None = None) -> ChunkAlignment:
    """Chain consecutive chunks (``k`` to ``k + 1``) and, with loop edges, optimise the Sim(3) pose graph.

    Args:
        chunks: the sequence's chunks in order (consecutive ones must share
            frames), then ``loop_chunks`` loop chunks (not chained; placed through their edges).
        loop_edges: further verified pairs (e.g. between a loop chunk and the
            chunks it revisits); node indices refer to ``chunks``.
        sequential: the consecutive alignments, when already computed.

    Raises:
        AlignmentError: a consecutive pair cannot be aligned (names which).
    """
    cfg = config or AlignmentConfig()
    seq = sequential if sequential is not None else [align_pair(chunks, k, k + 1, cfg)
                                                     for k in range(len(chunks) - 1 - loop_chunks)]
    chained = [Sim3.identity()]
    for edge in seq:
        chained.append(chained[-1] @ edge.transform)  # world_from_{k+1} = world_from_k @ k_from_{k+1}
    loops = list(loop_edges or [])
    nodes = list(chained)
    for k in range(len(chunks) - len(nodes)):  # loop chunks: placed through their first edge to a known node
        node = len(nodes)
        first = next((e for e in loops if node in (e.i, e.j) and max(e.i, e.j) == node and min(e.i, e.j) < node),
                     None)
        if first is None:
            raise AlignmentError(f"chunk {node} has no edge to an earlier chunk")
        nodes.append(nodes[first.i] @ first.transform if first.j == node else
                     nodes[first.j] @ first.transform.inverse())
    if not loops:
        return ChunkAlignment(nodes, seq, list(nodes))
    graph = ([GraphEdge(e.i, e.j, e.transform, e.unit, 1.0) for e in seq]
             + [GraphEdge(e.i, e.j, e.transform, e.unit, cfg.loop_weight) for e in loops])
    optimized = optimize_pose_graph(nodes, graph)
    return ChunkAlignment(optimized, seq + loops, nodes)


def merge_frames(chunks: list[ChunkGeometry], world_from_chunk: list[Sim3], owners: dict[int, int]
                 ) -> dict[str, np.ndarray]:
    """Per-frame outputs in the world frame from each frame's owner chunk.

    Args:
        owners: ``{frame: chunk index}`` for every frame to output (in any order; output is sorted by frame).

    Returns:
        ``frames [T]``, ``cam_from_world [T, 4, 4]``, ``points [T, H, W, 3]`` (float32), ``conf [T, H, W]``,
        ``scale [T]`` (the owner chunk's scale, which multiplies its depths).
    """
    frames = sorted(owners)
    cams, pts, conf, scale = [], [], [], []
    for f in frames:
        k = owners[f]
        c, t = chunks[k], world_from_chunk[k]
        idx = c.index(f)
        cams.append(t.transform_cameras(c.cam_from_world[idx]))
        pts.append(t.apply(c.points[idx]).astype(np.float32))
        conf.append(c.conf[idx])
        scale.append(t.scale)
    return {"frames": np.asarray(frames), "cam_from_world": np.stack(cams), "points": np.stack(pts),
            "conf": np.stack(conf), "scale": np.asarray(scale)}
