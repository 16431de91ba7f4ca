"""Known cameras and metric scale applied to a :class:`~vggt3d.result.Reconstruction`.

- :func:`apply_intrinsics`: given intrinsics at original resolution (mapped
  exactly onto the model grid through each frame's ``ImageTransform``); with
  point-map world points, each pose is re-solved by robust PnP (pycolmap
  LO-RANSAC + refinement) of the frame's pixels against them.
- :func:`align_to_poses`: the similarity ``X' = s R X + t`` that brings the
  predicted cameras onto given ones (rotation from the per-frame rotation
  differences, scale and translation from the camera centres, each with a
  consensus step that ignores a few wrong poses), applied to everything;
  optionally the given poses replace the predicted ones.
- :func:`apply_scale`: metric units from one known distance: two pixels in two
  frames (``"0:120,80 3:200,95 1.5"``) or the first camera's height above the
  ground plane (``"camera-height=1.6"``).

Convention: ``cam_from_world`` with OpenCV axes; pixels at original resolution
with centres at integers.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..result import Reconstruction
from .update import apply_similarity, with_cameras

__all__ = ["CameraHeight", "KnownDistance", "align_to_poses", "apply_intrinsics", "apply_scale", "parse_scale",
           "similarity_from_cameras"]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------- intrinsics
def _frame_points(rec: Reconstruction, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model pixels ``[M, 2]``, their predicted world points ``[M, 3]`` and confidences, frame ``i``."""
    H, W = rec.depth.shape[1:]
    v, u = np.mgrid[0:H, 0:W]
    if rec.world_points is not None:
        world = rec.world_points[i].astype(np.float64)
        valid = np.isfinite(world).all(axis=-1)
    else:
        K = rec.model_intrinsics[i]
        d = rec.depth[i].astype(np.float64)
        cam = np.stack([(u - K[0, 2]) * d / K[0, 0], (v - K[1, 2]) * d / K[1, 1], d], axis=-1)
        world = (cam - rec.cam_from_world[i, :3, 3]) @ rec.cam_from_world[i, :3, :3]
        valid = d > 1e-8
    valid &= rec.depth_conf[i] > 0
    uv = np.stack([u, v], axis=-1)[valid].astype(np.float64)
    return uv, world[valid], rec.depth_conf[i][valid]


def _pnp(uv_orig: np.ndarray, world: np.ndarray, K: np.ndarray, size: np.ndarray, max_error: float) -> np.ndarray | None:
    import pycolmap

    camera = pycolmap.Camera(model="PINHOLE", width=int(size[0]), height=int(size[1]),
                             params=[K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5])
    options = pycolmap.AbsolutePoseEstimationOptions()
    options.ransac.max_error = float(max_error)
    options.ransac.random_seed = 0
    result = pycolmap.estimate_and_refine_absolute_pose(uv_orig + 0.5, world, camera, options)
    if result is None:
        return None
    out = np.eye(4)
    out[:3] = result["cam_from_world"].matrix()
    return out


