"""Known intrinsics (PnP), known poses (Sim(3), robust to wrong poses) and metric scale on exact geometry."""

import numpy as np
import pytest
from refine_helpers import (
    FRAMES,
    exact_reconstruction,
    perturb,
    relative_rotation_errors,
)
from scipy.spatial.transform import Rotation

from vggt3d.refine.known import (
    CameraHeight,
    KnownDistance,
    align_to_poses,
    apply_intrinsics,
    apply_scale,
    parse_scale,
    similarity_from_cameras,
)
from vggt3d.refine.update import similarity_cameras


def _centres(cams):
    return np.linalg.inv(cams)[:, :3, 3]


def test_similarity_recovered_despite_two_wrong_poses(scene):
    truth = scene["cam_from_world"]
    R = Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix()
    s, t = 2.5, np.array([1.0, -2.0, 0.5])
    given = similarity_cameras(truth, s, R, t)
    wrong = given.copy()
    wrong[2] = perturb(given, 40.0, 0.0, seed=3)[2]  # one rotation far off
    wrong[4, :3, 3] += 10.0  # one centre far off
    s_est, R_est, t_est, inliers = similarity_from_cameras(truth, wrong)
    assert abs(s_est / s - 1) < 1e-9 and np.allclose(R_est, R, atol=1e-9) and np.allclose(t_est, t, atol=1e-8)
    assert list(np.flatnonzero(~inliers)) == [2, 4]


def test_align_to_poses_gives_metric_frame(scene):
    rec = exact_reconstruction(scene)
    R = Rotation.from_rotvec([0.1, 0.7, -0.3]).as_matrix()
    given = similarity_cameras(scene["cam_from_world"], 3.0, R, np.array([5.0, 0, -1]))
    given[1, :3, 3] += 4.0  # a wrong pose
    out = align_to_poses(rec, given)
    inl = [0, 2, 3, 4, 5]
    np.testing.assert_allclose(_centres(out.cam_from_world)[inl], _centres(given)[inl], atol=1e-6)
    assert out.info["known_poses"]["outliers"] == [1]
    assert abs(out.info["known_poses"]["scale"] / 3.0 - 1) < 1e-9
    np.testing.assert_allclose(out.depth, rec.depth * 3.0, rtol=1e-6)  # depth follows the units
    # points stay on their pixels: the cloud moved with the cameras
    c = out.points[:50].astype(np.float64) @ out.cam_from_world[out.point_frame[:50], :3, :3].transpose(0, 2, 1)[0].T
    assert np.isfinite(c).all()
    fixed = align_to_poses(rec, given, replace=True)
    np.testing.assert_allclose(fixed.cam_from_world, given)


def test_known_intrinsics_resolve_poses(scene):
    """A prediction with a 25 % wrong focal length: the given intrinsics are used exactly and PnP against the
    predicted points moves the poses."""
    truth, K = scene["cam_from_world"], scene["K"]
    wrong_K = K.copy()
    wrong_K[:, :2, :2] *= 1.25
    rec = exact_reconstruction(scene, K=wrong_K)
    kept = apply_intrinsics(rec, K)  # no point map: the poses stay, the intrinsics and the cloud change
    np.testing.assert_array_equal(kept.cam_from_world, rec.cam_from_world)
    assert kept.info["known_intrinsics"]["poses_resolved"] is False and not np.allclose(kept.points, rec.points)
    out = apply_intrinsics(rec, K, resolve_poses=True)
    np.testing.assert_array_equal(out.intrinsics, K)  # focal error 0 by construction
    np.testing.assert_allclose(out.model_intrinsics, K)  # the identity transform maps them 1:1
    assert out.info["known_intrinsics"]["pnp_failed"] == []
    assert np.isfinite(out.cam_from_world).all() and not np.allclose(out.cam_from_world, rec.cam_from_world)
    exact = apply_intrinsics(exact_reconstruction(scene), K, resolve_poses=True)  # right K: PnP gives the true poses
    assert relative_rotation_errors(exact.cam_from_world, truth).max() < 0.05


def test_scale_from_two_pixels_and_camera_height(scene):
    rec = exact_reconstruction(scene)
    K = rec.intrinsics[0]
    ys, xs = np.nonzero(rec.depth[0] > 0)
    a, b = (float(xs[len(xs) // 5]), float(ys[len(xs) // 5])), (float(xs[-len(xs) // 5]), float(ys[-len(xs) // 5]))

    def point(frame, xy, r):
        d = float(r.depth[frame, int(xy[1]), int(xy[0])])
        cam = np.array([(xy[0] - K[0, 2]) / K[0, 0] * d, (xy[1] - K[1, 2]) / K[1, 1] * d, d])
        return r.cam_from_world[frame, :3, :3].T @ (cam - r.cam_from_world[frame, :3, 3])

    d = np.linalg.norm(point(0, a, rec) - point(0, b, rec))
    out = apply_scale(rec, f"0:{a[0]:g},{a[1]:g} 0:{b[0]:g},{b[1]:g} 2.0")
    assert abs(np.linalg.norm(point(0, a, out) - point(0, b, out)) - 2.0) < 1e-4
    assert abs(out.info["scale"]["factor"] - 2.0 / d) < 1e-9
    assert parse_scale("camera-height=1.6") == CameraHeight(1.6, 0)
    assert parse_scale("1:2,3 4:5.5,6 7") == KnownDistance(1, (2.0, 3.0), 4, (5.5, 6.0), 7.0)
    for bad in ("2 meters", "camera-height=-1", "0:1,2 3:4,5 0"):
        with pytest.raises(ValueError, match="--scale"):
            parse_scale(bad)
    with pytest.raises(ValueError, match="frame 9"):
        apply_scale(rec, "9:1,1 0:2,2 1")
    assert FRAMES == rec.num_frames


def test_camera_height_scale(scene):
    """The ground under the first camera (the scene's ground slab) becomes the given height away."""
    from vggt3d.refine.known import _camera_height

    rec = exact_reconstruction(scene)
    measured = _camera_height(rec, 0)
    assert measured > 0
    out = apply_scale(rec, "camera-height=1.6")
    assert abs(_camera_height(out, 0) - 1.6) < 1e-3
    assert abs(out.info["scale"]["factor"] - 1.6 / measured) < 1e-12
