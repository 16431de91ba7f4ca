"""Bundle adjustment on exact synthetic geometry: convergence, fixed modes, distortion, failures."""

import numpy as np
import pytest
from refine_helpers import FRAMES, H, W, perturb, relative_rotation_errors

from vggt3d.refine.ba import (
    BAConfig,
    RefinementError,
    bundle_adjust,
    observation_errors,
    to_colmap,
)
from vggt3d.refine.tracks import Observations, TrackFilter, filter_tracks, project

SIZES = np.array([[W, H]] * FRAMES)


def _start(scene, feature_obs, cams):
    return filter_tracks(feature_obs, cams, scene["K"], TrackFilter(max_error=30.0, depth_tolerance=None))


def test_ba_from_perturbed_cameras_converges(scene, feature_obs):
    """3 degrees / 5 % translation off, SIFT tracks, intrinsics fixed: back to a small fraction of a degree."""
    truth = scene["cam_from_world"]
    start = perturb(truth, 3.0, 0.05)
    assert relative_rotation_errors(start, truth).mean() > 3.0
    obs, points = _start(scene, feature_obs, start)
    result = bundle_adjust(start, scene["K"], SIZES, obs, points, BAConfig(refine_focal=False))
    assert relative_rotation_errors(result.cam_from_world, truth).mean() < 0.2
    assert result.error_after < 1.0 < result.error_before
    np.testing.assert_allclose(result.intrinsics, scene["K"])  # fixed-intrinsics mode
    np.testing.assert_allclose(result.cam_from_world[0], start[0], atol=1e-9)  # the gauge: the first camera
    assert result.num_observations == len(result.observations) and result.num_tracks == len(result.points)


def test_ba_recovers_focal_and_radial_distortion_on_exact_observations(scene, feature_obs):
    truth, K = scene["cam_from_world"], scene["K"].copy()
    K[:, 0, 0] = K[:, 1, 1] = 0.5 * (K[0, 0, 0] + K[0, 1, 1])  # SIMPLE_RADIAL has one focal length
    K[:, :2, 2] = K[0, :2, 2]
    obs, points = filter_tracks(feature_obs, truth, K, TrackFilter(depth_tolerance=None))
    k1 = np.full(FRAMES, -0.05)
    exact = Observations(obs.track, obs.frame, np.zeros_like(obs.uv))
    for i in range(FRAMES):  # exact SIMPLE_RADIAL observations of the triangulated points
        rows = obs.frame == i
        c = points[obs.track[rows]] @ truth[i, :3, :3].T + truth[i, :3, 3]
        xy = c[:, :2] / c[:, 2:]
        xy = xy * (1 + k1[i] * np.sum(xy ** 2, axis=1, keepdims=True))
        exact.uv[rows] = xy * [K[i, 0, 0], K[i, 1, 1]] + K[i, :2, 2]
    start = K.copy()
    start[:, :2, :2] *= 1.1
    fx_true = K[0, 0, 0]
    result = bundle_adjust(truth, start, SIZES, exact, points, BAConfig(distortion=True, shared_intrinsics=True,
                                                                       loss="trivial", fix_poses=True))
    assert abs(result.intrinsics[0, 0, 0] / fx_true - 1) < 0.01
    np.testing.assert_allclose(result.k1, -0.05, atol=5e-3)
    assert result.error_after < 0.1
    assert observation_errors(result.observations, result.points, result.cam_from_world, result.intrinsics,
                              result.k1).max() < 0.5


def test_fixed_poses_move_only_points(scene, feature_obs):
    truth = scene["cam_from_world"]
    obs, points = _start(scene, feature_obs, truth)
    moved = points + 0.01
    result = bundle_adjust(truth, scene["K"], SIZES, obs, moved, BAConfig(fix_poses=True, refine_focal=False))
    np.testing.assert_allclose(result.cam_from_world, truth, atol=1e-6)  # through a quaternion and back
    assert result.error_after < result.error_before and result.fixed_frames == list(range(FRAMES))


def test_too_few_tracks_and_lonely_frames(scene, feature_obs):
    truth = scene["cam_from_world"]
    obs, points = _start(scene, feature_obs, truth)
    few = obs.select(obs.track < 5)
    with pytest.raises(RefinementError, match="at least 20 tracks"):
        bundle_adjust(truth, scene["K"], SIZES, few, points[:5])
    only_two = obs.select(obs.frame < 2).min_length(2)
    kept_tracks = np.unique(obs.track[obs.frame < 2][np.isin(obs.track[obs.frame < 2],
                                                             np.flatnonzero(np.bincount(obs.track[obs.frame < 2]) >= 2))])
    result = bundle_adjust(truth, scene["K"], SIZES, only_two, points[kept_tracks], BAConfig(refine_focal=False))
    assert result.fixed_frames == [2, 3, 4, 5]  # no evidence: poses kept as given
    np.testing.assert_allclose(result.cam_from_world[2:], truth[2:], atol=1e-6)
    no_frame = obs.select(obs.frame == 0)
    with pytest.raises(RefinementError):
        bundle_adjust(truth, scene["K"], SIZES, no_frame, points)


def test_colmap_model_of_tracks(scene, feature_obs):
    truth, K = scene["cam_from_world"], scene["K"]
    obs, points = filter_tracks(feature_obs, truth, K, TrackFilter(depth_tolerance=None))
    model = to_colmap(truth, K, SIZES, obs, points)
    assert model.num_points3D() == obs.num_tracks and model.num_images() == FRAMES
    lengths = [p.track.length() for p in model.points3D.values()]
    assert min(lengths) >= 2 and sum(lengths) == len(obs)
    for image in model.images.values():
        for p in image.points2D:
            if p.has_point3D():
                assert np.abs(image.project_point(model.points3D[p.point3D_id].xyz) - p.xy).max() < 4.0
    uv, z = project(points[obs.track], truth[obs.frame], K[obs.frame])
    assert (z > 0).all() and np.isfinite(uv).all()


def test_config_validation():
    with pytest.raises(ValueError, match="loss"):
        BAConfig(loss="l2")
    with pytest.raises(ValueError):
        BAConfig(loss_scale=0)