def apply_intrinsics(rec: Reconstruction, K: np.ndarray, resolve_poses: bool | None = None,
                     max_points: int = 4000, seed: int = 0) -> Reconstruction:
    """``rec`` with the given intrinsics ``K [S, 3, 3]`` (original pixels), poses re-solved by PnP.

    ``resolve_poses`` (default: where the reconstruction kept the point-map head's
    world points, which do not depend on the predicted cameras): PnP of each
    frame's pixels against them. Against points unprojected from the frame's own
    depth with the predicted camera PnP would only trade the focal error for a
    pose error (measured in ``benchmarks/refine.py``), so then the predicted poses
    stay and bundle adjustment (``refine="ba"``, intrinsics fixed) corrects them.
    A frame whose PnP fails keeps its predicted pose (with a warning). The depth
    maps are kept; the dense cloud is recomputed with the new cameras.
    """
    if resolve_poses is None:
        resolve_poses = rec.world_points is not None
    rng = np.random.default_rng(seed)
    cams = rec.cam_from_world.copy()
    failed = []
    if resolve_poses:
        for i in range(rec.num_frames):
            uv, world, conf = _frame_points(rec, i)
            if len(uv) > max_points:
                top = np.argsort(-conf)[: 4 * max_points]  # the confident part, subsampled
                uv, world = uv[top], world[top]
                pick = rng.choice(len(uv), size=max_points, replace=False)
                uv, world = uv[pick], world[pick]
            uv_orig = rec.transforms[i].model_to_original_points(uv)
            tol = 2.0 / rec.transforms[i].scale_x  # two model pixels, in original pixels
            pose = _pnp(uv_orig, world, K[i], rec.image_sizes[i], tol) if len(uv) >= 6 else None
            if pose is None:
                failed.append(i)
            else:
                cams[i] = pose
        if failed:
            log.warning("PnP with the given intrinsics failed for frames %s; they keep the predicted poses", failed)
        # keep the world frame of the first camera
        cams = cams @ np.linalg.inv(cams[0]) @ rec.cam_from_world[0]
    out = with_cameras(rec, cams, K)
    out.info["known_intrinsics"] = {"poses_resolved": bool(resolve_poses), "pnp_failed": failed}
    return out


# ---------------------------------------------------------------------- poses
def _project_so3(M: np.ndarray) -> np.ndarray:
    U, _, Vt = np.linalg.svd(M)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    return U @ D @ Vt


