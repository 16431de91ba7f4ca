"""Multi-view tracks and bundle adjustment on a :class:`~vggt3d.result.Reconstruction`.

:func:`add_tracks` finds tracks (track head, classical features or both),
triangulates them with the reconstruction's cameras and filters them; the
COLMAP export then writes them as multi-view points. :func:`bundle_adjust_reconstruction`
refines cameras and track points, rescales each depth map to the refined
geometry (the median ratio of track depths to predicted depths in that frame)
and recomputes the dense cloud, so every export follows. A refinement that
fails leaves the reconstruction as it was and says why in
``rec.info["refine"]``.

Convention: as :mod:`vggt3d.refine.tracks` (OpenCV axes, original pixels with
centres at integers).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..result import Reconstruction, TrackPoints
from .ba import BAConfig, RefinementError, bundle_adjust
from .features import FeatureConfig, feature_tracks
from .tracks import (
    Observations,
    TrackFilter,
    filter_tracks,
    reprojection_errors,
    triangulate,
)
from .update import with_cameras

__all__ = [
    "TRACK_SOURCES",
    "RefineConfig",
    "add_tracks",
    "bundle_adjust_reconstruction",
    "find_tracks",
    "initial_points",
    "original_images",
    "refine_reconstruction",
]

log = logging.getLogger(__name__)

TrackSource = Literal["head", "features", "both"]
TRACK_SOURCES: tuple[str, ...] = ("head", "features", "both")


@dataclass
class RefineConfig:
    """Settings of tracks and refinement (defaults suit photos and video frames alike).

    ``head_query_frames`` frames get a ``head_grid x head_grid`` of track-head
    queries; head observations need ``head_min_visibility`` and
    ``head_min_confidence``.
    """

    features: FeatureConfig = field(default_factory=FeatureConfig)
    filter: TrackFilter = field(default_factory=TrackFilter)
    ba: BAConfig = field(default_factory=BAConfig)
    head_query_frames: int = 4
    head_grid: int = 16
    head_min_visibility: float = 0.5
    head_min_confidence: float = 0.5


def original_images(rec: Reconstruction) -> list[np.ndarray]:
    """Each frame at original resolution as uint8 ``[height, width, 3]`` (from ``rec.image_data``)."""
    from ..export.scene_folder import _rgb8

    if len(rec.image_data) != rec.num_frames:
        raise RefinementError("the reconstruction holds no images to find features in")
    return [_rgb8(d) for d in rec.image_data]


def _depth_sampler(rec: Reconstruction, depth: np.ndarray | None = None):
    """``(frame [K], uv [K, 2] original pixels) -> predicted depth [K]`` (nearest model pixel; 0 = none)."""
    depth = rec.depth if depth is None else depth
    _, H, W = depth.shape

    def sample(frame: np.ndarray, uv: np.ndarray) -> np.ndarray:
        out = np.zeros(len(frame))
        for f in np.unique(frame):
            rows = frame == f
            m = rec.transforms[int(f)].original_to_model_points(uv[rows])
            u, v = np.round(m[:, 0]).astype(int), np.round(m[:, 1]).astype(int)
            ok = (u >= 0) & (u < W) & (v >= 0) & (v < H)
            out[np.flatnonzero(rows)[ok]] = depth[int(f), v[ok], u[ok]]
        return out

    return sample


def _colors(images: list[np.ndarray] | None, rec: Reconstruction, obs: Observations) -> np.ndarray:
    """Each track's colour: the pixel of its first observation (model input colours without the originals)."""
    T = obs.num_tracks
    colors = np.zeros((T, 3), np.uint8)
    first = np.unique(obs.track, return_index=True)[1]
    for t, row in zip(obs.track[first], first):
        f, (x, y) = int(obs.frame[row]), obs.uv[row]
        if images is not None:
            img = images[f]
            colors[t] = img[int(np.clip(round(y), 0, img.shape[0] - 1)), int(np.clip(round(x), 0, img.shape[1] - 1))]
        else:
            m = rec.transforms[f].original_to_model_points(obs.uv[row])
            H, W = rec.model_colors.shape[1:3]
            colors[t] = rec.model_colors[f, int(np.clip(round(m[1]), 0, H - 1)), int(np.clip(round(m[0]), 0, W - 1))]
    return colors


def _track_points(obs: Observations, points: np.ndarray, colors: np.ndarray) -> TrackPoints:
    return TrackPoints(points=points, colors=colors, track=obs.track, frame=obs.frame, uv=obs.uv, source=obs.source)


