"""Tracks: observation lists, triangulation and filtering on exact geometry; SIFT tracks on real renders."""

import numpy as np
import pytest
from refine_helpers import FRAMES, H, W, exact_reconstruction

from vggt3d.refine.tracks import (
    Observations,
    TrackFilter,
    filter_tracks,
    reprojection_errors,
    triangulate,
)


def _exact_obs(scene, n=200, seed=0):
    """Random scene points (from the true depth) observed exactly in every frame that sees them."""
    rng = np.random.default_rng(seed)
    cams, K, depth = scene["cam_from_world"], scene["K"], scene["depth"]
    v, u = rng.integers(20, H - 20, n), rng.integers(20, W - 20, n)
    d = depth[0, v, u].astype(np.float64)
    ok = d > 0
    u, v, d = u[ok], v[ok], d[ok]
    X = np.stack([(u - K[0, 0, 2]) / K[0, 0, 0] * d, (v - K[0, 1, 2]) / K[0, 1, 1] * d, d], 1)
    X = (X - cams[0, :3, 3]) @ cams[0, :3, :3]
    track, frame, uv = [], [], []
    for i in range(FRAMES):
        c = X @ cams[i, :3, :3].T + cams[i, :3, 3]
        p = c @ K[i].T
        p = p[:, :2] / p[:, 2:]
        seen = (c[:, 2] > 0) & (p[:, 0] > 0) & (p[:, 0] < W - 1) & (p[:, 1] > 0) & (p[:, 1] < H - 1)
        track.append(np.flatnonzero(seen)); frame.append(np.full(seen.sum(), i)); uv.append(p[seen])
    obs = Observations(np.concatenate(track), np.concatenate(frame), np.concatenate(uv))
    return obs.select(np.argsort(obs.track, kind="stable")).min_length(2), X


def test_triangulation_is_exact_on_exact_observations(scene):
    obs, _ = _exact_obs(scene)
    points, angle = triangulate(obs, scene["cam_from_world"], scene["K"])
    seen = np.unique(np.concatenate([obs.track]))
    assert len(points) == obs.num_tracks > 50 and (angle > 0).all()
    assert reprojection_errors(obs, points, scene["cam_from_world"], scene["K"]).max() < 1e-6
    # every point is one of the scene points (the tracks were renumbered in order)
    assert len(seen) == obs.num_tracks


def test_filter_drops_corrupted_observations_and_tracks(scene):
    obs, _ = _exact_obs(scene, seed=1)
    rng = np.random.default_rng(0)
    bad_rows = rng.choice(len(obs), size=len(obs) // 10, replace=False)
    uv = obs.uv.copy()
    uv[bad_rows] += rng.uniform(15, 40, size=(len(bad_rows), 2)) * rng.choice([-1, 1], size=(len(bad_rows), 2))
    noisy = Observations(obs.track, obs.frame, uv)
    kept, points = filter_tracks(noisy, scene["cam_from_world"], scene["K"], TrackFilter(max_error=2.0, min_angle=0.5,
                                                                                         depth_tolerance=None))
    err = reprojection_errors(kept, points, scene["cam_from_world"], scene["K"])
    assert err.max() <= 2.0 and kept.lengths().min() >= 2
    corrupted = {(int(obs.frame[r]), tuple(np.round(uv[r], 6))) for r in bad_rows}
    survivors = {(int(f), tuple(np.round(p, 6))) for f, p in zip(kept.frame, kept.uv)}
    assert len(corrupted & survivors) <= len(bad_rows) // 20  # a corrupted one survives only by landing on its ray
    assert kept.num_tracks > 0.5 * obs.num_tracks


def test_depth_agreement_rule(scene):
    """Observations whose predicted depth disagrees go; the units of the predicted depth do not matter."""
    obs, _ = _exact_obs(scene, seed=2)
    cams, K = scene["cam_from_world"], scene["K"]
    rules = TrackFilter(depth_tolerance=0.2, min_angle=0.0)
    all_kept, points = filter_tracks(obs, cams, K, rules)
    z = np.einsum("kj,kj->k", cams[all_kept.frame, 2, :3], points[all_kept.track]) + cams[all_kept.frame, 2, 3]
    true_depth = dict(zip(zip(all_kept.frame, map(tuple, all_kept.uv)), z))

    def scaled(f, uv):  # the true depth in other units (x 7), one frame in others again (x 0.5)
        d = np.array([true_depth.get((a, tuple(b)), 0.0) for a, b in zip(f, uv)]) * 7.0
        return np.where(f == 3, 0.5 * d, d)

    assert filter_tracks(all_kept, cams, K, rules, depth_at=scaled)[0].num_tracks == all_kept.num_tracks
    off = {(f, tuple(uv)) for k, (f, uv) in enumerate(zip(all_kept.frame, all_kept.uv)) if k % 4 == 0}

    def wrong(f, uv):  # every fourth observation's predicted depth 3x too far
        return scaled(f, uv) * np.array([3.0 if (a, tuple(b)) in off else 1.0 for a, b in zip(f, uv)])

    kept, _ = filter_tracks(all_kept, cams, K, rules, depth_at=wrong)
    assert not off & {(f, tuple(uv)) for f, uv in zip(kept.frame, kept.uv)}
    assert len(kept) >= 0.5 * len(all_kept)
    unknown = lambda f, uv: np.zeros(len(f))
    assert filter_tracks(all_kept, cams, K, rules, depth_at=unknown)[0].num_tracks == all_kept.num_tracks


def test_observations_select_and_concatenate():
    a = Observations(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 2, 1]), np.zeros((5, 2)))
    assert a.num_tracks == 3 and list(a.lengths()) == [2, 2, 1]
    assert a.min_length(2).num_tracks == 2
    both = Observations.concatenate([a, a.min_length(2)], "both")
    assert both.num_tracks == 5 and len(both) == 9 and both.source == "both"
    with pytest.raises(ValueError):
        TrackFilter(max_error=0)


def test_sift_tracks_lie_on_the_true_geometry(scene, feature_obs):
    """Verified SIFT matches on real renders, triangulated with the true cameras: under a pixel of reprojection
    error and within a few percent of the true depth."""
    from vggt3d.refine.pipeline import _depth_sampler

    rec = exact_reconstruction(scene)
    assert feature_obs.num_tracks > 200 and feature_obs.lengths().min() >= 2
    kept, points = filter_tracks(feature_obs, rec.cam_from_world, rec.intrinsics, TrackFilter(max_error=2.0),
                                 _depth_sampler(rec))
    assert kept.num_tracks > 0.6 * feature_obs.num_tracks  # far points (small ray angle) go
    err = reprojection_errors(kept, points, rec.cam_from_world, rec.intrinsics)
    assert np.mean(err) < 0.6
    z = np.einsum("kj,kj->k", rec.cam_from_world[kept.frame, 2, :3], points[kept.track]) + rec.cam_from_world[kept.frame, 2, 3]
    d = _depth_sampler(rec)(kept.frame, kept.uv)
    assert np.median(np.abs(z[d > 0] / d[d > 0] - 1)) < 0.02
    # one observation per frame and track
    pairs = kept.track * FRAMES + kept.frame
    assert len(np.unique(pairs)) == len(pairs)