def _angle(R: np.ndarray) -> np.ndarray:
    """Rotation angles (degrees) of ``R [..., 3, 3]``."""
    return np.degrees(np.arccos(np.clip((np.trace(R, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0)))


def similarity_from_cameras(pred: np.ndarray, given: np.ndarray, max_angle: float = 10.0,
                            max_centre_error: float = 0.1) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """``(s, R, t, inliers [S])`` with ``X_given = s R X_pred + t``, robust to a few wrong given poses.

    Rotation: the candidate ``R_i = R_given_i^T R_pred_i`` agreeing with most
    others (within ``max_angle`` degrees, widened when fewer than half agree),
    averaged over them; scale: ratio of the median distances of the agreeing
    centres from their medians; translation: median offset. Inliers are frames whose rotation agrees and whose centre lands
    within ``max_centre_error`` times the spread of the given centres; ``s, t``
    are then fit by least squares on them.
    """
    S = len(pred)
    c_pred = np.linalg.inv(pred)[:, :3, 3]
    c_given = np.linalg.inv(given)[:, :3, 3]
    cand = np.einsum("sji,sjk->sik", given[:, :3, :3], pred[:, :3, :3])  # R_given^T R_pred
    diff = _angle(np.einsum("aji,bjk->abik", cand, cand))  # [S, S]
    for threshold in (max_angle, 2 * max_angle, 4 * max_angle, 180.0):  # widen for poor predictions
        agree = diff <= threshold
        best = int(np.argmax(agree.sum(axis=1)))
        rot_in = agree[best]
        if rot_in.sum() >= max(1, (S + 1) // 2):
            break
    R = _project_so3(cand[rot_in].sum(axis=0))
    moved = c_pred @ R.T
    idx = np.flatnonzero(rot_in)
    if len(idx) >= 2:  # ratio of the spreads of the centres about their medians
        dp = np.linalg.norm(moved[idx] - np.median(moved[idx], axis=0), axis=1)
        dg = np.linalg.norm(c_given[idx] - np.median(c_given[idx], axis=0), axis=1)
        s = float(np.median(dg) / np.median(dp)) if np.median(dp) > 1e-12 else 1.0
    else:
        s = 1.0
    t = np.median(c_given[idx] - s * moved[idx], axis=0)
    spread = max(float(np.median(np.linalg.norm(c_given - np.median(c_given, axis=0), axis=1))), 1e-12)
    inliers = rot_in
    for _ in range(3):  # consensus, then least squares on it, then consensus again
        residual = np.linalg.norm(s * moved + t - c_given, axis=1)
        inliers = rot_in & (residual <= max_centre_error * spread)
        if inliers.sum() < max(1, (S + 1) // 2):  # poor predictions: the better half of the agreeing frames
            inliers = rot_in & (residual <= np.median(residual[rot_in]))
        if inliers.sum() >= 3:  # least squares on the inliers, unless their predicted centres nearly coincide
            mp, mg = moved[inliers].mean(axis=0), c_given[inliers].mean(axis=0)
            den = float(np.sum((moved[inliers] - mp) ** 2))
            s_ls = float(np.sum((c_given[inliers] - mg) * (moved[inliers] - mp)) / den) if den > 1e-18 else 0.0
            if 0.5 * s <= s_ls <= 2.0 * s:
                s = s_ls
            t = mg - s * mp
        else:
            t = np.median(c_given[inliers] - s * moved[inliers], axis=0)
    if not (np.isfinite(s) and s > 0):
        raise ValueError("the given poses do not determine a similarity with the predicted ones (all centres equal?)")
    return s, R, t, inliers


def align_to_poses(rec: Reconstruction, given: np.ndarray, replace: bool = False) -> Reconstruction:
    """``rec`` in the world frame and units of the given poses ``[S, 4, 4]`` (cam_from_world, OpenCV axes).

    With ``replace`` the given poses then replace the aligned predictions exactly.
    The summary (``info["known_poses"]``) lists the frames whose given pose
    disagreed (outliers) and the centre errors after alignment.
    """
    s, R, t, inliers = similarity_from_cameras(rec.cam_from_world, given)
    out = apply_similarity(rec, s, R, t)
    centres = np.linalg.inv(out.cam_from_world)[:, :3, 3]
    errors = np.linalg.norm(centres - np.linalg.inv(given)[:, :3, 3], axis=1)
    outliers = [int(i) for i in np.flatnonzero(~inliers)]
    if outliers:
        log.warning("given poses of frames %s disagree with the reconstruction; they were left out of the alignment",
                    outliers)
    if replace:
        out = with_cameras(out, given.copy(), out.intrinsics)
    out.info["known_poses"] = {"scale": s, "outliers": outliers, "replaced": bool(replace),
                               "centre_error_median": float(np.median(errors)),
                               "centre_error_max_inliers": float(errors[inliers].max()) if inliers.any() else None}
    return out


# ---------------------------------------------------------------------- scale
@dataclass(frozen=True)
class KnownDistance:
    """Pixel ``xy_a`` of frame ``frame_a`` and ``xy_b`` of ``frame_b`` (original pixels) are ``distance`` apart."""

    frame_a: int
    xy_a: tuple[float, float]
    frame_b: int
    xy_b: tuple[float, float]
    distance: float


@dataclass(frozen=True)
class CameraHeight:
    """Camera ``frame``'s centre is ``height`` above the ground (the dominant plane below it)."""

    height: float
    frame: int = 0


_PIXEL = r"(\d+):(-?[0-9.]+),(-?[0-9.]+)"


def parse_scale(spec: Any) -> KnownDistance | CameraHeight:
    """``"F:X,Y F:X,Y DIST"`` or ``"camera-height=H"`` (or the dataclasses) -> a scale constraint.

    Raises ValueError with the accepted syntax when ``spec`` does not parse.
    """
    if isinstance(spec, KnownDistance | CameraHeight):
        value = spec.distance if isinstance(spec, KnownDistance) else spec.height
    else:
        text = str(spec).strip()
        m = re.fullmatch(rf"{_PIXEL}\s+{_PIXEL}\s+([0-9.eE+-]+)", text)
        h = re.fullmatch(r"camera-height(?:@(\d+))?=([0-9.eE+-]+)", text)
        try:
            if m:
                spec = KnownDistance(int(m[1]), (float(m[2]), float(m[3])), int(m[4]), (float(m[5]), float(m[6])),
                                     float(m[7]))
                value = spec.distance
            elif h:
                spec = CameraHeight(float(h[2]), int(h[1] or 0))
                value = spec.height
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"--scale {text!r}: use 'FRAME:X,Y FRAME:X,Y DISTANCE' (two pixels at original "
                             "resolution and their distance) or 'camera-height=H' ('camera-height@FRAME=H')") from None
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"--scale: the known distance must be positive, got {value}")
    return spec


def _point_at(rec: Reconstruction, frame: int, xy: tuple[float, float]) -> np.ndarray:
    if not 0 <= frame < rec.num_frames:
        raise ValueError(f"--scale: frame {frame} does not exist (0..{rec.num_frames - 1})")
    w, h = rec.image_sizes[frame]
    if not (-0.5 <= xy[0] <= w - 0.5 and -0.5 <= xy[1] <= h - 0.5):
        raise ValueError(f"--scale: pixel {xy} is outside frame {frame} ({w}x{h})")
    m = rec.transforms[frame].original_to_model_points(np.asarray(xy, dtype=np.float64))
    H, W = rec.depth.shape[1:]
    u, v = int(np.clip(round(m[0]), 0, W - 1)), int(np.clip(round(m[1]), 0, H - 1))
    d = float(rec.depth[frame, v, u])
    if d <= 0:
        raise ValueError(f"--scale: no depth at pixel {xy} of frame {frame} (outside the model's view)")
    K = rec.intrinsics[frame]
    cam = np.array([(xy[0] - K[0, 2]) / K[0, 0] * d, (xy[1] - K[1, 2]) / K[1, 1] * d, d])
    Rt = rec.cam_from_world[frame]
    return Rt[:3, :3].T @ (cam - Rt[:3, 3])


def _camera_height(rec: Reconstruction, frame: int, seed: int = 0) -> float:
    """Distance from camera ``frame`` to the dominant plane below it (RANSAC on the dense points)."""
    if not 0 <= frame < rec.num_frames or len(rec.points) < 50:
        raise ValueError("--scale camera-height needs a valid frame and a point cloud with a visible ground")
    Rt = rec.cam_from_world[frame]
    P = rec.points.astype(np.float64) @ Rt[:3, :3].T + Rt[:3, 3]  # camera frame: y points down
    below = P[P[:, 1] > 0]
    if len(below) < 50:
        raise ValueError("--scale camera-height: too few points below the camera to find the ground")
    rng = np.random.default_rng(seed)
    tol = 0.01 * float(np.median(np.linalg.norm(below, axis=1)))
    best, best_count = None, 0
    for _ in range(500):
        a, b, c = below[rng.choice(len(below), 3, replace=False)]
        n = np.cross(b - a, c - a)
        if np.linalg.norm(n) < 1e-12:
            continue
        n /= np.linalg.norm(n)
        if abs(n[1]) < np.cos(np.radians(30)):  # the ground faces the camera's vertical within 30 degrees
            continue
        count = int((np.abs((below - a) @ n) < tol).sum())
        if count > best_count:
            best, best_count = (n, a), count
    if best is None or best_count < 30:
        raise ValueError("--scale camera-height: no ground plane found below the camera")
    n, a = best
    inl = below[np.abs((below - a) @ n) < tol]
    centroid = inl.mean(axis=0)
    n = np.linalg.svd(inl - centroid)[2][-1]
    return float(abs(centroid @ n))  # distance from the camera centre (origin) to the plane


def apply_scale(rec: Reconstruction, spec: Any) -> Reconstruction:
    """``rec`` scaled (about the world origin) so the known distance holds."""
    spec = parse_scale(spec)
    if isinstance(spec, KnownDistance):
        d = float(np.linalg.norm(_point_at(rec, spec.frame_a, spec.xy_a) - _point_at(rec, spec.frame_b, spec.xy_b)))
        target = spec.distance
    else:
        d, target = _camera_height(rec, spec.frame), spec.height
    if d <= 1e-12:
        raise ValueError("--scale: the two points coincide in the reconstruction")
    s = target / d
    out = apply_similarity(rec, s, np.eye(3), np.zeros(3))
    out.info["scale"] = {"factor": s, "measured": d, "known": target, "kind": type(spec).__name__}
    return dataclasses.replace(out)
