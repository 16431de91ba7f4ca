"""Co-visibility-aware choice of the S frames of a training sample.

The overlap of two frames is scored cheaply from cameras and a few 3D points
per frame (from depth, sparse SfM points, or a depth guess from where the
optical axes converge): the share of frame a's points that project inside
frame b, and vice versa. A random anchor becomes frame 0 (the reference);
the other frames are drawn among those overlapping it enough.

Convention: ``cam_from_world [F, 3, 4]`` (OpenCV axes: x right, y down, z
forward), intrinsics ``[F, 3, 3]`` pixels with centres at integers, sizes ``[F, 2]``
as (H, W).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

__all__ = ["camera_guess_points", "overlap_scores", "select_covisible_frames"]


def _centres_and_axes(cam_from_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rotation, translation = cam_from_world[:, :, :3], cam_from_world[:, :, 3]
    centres = -np.einsum("fji,fj->fi", rotation, translation)  # [F, 3] = -R^T t
    return centres, rotation[:, 2, :]  # optical axes (camera z in world) [F, 3]


def camera_guess_points(cam_from_world: np.ndarray, intrinsics: np.ndarray, sizes: np.ndarray, grid: int = 6
                        ) -> list[np.ndarray]:
    """A ``grid x grid`` set of world points per frame, at a guessed depth, when no depth is known.

    Convention: the guessed depth of a frame is the z of the point closest to all
    optical axes (least squares) when it lies in front of the camera, otherwise
    twice the median distance between camera centres (1 for a single camera).

    Returns:
        F arrays ``[grid * grid, 3]``.
    """
    centres, axes = _centres_and_axes(np.asarray(cam_from_world, np.float64))
    count = len(centres)
    spread = np.median(np.linalg.norm(centres[:, None] - centres[None], axis=-1)) if count > 1 else 0.0
    fallback = 2.0 * spread if spread > 0 else 1.0
    depth = np.full(count, fallback)
    if count > 1:
        projectors = np.eye(3)[None] - axes[:, :, None] * axes[:, None, :]  # [F, 3, 3]
        a, b = projectors.sum(0), np.einsum("fij,fj->i", projectors, centres)
        if np.linalg.cond(a) < 1e6:
            focus = np.linalg.solve(a, b)
            z = np.einsum("fi,fi->f", focus - centres, axes)
            depth = np.where(z > 1e-6, z, fallback)
    return [_grid_points(cam_from_world[f], intrinsics[f], sizes[f], depth[f], grid) for f in range(count)]


def _grid_points(cam_from_world: np.ndarray, intrinsics: np.ndarray, size: Sequence[int], depth: float, grid: int
                 ) -> np.ndarray:
    height, width = int(size[0]), int(size[1])
    u = (np.arange(grid) + 0.5) * width / grid - 0.5
    v = (np.arange(grid) + 0.5) * height / grid - 0.5
    uu, vv = np.meshgrid(u, v, indexing="xy")
    cam = np.stack([(uu - intrinsics[0, 2]) / intrinsics[0, 0], (vv - intrinsics[1, 2]) / intrinsics[1, 1],
                    np.ones_like(uu)], -1).reshape(-1, 3) * depth  # [grid^2, 3]
    rotation, translation = cam_from_world[:, :3], cam_from_world[:, 3]
    return (cam - translation) @ rotation  # R^T (X_cam - t)


def _inside_fraction(points: np.ndarray, cam_from_world: np.ndarray, intrinsics: np.ndarray, size: Sequence[int]
                     ) -> float:
    if len(points) == 0:
        return 0.0
    cam = points @ cam_from_world[:, :3].T + cam_from_world[:, 3]  # [P, 3]
    z = cam[:, 2]
    front = z > 1e-9
    zs = np.where(front, z, 1.0)
    u = intrinsics[0, 0] * cam[:, 0] / zs + intrinsics[0, 2]
    v = intrinsics[1, 1] * cam[:, 1] / zs + intrinsics[1, 2]
    inside = front & (u >= -0.5) & (u <= size[1] - 0.5) & (v >= -0.5) & (v <= size[0] - 0.5)
    return float(inside.mean())


def overlap_scores(anchor: int, points: Sequence[np.ndarray], cam_from_world: np.ndarray, intrinsics: np.ndarray,
                   sizes: np.ndarray) -> np.ndarray:
    """Symmetric overlap ``[F]`` in [0, 1] of every frame with frame ``anchor``.

    Convention: ``min(share of anchor's points inside frame b, share of b's points
    inside the anchor)``; no occlusion test. The anchor scores 1.
    """
    count = len(points)
    scores = np.empty(count)
    for b in range(count):
        if b == anchor:
            scores[b] = 1.0
            continue
        ab = _inside_fraction(points[anchor], cam_from_world[b], intrinsics[b], sizes[b])
        ba = _inside_fraction(points[b], cam_from_world[anchor], intrinsics[anchor], sizes[anchor])
        scores[b] = min(ab, ba)
    return scores


def select_covisible_frames(num_frames: int, scores_for: Callable[[int], np.ndarray], frame_count: int,
                            rng: np.random.Generator, min_overlap: float = 0.2) -> list[int]:
    """Pick ``num_frames`` frame indices, the first (reference) a random anchor.

    Args:
        num_frames: S >= 1.
        scores_for: ``anchor -> [F]`` overlap scores (e.g. :func:`overlap_scores`).
        frame_count: F >= 1.
        rng: source of randomness.
        min_overlap: frames scoring below this are used only when too few reach it
            (best first); frames repeat only when the scene has fewer than S.

    Returns:
        S frame indices; index 0 is the anchor; the others in random order.
    """
    if frame_count < 1:
        raise ValueError("cannot select frames from a scene without frames")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    anchor = int(rng.integers(frame_count))
    need = num_frames - 1
    if need == 0:
        return [anchor]
    scores = np.asarray(scores_for(anchor), dtype=np.float64)
    others = np.array([f for f in range(frame_count) if f != anchor], dtype=np.int64)
    if len(others) == 0:
        return [anchor] * num_frames
    good = others[scores[others] >= min_overlap]
    if len(good) >= need:
        chosen = rng.choice(good, size=need, replace=False)
    else:
        chosen = others[np.argsort(-scores[others], kind="stable")][:need]  # best overlaps first
        if len(chosen) < need:  # fewer frames than S: repeat some
            chosen = np.concatenate([chosen, rng.choice(chosen, size=need - len(chosen), replace=True)])
        chosen = rng.permutation(chosen)
    return [anchor, *(int(c) for c in chosen)]