def find_tracks(rec: Reconstruction, tracks_from: TrackSource = "features", config: RefineConfig | None = None,
                model: Any = None, model_images: Any = None) -> tuple[Observations, list[np.ndarray] | None]:
    """Candidate tracks (unfiltered) from ``head``, ``features`` or ``both``, and the original images if loaded.

    ``model`` and ``model_images [S, 3, H, W]`` are needed for the track head
    (``head``/``both``); with ``both`` and a model without a track head the
    features alone are used (with a warning).
    """
    if tracks_from not in TRACK_SOURCES:
        raise ValueError(f"tracks_from must be one of {', '.join(TRACK_SOURCES)}, got {tracks_from!r}")
    config = config or RefineConfig()
    parts: list[Observations] = []
    images = None
    if tracks_from in ("head", "both"):
        if model is None or getattr(model, "track_head", None) is None:
            if tracks_from == "head":
                raise ValueError("tracks_from='head' needs a model with a track head; this one has none "
                                 "(use 'features')")
            log.info("the model has no track head: tracks from features only")
        else:
            from .head import head_tracks

            parts.append(head_tracks(model, model_images, rec.transforms, config.head_query_frames, config.head_grid,
                                     config.head_min_visibility, config.head_min_confidence))
    if tracks_from in ("features", "both"):
        images = original_images(rec)
        parts.append(feature_tracks(images, rec.intrinsics, rec.image_sizes, config.features))
    source = tracks_from if len(parts) > 1 or tracks_from != "both" else ("head" if images is None else "features")
    return Observations.concatenate(parts, source), images


def add_tracks(rec: Reconstruction, tracks_from: TrackSource = "features", config: RefineConfig | None = None,
               model: Any = None, model_images: Any = None,
               candidates: tuple[Observations, list[np.ndarray] | None] | None = None) -> Reconstruction:
    """``rec`` with ``track_points``: tracks (see :func:`find_tracks`, or ``candidates``) triangulated with
    ``rec``'s cameras and filtered by ``config.filter``."""
    config = config or RefineConfig()
    raw, images = candidates or find_tracks(rec, tracks_from, config, model, model_images)
    obs, points = filter_tracks(raw, rec.cam_from_world, rec.intrinsics, config.filter, _depth_sampler(rec))
    log.info("tracks (%s): %d found, %d kept with %d observations", raw.source, raw.num_tracks, obs.num_tracks,
             len(obs))
    out = dataclasses.replace(rec, track_points=_track_points(obs, points, _colors(images, rec, obs)),
                              info=dict(rec.info))
    out.info["tracks_from"] = {"source": raw.source, "found": int(raw.num_tracks), "tracks": int(obs.num_tracks),
                               "observations": len(obs)}
    return out


def initial_points(rec: Reconstruction, obs: Observations, rules: TrackFilter) -> tuple[Observations, np.ndarray]:
    """Start points for bundle adjustment: triangulated where the predicted cameras agree with the track
    (reprojection error, angle, cheirality), else the median of the observations' predicted depths
    unprojected with the predicted cameras (robust to poor predicted cameras). Tracks with neither are dropped."""
    obs = obs.min_length(2)
    if len(obs) == 0:
        return obs, np.zeros((0, 3))
    points, angle = triangulate(obs, rec.cam_from_world, rec.intrinsics)
    err = reprojection_errors(obs, points, rec.cam_from_world, rec.intrinsics)
    bad = np.zeros(obs.num_tracks, bool)
    np.logical_or.at(bad, obs.track, err > rules.max_error)
    bad |= angle < rules.min_angle
    d = _depth_sampler(rec)(obs.frame, obs.uv)
    K, C = rec.intrinsics[obs.frame], rec.cam_from_world[obs.frame]
    cam = np.stack([(obs.uv[:, 0] - K[:, 0, 2]) / K[:, 0, 0] * d, (obs.uv[:, 1] - K[:, 1, 2]) / K[:, 1, 1] * d, d],
                   axis=1)
    world = np.einsum("kji,kj->ki", C[:, :3, :3], cam - C[:, :3, 3])  # R^T (X_cam - t)
    has_depth = np.zeros(obs.num_tracks, bool)
    np.logical_or.at(has_depth, obs.track, d > 0)
    for t in np.flatnonzero(bad & has_depth):
        mine = (obs.track == t) & (d > 0)
        points[t] = np.median(world[mine], axis=0)
    keep_tracks = ~bad | has_depth
    rows = keep_tracks[obs.track]
    return obs.select(rows), points[np.flatnonzero(keep_tracks)]


