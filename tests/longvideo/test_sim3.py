"""Sim(3) algebra and its robust, weighted estimation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vggt3d.longvideo import AlignmentError, Sim3, robust_sim3, umeyama


def _random(rng) -> Sim3:
    return Sim3(float(np.exp(rng.uniform(-1, 1))), Rotation.random(random_state=rng).as_matrix(), rng.normal(0, 2, 3))


def test_algebra_round_trips():
    rng = np.random.default_rng(0)
    a, b = _random(rng), _random(rng)
    x = rng.normal(size=(10, 3))
    np.testing.assert_allclose((a @ b).apply(x), a.apply(b.apply(x)), atol=1e-12)
    np.testing.assert_allclose(a.inverse().apply(a.apply(x)), x, atol=1e-12)
    np.testing.assert_allclose(Sim3.from_matrix(a.matrix()).matrix(), a.matrix(), atol=1e-12)
    np.testing.assert_allclose(Sim3.from_vector(a.as_vector()).matrix(), a.matrix(), atol=1e-12)


def test_transform_cameras_keeps_projections():
    """A camera moved by a Sim(3) sees the moved points at the same pixels, with depth times the scale."""
    rng = np.random.default_rng(1)
    t = _random(rng)
    cam = np.eye(4)
    cam[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    cam[:3, 3] = rng.normal(size=3)
    x = rng.normal(size=(20, 3)) + cam[:3, :3].T @ np.array([0, 0, 5.0])
    new = t.transform_cameras(cam)
    np.testing.assert_allclose(new[:3, :3] @ new[:3, :3].T, np.eye(3), atol=1e-12)  # still rigid
    before = x @ cam[:3, :3].T + cam[:3, 3]
    after = t.apply(x) @ new[:3, :3].T + new[:3, 3]
    np.testing.assert_allclose(after, t.scale * before, atol=1e-9)


def test_umeyama_exact_and_weighted():
    rng = np.random.default_rng(2)
    t = _random(rng)
    x = rng.normal(size=(50, 3))
    fit = umeyama(x, t.apply(x))
    np.testing.assert_allclose(fit.matrix(), t.matrix(), atol=1e-9)
    y = t.apply(x)
    y[:10] += 5.0  # zero weight on the corrupted rows: exact again
    w = np.ones(50)
    w[:10] = 0
    np.testing.assert_allclose(umeyama(x, y, w).matrix(), t.matrix(), atol=1e-9)


def test_umeyama_rejects_degenerate_points():
    with pytest.raises(AlignmentError, match="degenerate"):
        line = np.outer(np.arange(10.0), [1, 2, 3])
        umeyama(line, line)
    with pytest.raises(AlignmentError, match=">= 3"):
        umeyama(np.eye(3)[:2], np.eye(3)[:2])


def test_robust_fit_ignores_outliers_and_uses_confidence():
    rng = np.random.default_rng(3)
    t = _random(rng)
    x = rng.normal(size=(400, 3))
    y = t.apply(x) + 0.001 * rng.normal(size=(400, 3))
    bad = rng.random(400) < 0.35
    y[bad] += rng.normal(0, 3, size=(int(bad.sum()), 3))
    conf = np.where(bad, 1.0, 3.0)
    plain = umeyama(x, y, conf)
    fit = robust_sim3(x, y, conf)
    robust_error = np.abs(fit.transform.matrix() - t.matrix()).max()
    assert robust_error < 2e-3
    assert np.abs(plain.matrix() - t.matrix()).max() > 10 * robust_error, "the outliers must matter to a plain fit"
    assert fit.inliers[~bad].mean() > 0.99 and fit.inliers[bad].mean() < 0.05
    assert fit.relative_residual < 0.01


def test_robust_fit_rejects_unrelated_points():
    rng = np.random.default_rng(4)
    fit = robust_sim3(rng.normal(size=(300, 3)), rng.normal(size=(300, 3)))
    assert fit.inlier_fraction < 0.3
