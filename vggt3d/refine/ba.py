"""Bundle adjustment of cameras and track points with pycolmap (Ceres).

:func:`bundle_adjust` builds a ``pycolmap.Reconstruction`` from cameras and
triangulated tracks, refines it with a robust loss, and reads the cameras and
points back. Options (:class:`BAConfig`): shared or per-frame intrinsics,
focal lengths refined or held fixed, optional ``SIMPLE_RADIAL`` distortion
(one radial coefficient ``k1``), poses refined or held fixed. With poses free
the gauge is fixed by the first camera's pose and the distance between the
first two cameras (pycolmap's ``TWO_CAMS_FROM_WORLD``), so the world frame and
scale stay those of the input.

Convention: ``cam_from_world [S, 4, 4]`` with OpenCV axes (COLMAP's too);
intrinsics and observations in original pixels with pixel centres at integers
(COLMAP's at half-integers: 0.5 is added on the way in and taken off on the way out).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .tracks import Observations

__all__ = ["BAConfig", "BAResult", "RefinementError", "bundle_adjust", "observation_errors", "to_colmap"]

log = logging.getLogger(__name__)

Loss = Literal["cauchy", "huber", "soft_l1", "trivial"]
#: A refined focal length further than this factor from its start counts as divergence.
MAX_FOCAL_CHANGE = 3.0


class RefinementError(RuntimeError):
    """Bundle adjustment could not run or did not improve the cameras (too few tracks, divergence)."""


@dataclass
class BAConfig:
    """Settings of :func:`bundle_adjust`.

    ``loss`` robust loss on the reprojection residual with scale ``loss_scale``
    pixels; ``shared_intrinsics`` one camera for all frames (images of one size);
    ``refine_focal`` refine focal lengths (else the intrinsics are held fixed);
    ``distortion`` estimate ``SIMPLE_RADIAL`` ``k1`` (implies one focal per
    camera, ``fx = fy``); ``fix_poses`` hold every pose fixed (only points and
    intrinsics move); ``max_iterations`` of the solver; after each of ``passes``
    solves, observations with a reprojection error over a threshold going from
    ``4 * max_error`` down to ``max_error`` pixels are dropped, and a last solve
    runs on what is left; ``min_tracks`` and
    ``min_observations_per_frame`` the evidence needed (a frame with fewer
    observations keeps its pose, and is reported).
    """

    loss: Loss = "cauchy"
    loss_scale: float = 1.0
    shared_intrinsics: bool = False
    refine_focal: bool = True
    distortion: bool = False
    fix_poses: bool = False
    max_iterations: int = 100
    max_error: float = 2.0
    passes: int = 3
    min_tracks: int = 20
    min_observations_per_frame: int = 8

    def __post_init__(self) -> None:
        if self.loss not in ("cauchy", "huber", "soft_l1", "trivial"):
            raise ValueError(f"BAConfig.loss must be cauchy, huber, soft_l1 or trivial, got {self.loss!r}")
        if self.loss_scale <= 0 or self.max_iterations < 1 or self.min_tracks < 1:
            raise ValueError("BAConfig: loss_scale must be > 0, max_iterations and min_tracks >= 1")


@dataclass
class BAResult:
    """Refined cameras and points with the statistics the summary reports.

    ``cam_from_world [S, 4, 4]``, ``intrinsics [S, 3, 3]`` (original pixels,
    centres at integers), ``k1 [S]`` (0 without distortion), ``points [T, 3]``;
    errors are mean reprojection errors in pixels over all observations.
    """

    cam_from_world: np.ndarray
    intrinsics: np.ndarray
    k1: np.ndarray
    points: np.ndarray
    error_before: float
    error_after: float
    num_tracks: int
    num_observations: int
    fixed_frames: list[int] = field(default_factory=list)
    report: str = ""
    observations: Observations | None = None  # the observations kept (outliers dropped), rows match ``points``
    track_ids: np.ndarray | None = None  # [T'] index of each kept track among the input tracks


def to_colmap(cam_from_world: np.ndarray, intrinsics: np.ndarray, sizes: np.ndarray, obs: Observations,
              points: np.ndarray, names: list[str] | None = None, colors: np.ndarray | None = None,
              shared: bool = False, k1: np.ndarray | None = None) -> Any:
    """A ``pycolmap.Reconstruction`` of the cameras (ids ``i + 1``) and the tracks (multi-view points).

    ``sizes [S, 2]`` (width, height); ``k1`` makes ``SIMPLE_RADIAL`` cameras
    (``f = (fx + fy) / 2``), else ``PINHOLE``; keypoints are the observations
    (+0.5, COLMAP's pixel centres), ordered by track per image.
    """
    return _to_colmap(cam_from_world, intrinsics, sizes, obs, points, names, colors, shared, k1)[0]


def _to_colmap(cam_from_world: np.ndarray, intrinsics: np.ndarray, sizes: np.ndarray, obs: Observations,
               points: np.ndarray, names: list[str] | None, colors: np.ndarray | None, shared: bool,
               k1: np.ndarray | None) -> tuple[Any, list[int]]:
    """:func:`to_colmap` and the point ids in track order."""
    import pycolmap

    S = len(cam_from_world)
    out = pycolmap.Reconstruction()
    names = names or [f"frame_{i:05d}" for i in range(S)]
    order = np.lexsort((obs.track, obs.frame))  # rows grouped by frame
    counts = np.bincount(obs.frame, minlength=S)
    starts = np.concatenate([[0], np.cumsum(counts)])
    point2d = np.zeros(len(obs), dtype=np.int64)  # the row's keypoint index in its image
    for i in range(S):
        K = intrinsics[i]
        camera_id = 1 if shared else i + 1
        if not shared or i == 0:
            w, h = (int(v) for v in sizes[i])
            if k1 is not None:
                params = [0.5 * (K[0, 0] + K[1, 1]), K[0, 2] + 0.5, K[1, 2] + 0.5, float(k1[i])]
                camera = pycolmap.Camera(model="SIMPLE_RADIAL", width=w, height=h, params=params, camera_id=camera_id)
            else:
                params = [K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5]
                camera = pycolmap.Camera(model="PINHOLE", width=w, height=h, params=params, camera_id=camera_id)
            out.add_camera_with_trivial_rig(camera)
        rows = order[starts[i]:starts[i + 1]]
        point2d[rows] = np.arange(len(rows))
        image = pycolmap.Image(name=names[i], keypoints=obs.uv[rows].reshape(-1, 2) + 0.5, camera_id=camera_id,
                               image_id=i + 1)
        out.add_image_with_trivial_frame(image, pycolmap.Rigid3d(cam_from_world[i, :3, :].astype(np.float64)))
    by_track = np.argsort(obs.track, kind="stable")
    t_starts = np.concatenate([[0], np.cumsum(np.bincount(obs.track, minlength=len(points)))])
    ids = []
    for t in range(len(points)):
        rows = by_track[t_starts[t]:t_starts[t + 1]]
        track = pycolmap.Track([pycolmap.TrackElement(int(obs.frame[r]) + 1, int(point2d[r])) for r in rows])
        color = np.zeros(3, np.uint8) if colors is None else colors[t].astype(np.uint8)
        ids.append(out.add_point3D(points[t].astype(np.float64), track, color))
    out.update_point_3d_errors()
    return out, ids


def _read_back(rec: Any, S: int, shared: bool, distortion: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cam_from_world = np.tile(np.eye(4), (S, 1, 1))
    K = np.tile(np.eye(3), (S, 1, 1))
    k1 = np.zeros(S)
    for i in range(S):
        image = rec.image(i + 1)
        cam_from_world[i, :3] = image.cam_from_world().matrix()
        p = rec.camera(1 if shared else i + 1).params
        if distortion:
            K[i] = [[p[0], 0, p[1] - 0.5], [0, p[0], p[2] - 0.5], [0, 0, 1]]
            k1[i] = p[3]
        else:
            K[i] = [[p[0], 0, p[2] - 0.5], [0, p[1], p[3] - 0.5], [0, 0, 1]]
    return cam_from_world, K, k1


def bundle_adjust(cam_from_world: np.ndarray, intrinsics: np.ndarray, sizes: np.ndarray, obs: Observations,
                  points: np.ndarray, config: BAConfig | None = None) -> BAResult:
    """Refine cameras and points by minimising the robust reprojection error.

    Args:
        cam_from_world: ``[S, 4, 4]`` initial poses (OpenCV axes).
        intrinsics: ``[S, 3, 3]`` initial pinhole intrinsics, original pixels.
        sizes: ``[S, 2]`` (width, height) of the original images.
        obs, points: tracks and their triangulated points ``[T, 3]``.

    Raises:
        RefinementError: fewer than ``min_tracks`` tracks, fewer than two frames
            with enough observations, or a solution that is unusable, non-finite or
            has a mean error over ``2 * max_error``.
    """
    config = config or BAConfig()
    S = len(cam_from_world)
    if config.shared_intrinsics and len({tuple(s) for s in np.asarray(sizes).tolist()}) > 1:
        raise RefinementError("shared intrinsics need images of one size")
    K = intrinsics.copy()
    if config.shared_intrinsics:
        K[:] = intrinsics.mean(axis=0)
    k1 = np.zeros(S)
    cams = cam_from_world.copy()
    error_before = float(np.mean(observation_errors(obs, points, cams, K, k1))) if len(obs) else float("nan")
    report = ""
    track_ids = np.arange(obs.num_tracks)

    def drop(obs: Observations, points: np.ndarray, track_ids: np.ndarray, keep: np.ndarray) -> tuple:
        kept_tracks = np.flatnonzero(np.bincount(obs.track[keep], minlength=obs.num_tracks) >= 2)
        rows = keep & np.isin(obs.track, kept_tracks)
        return obs.select(rows), points[kept_tracks], track_ids[kept_tracks]

    weak: list[int] = []
    # outlier thresholds from 4x max_error down to max_error; a last solve on what is left
    thresholds = list(np.geomspace(4.0 * config.max_error, config.max_error, max(config.passes, 1))) + [None]
    for threshold in thresholds:
        for _ in range(3):  # a frame with too little evidence leaves the adjustment (its pose is kept as given)
            weak = _check_evidence(obs, S, config)
            if not weak or not np.isin(obs.frame, weak).any():
                break
            obs, points, track_ids = drop(obs, points, track_ids, ~np.isin(obs.frame, weak))
        cams, K, k1, points, report, _ = _solve_once(cams, K, k1, sizes, obs, points, weak, config)
        if threshold is None:
            break
        keep = observation_errors(obs, points, cams, K, k1) <= threshold
        if keep.all() and threshold == config.max_error:
            break
        if not keep.all():
            log.debug("bundle adjustment: %d of %d observations over %.3g px dropped", int((~keep).sum()),
                      len(obs), threshold)
            obs, points, track_ids = drop(obs, points, track_ids, keep)
    err = observation_errors(obs, points, cams, K, k1)
    if not (err <= 2.0 * config.max_error).all():  # the last solve moved a few points off (or behind a camera)
        obs, points, track_ids = drop(obs, points, track_ids, err <= 2.0 * config.max_error)
        err = observation_errors(obs, points, cams, K, k1)
    weak = _check_evidence(obs, S, config)
    error_after = float(np.mean(err))
    if not np.isfinite(error_after) or error_after > 2.0 * config.max_error:
        raise RefinementError(f"bundle adjustment diverged: mean reprojection error {error_before:.3g} -> "
                              f"{error_after:.3g} px")
    if weak and not config.fix_poses:
        log.warning("frames %s have fewer than %d track observations; their poses were not refined", weak,
                    config.min_observations_per_frame)
    return BAResult(cam_from_world=cams, intrinsics=K, k1=k1, points=points, error_before=error_before,
                    error_after=error_after, num_tracks=obs.num_tracks, num_observations=len(obs),
                    fixed_frames=list(range(S)) if config.fix_poses else weak, report=report, observations=obs,
                    track_ids=track_ids)


def _check_evidence(obs: Observations, S: int, config: BAConfig) -> list[int]:
    """Frames with too few observations; raises when the tracks cannot support a refinement."""
    if obs.num_tracks < config.min_tracks:
        raise RefinementError(f"bundle adjustment needs at least {config.min_tracks} tracks, found {obs.num_tracks}")
    per_frame = np.bincount(obs.frame, minlength=S)
    weak = [int(i) for i in np.flatnonzero(per_frame < config.min_observations_per_frame)]
    if S - len(weak) < 2:
        raise RefinementError(f"bundle adjustment needs two frames with {config.min_observations_per_frame}+ "
                              f"observations; frames with too few: {weak}")
    return weak


def observation_errors(obs: Observations, points: np.ndarray, cam_from_world: np.ndarray, intrinsics: np.ndarray,
                       k1: np.ndarray | None = None) -> np.ndarray:
    """``[K]`` reprojection errors in pixels, with ``SIMPLE_RADIAL`` distortion ``k1 [S]`` (``inf`` behind a camera).

    Convention: ``u = fx * x * (1 + k1 r^2) + cx`` with ``(x, y)`` the normalised
    camera coordinates and ``r^2 = x^2 + y^2`` (COLMAP's SIMPLE_RADIAL).
    """
    R, t = cam_from_world[obs.frame, :3, :3], cam_from_world[obs.frame, :3, 3]
    cam = np.einsum("kij,kj->ki", R, points[obs.track]) + t
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = cam[:, :2] / z[:, None]
        if k1 is not None:
            xy = xy * (1.0 + k1[obs.frame, None] * np.sum(xy ** 2, axis=1, keepdims=True))
        K = intrinsics[obs.frame]
        u = K[:, 0, 0] * xy[:, 0] + K[:, 0, 1] * xy[:, 1] + K[:, 0, 2]
        v = K[:, 1, 1] * xy[:, 1] + K[:, 1, 2]
        err = np.hypot(u - obs.uv[:, 0], v - obs.uv[:, 1])
    return np.where((z > 0) & np.isfinite(err), err, np.inf)


def _solve_once(cams: np.ndarray, K: np.ndarray, k1: np.ndarray, sizes: np.ndarray, obs: Observations,
                points: np.ndarray, weak: list[int], config: BAConfig) -> tuple:
    """One pycolmap bundle adjustment -> ``(cams, K, k1, points, report, fixed frames)``."""
    import pycolmap

    S = len(cams)
    rec, point_ids = _to_colmap(cams, K, sizes, obs, points, None, None, config.shared_intrinsics,
                                k1 if config.distortion else None)
    options = pycolmap.BundleAdjustmentOptions()
    options.print_summary = False
    options.refine_focal_length = bool(config.refine_focal)
    options.refine_principal_point = False
    options.refine_extra_params = bool(config.distortion and config.refine_focal)
    options.ceres.loss_function_type = getattr(pycolmap.LossFunctionType, config.loss.upper())
    options.ceres.loss_function_scale = float(config.loss_scale)
    options.ceres.solver_options.max_num_iterations = int(config.max_iterations)
    options.ceres.solver_options.num_threads = 1
    ba_config = pycolmap.BundleAdjustmentConfig()
    for i in range(S):
        ba_config.add_image(i + 1)
    fixed = set(range(S)) if config.fix_poses else set(weak)  # weak frames have no observations left
    for i in sorted(fixed):
        ba_config.set_constant_rig_from_world_pose(rec.image(i + 1).frame_id)
    if not config.fix_poses:  # one pose and one baseline fix rotation, translation and scale
        ba_config.fix_gauge(pycolmap.BundleAdjustmentGauge.TWO_CAMS_FROM_WORLD)
    if not config.refine_focal:
        for camera_id in rec.cameras:
            ba_config.set_constant_cam_intrinsics(camera_id)
    summary = pycolmap.create_default_bundle_adjuster(options, ba_config, rec).solve()
    if not summary.is_solution_usable():
        raise RefinementError(f"bundle adjustment failed: {summary.brief_report()}")
    new_cams, new_K, new_k1 = _read_back(rec, S, config.shared_intrinsics, config.distortion)
    new_points = np.array([rec.point3D(pid).xyz for pid in point_ids]).reshape(-1, 3)
    if not (np.isfinite(new_cams).all() and np.isfinite(new_K).all() and np.isfinite(new_points).all()):
        raise RefinementError("bundle adjustment diverged (non-finite cameras or points)")
    if (new_K[:, 0, 0] <= 0).any() or (new_K[:, 1, 1] <= 0).any():
        raise RefinementError("bundle adjustment diverged (non-positive focal length)")
    change = new_K[:, 0, 0] / K[:, 0, 0]
    if (change > MAX_FOCAL_CHANGE).any() or (change < 1 / MAX_FOCAL_CHANGE).any():
        frames = [int(i) for i in np.flatnonzero((change > MAX_FOCAL_CHANGE) | (change < 1 / MAX_FOCAL_CHANGE))]
        raise RefinementError(f"bundle adjustment diverged: the focal length of frames {frames[:8]} changed by more "
                              f"than x{MAX_FOCAL_CHANGE:g} (too little camera motion to fix it; give --intrinsics "
                              "or use --shared-camera)")
    return new_cams, new_K, new_k1, new_points, summary.brief_report(), sorted(fixed)