def _depth_scales(rec: Reconstruction, obs: Observations, points: np.ndarray, cams: np.ndarray) -> np.ndarray:
    """Per frame: median of (refined track depth / predicted depth) over its observations (global median if few)."""
    R, t = cams[obs.frame, :3, :3], cams[obs.frame, :3, 3]
    z = np.einsum("kj,kj->k", R[:, 2], points[obs.track]) + t[:, 2]
    d = _depth_sampler(rec)(obs.frame, obs.uv)
    ok = (d > 0) & (z > 0)
    ratio = np.where(ok, z / np.where(ok, d, 1.0), np.nan)
    overall = float(np.nanmedian(ratio)) if ok.any() else 1.0
    scales = np.full(rec.num_frames, overall)
    for f in range(rec.num_frames):
        mine = ratio[(obs.frame == f) & ok]
        if len(mine) >= 8:
            scales[f] = float(np.median(mine))
    return scales


def bundle_adjust_reconstruction(rec: Reconstruction, config: RefineConfig | None = None,
                                 fixed_intrinsics: bool = False, fix_poses: bool = False,
                                 candidates: tuple[Observations, list[np.ndarray] | None] | None = None
                                 ) -> Reconstruction:
    """Refine ``rec``'s cameras and track points, then update every output.

    The tracks are ``candidates`` (from :func:`find_tracks`, started with
    :func:`initial_points`) or else ``rec.track_points``. On failure (too few tracks, divergence) returns ``rec`` unchanged with
    ``info["refine"]["status"] = "failed: ..."`` and a warning.
    """
    config = config or RefineConfig()
    ba = dataclasses.replace(config.ba, shared_intrinsics=config.ba.shared_intrinsics or
                             bool(rec.info.get("shared_camera")),
                             refine_focal=config.ba.refine_focal and not fixed_intrinsics,
                             fix_poses=config.ba.fix_poses or fix_poses)
    tp = rec.track_points
    summary: dict[str, Any] = {"method": "ba", "loss": ba.loss, "shared_intrinsics": ba.shared_intrinsics,
                               "fixed_intrinsics": not ba.refine_focal, "fixed_poses": ba.fix_poses,
                               "distortion": "SIMPLE_RADIAL" if ba.distortion else None}
    try:
        if candidates is not None:
            obs, points = initial_points(rec, candidates[0], config.filter)
            tp = _track_points(obs, points, _colors(candidates[1], rec, obs))
        if tp is None:
            raise RefinementError("no tracks to refine with")
        obs = Observations(tp.track, tp.frame, tp.uv, tp.source)
        try:
            result = bundle_adjust(rec.cam_from_world, rec.intrinsics, rec.image_sizes, obs, tp.points, ba)
        except RefinementError as exc:
            if not (ba.refine_focal and "focal length" in str(exc)):
                raise
            log.warning("%s; trying again with the intrinsics held fixed", exc)
            ba = dataclasses.replace(ba, refine_focal=False)
            summary["fixed_intrinsics"] = "after the focal lengths drifted"
            result = bundle_adjust(rec.cam_from_world, rec.intrinsics, rec.image_sizes, obs, tp.points, ba)
        if candidates is not None and not ba.distortion:  # re-triangulate every candidate with the refined cameras
            again, points = filter_tracks(candidates[0], result.cam_from_world, result.intrinsics,
                                          TrackFilter(max_error=ba.max_error, min_angle=config.filter.min_angle,
                                                      depth_tolerance=None))
            try:
                second = bundle_adjust(result.cam_from_world, result.intrinsics, rec.image_sizes, again, points, ba)
            except RefinementError as exc:
                log.debug("the second adjustment on re-triangulated tracks failed (%s); keeping the first", exc)
            else:
                second.error_before = result.error_before  # the error of the predicted cameras
                result, obs = second, again
                tp = _track_points(again, points, _colors(candidates[1], rec, again))
    except RefinementError as exc:
        log.warning("refinement failed (%s); the unrefined reconstruction is kept", exc)
        out = dataclasses.replace(rec, info=dict(rec.info))
        out.info["refine"] = summary | {"status": f"failed: {exc}"}
        return out
    kept = result.observations
    scales = _depth_scales(rec, kept, result.points, result.cam_from_world)
    new_tp = TrackPoints(points=result.points, colors=tp.colors[result.track_ids], track=kept.track,
                         frame=kept.frame, uv=kept.uv, source=tp.source)
    out = with_cameras(rec, result.cam_from_world, result.intrinsics, scales, new_tp)
    if ba.distortion:
        from .undistort import undistort_reconstruction

        images = candidates[1] if candidates is not None and candidates[1] is not None else original_images(rec)
        out = undistort_reconstruction(out, result.k1, images)
    out.info["refine"] = summary | {
        "status": "refined", "reprojection_error_before": result.error_before,
        "reprojection_error_after": result.error_after, "tracks": result.num_tracks,
        "observations": result.num_observations, "observations_dropped": int(len(obs) - len(kept)),
        "depth_scale": [float(s) for s in scales], "frames_not_refined": result.fixed_frames if not ba.fix_poses else [],
        "k1": [float(k) for k in result.k1] if ba.distortion else None, "solver": result.report}
    return out


def refine_reconstruction(rec: Reconstruction, *, tracks_from: TrackSource | None = None,
                          refine: Literal["ba"] | None = None, intrinsics: Any = None, poses: Any = None,
                          fix_poses: bool = False, scale: Any = None, config: RefineConfig | None = None,
                          model: Any = None, model_images: Any = None) -> Reconstruction:
    """Known cameras, tracks, bundle adjustment and metric scale, in that order (what ``reconstruct()`` runs).

    Args:
        tracks_from: ``head``, ``features`` or ``both`` (default with ``refine``: ``both``).
        refine: ``"ba"`` for bundle adjustment.
        intrinsics: a file (see :func:`vggt3d.refine.files.read_intrinsics`) or ``[S, 3, 3]`` K at
            original resolution; poses are re-solved by PnP and BA holds the intrinsics fixed.
        poses: a file (see :func:`vggt3d.refine.files.read_poses`) or ``[S, 4, 4]`` cam_from_world;
            the reconstruction moves into their frame and units; ``fix_poses`` makes them exact
            (and holds them in BA).
        scale: a known distance (see :func:`vggt3d.refine.known.parse_scale`); not with ``poses``.

    Raises:
        vggt3d.refine.files.KnownCamerasError, ValueError: bad files or options (checked before any work).
    """
    from .files import read_intrinsics, read_poses
    from .known import align_to_poses, apply_intrinsics, apply_scale, parse_scale

    if refine not in (None, "ba"):
        raise ValueError(f"refine must be None or 'ba', got {refine!r}")
    if tracks_from is not None and tracks_from not in TRACK_SOURCES:
        raise ValueError(f"tracks_from must be one of {', '.join(TRACK_SOURCES)}, got {tracks_from!r}")
    if scale is not None and poses is not None:
        raise ValueError("give either poses (which carry the scale) or scale, not both")
    if fix_poses and poses is None:
        raise ValueError("fix_poses needs poses")
    scale_spec = None if scale is None else parse_scale(scale)
    K = None
    if intrinsics is not None:
        K = (read_intrinsics(intrinsics, rec.image_names, rec.image_sizes) if not isinstance(intrinsics, np.ndarray)
             else np.asarray(intrinsics, np.float64))
        if K.shape != (rec.num_frames, 3, 3) or not np.isfinite(K).all() or (K[:, 0, 0] <= 0).any() or \
                (K[:, 1, 1] <= 0).any():
            raise ValueError(f"intrinsics must be [S, 3, 3] finite with positive focal lengths for {rec.num_frames} "
                             "frames")
    given = None
    if poses is not None:
        given = read_poses(poses, rec.image_names) if not isinstance(poses, np.ndarray) else np.asarray(poses, float)
        if given.shape != (rec.num_frames, 4, 4) or not np.isfinite(given).all():
            raise ValueError(f"poses must be [S, 4, 4] finite cam_from_world matrices for {rec.num_frames} frames")
    if refine is not None and tracks_from is None:
        tracks_from = "both"

    out = rec
    if K is not None:
        out = apply_intrinsics(out, K)
    if given is not None and not fix_poses:
        out = align_to_poses(out, given)
    if given is not None and fix_poses:
        out = align_to_poses(out, given, replace=True)
    if tracks_from is not None:
        candidates = find_tracks(out, tracks_from, config, model, model_images)
        out = add_tracks(out, tracks_from, config, candidates=candidates)
        tp = out.track_points
        if fix_poses and refine != "ba" and tp is not None and len(tp.points) >= 8:
            # the given poses fix the units: bring each depth map to the tracks triangulated with them
            obs = Observations(tp.track, tp.frame, tp.uv, tp.source)
            scales = _depth_scales(out, obs, tp.points, out.cam_from_world)
            info = out.info
            out = with_cameras(out, out.cam_from_world, out.intrinsics, scales)
            out.info = info | {"known_poses": info["known_poses"] | {"depth_scale": [float(x) for x in scales]}}
        if refine == "ba":
            out = bundle_adjust_reconstruction(out, config, fixed_intrinsics=K is not None, fix_poses=fix_poses,
                                               candidates=candidates)
    if scale_spec is not None:
        out = apply_scale(out, scale_spec)
    return out
