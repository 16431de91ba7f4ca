"""How 3D-consistent is a clip? Depth reprojection agreement, track reprojection error, camera smoothness.

The core, :func:`consistency_from_geometry`, takes geometry (ground truth, or
any model's predictions); :func:`vggt3d.prior.consistency.consistency` runs a
vggt3d model on a video or frames and calls it. Both return a :class:`ConsistencyReport` with one value
per frame and one score in [0, 1] (higher is more consistent).

The measures (Convention: ``cam_from_world = [R | t]``, OpenCV axes: x right,
y down, z forward; intrinsics in pixels, pixel centres at integers):

- **depth agreement**: for each ordered pair of frames ``(i, j)`` (all pairs,
  or those at most ``max_gap`` apart), every valid pixel of frame i is lifted
  to 3D with its depth and projected into frame j, giving a depth ``z`` in
  camera j. Pixels that land outside frame j (or behind it, or on no valid
  depth) are *out of view* and not counted. The others are compared with
  frame j's depth ``d`` at the landing point (bilinear where the 2x2 pixels
  around it are within 25% of each other, i.e. one surface; else the nearest
  pixel, so depth edges are not blended): they *agree* if ``|z - d| <=
  rel_tol d``, are *occluded* if ``z`` is behind (``z > d (1 + rel_tol)``:
  something else is in front in frame j, which consistent geometry allows)
  and *violate* the geometry if ``z`` is in front (``z < d (1 - rel_tol)``:
  frame j sees through a surface that frame i has, which consistent geometry
  forbids). Agreement = agree / (agree + violate); occluded pixels are left
  out, and because both directions of every pair are counted, a frame whose
  depth is too far (its points hide behind the others) is caught by the
  reverse direction. A frame's agreement pools the pairs it takes part in (as
  source or target); its covisibility is the fraction of its pixels in view
  of the frames it is compared with.
- **track reprojection error** (with ``tracks``): each visible track point is
  lifted with its frame's depth (sampled as above) and projected into every
  other frame where the track is visible; the error is the pixel distance to
  the tracked position there. Per frame: the median error of the projections
  into it, and the fraction under ``track_tol`` pixels (track agreement).
- **camera smoothness**: a video's camera moves smoothly; shuffling frames or
  splicing in a frame makes it jump. With camera centres ``c_t`` and relative
  rotations ``dR_t = R_{t+1} R_t^T``, the jerk at frame t is
  ``max(0, |c_{t+1} - 2 c_t + c_{t-1}| / (median step + eps) - smooth_tol)``
  plus the same for the angle of ``dR_t dR_{t-1}^T`` against the median
  rotation step (``eps``: 1% of the median depth, 5 degrees, so a few degrees
  of hand-held rotation jitter cost little). Smoothness is
  ``1 / (1 + jerk)``; the end frames take their neighbour's value; it is 1 for
  fewer than 3 frames. Note that shuffling the frames of a static scene keeps
  its multi-view geometry consistent: only the smoothness term (and the lower
  overlap of the compared pairs) notices.
- **confidence statistics** (with ``conf``): reported per frame and for the
  clip; they do not enter the score. ``conf_quantile > 0`` drops each frame's
  least confident pixels before everything else.

Per-frame score = geometric agreement (depth agreement, averaged with the
track agreement when tracks are given; 0 for a frame with no pixel in view of
any compared frame) x smoothness. The clip score is the mean over frames.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..geometry import depth_to_world_points, invert_rigid, project_points

__all__ = ["ConsistencyReport", "consistency_from_geometry"]


@dataclass
class ConsistencyReport:
    """Result of :func:`consistency_from_geometry` / :func:`consistency`.

    ``per_frame`` maps each measure to one value per frame (``None`` where it
    is undefined, e.g. track error without tracks); ``summary`` holds the clip
    values; ``settings`` the parameters used. ``to_dict`` / ``to_json`` give the
    JSON output of ``vggt3d score``.
    """

    score: float
    per_frame: dict[str, list[float | None]]
    summary: dict[str, float | None]
    settings: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    frame_indices: list[int] | None = None
    timestamps: list[float] | None = None

    @property
    def num_frames(self) -> int:
        return len(self.per_frame["score"])

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))

    def to_json(self, path: str | os.PathLike | None = None, indent: int = 2) -> str:
        """The report as JSON (NaN written as ``null``); also written to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _values(t: Tensor) -> list[float | None]:
    return [None if not math.isfinite(v) else float(v) for v in t.double().tolist()]


def _nanmean(t: Tensor) -> float:
    t = t[torch.isfinite(t)]
    return float(t.mean()) if t.numel() else float("nan")


def _squeeze_batch(name: str, x: Tensor | None, dims: int) -> Tensor | None:
    if x is None:
        return None
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == dims + 1 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != dims:
        raise ValueError(f"{name} must have {dims} dimensions (one clip), got shape {list(x.shape)}")
    return x


# --------------------------------------------------------------------------- depth
def _sample_depth(depth: Tensor, uv: Tensor, smooth: float = 0.25) -> tuple[Tensor, Tensor]:
    """Depth of ``depth [J, H, W]`` at sub-pixel ``uv [J, n, 2]``: ``[J, n]``, and a mask of where there is one.

    Bilinear where the 2x2 pixels around ``uv`` are all valid and within a
    factor ``1 + smooth`` of each other (one surface, even a steep one), else
    the nearest pixel (so depth edges and noise are not blended into values no
    pixel has).
    """
    J, H, W = depth.shape
    flat = depth.reshape(-1)
    base = (torch.arange(J, device=depth.device) * (H * W))[:, None]  # [J, 1] offset of each map in ``flat``
    x = uv[..., 0].clamp(0, W - 1)
    y = uv[..., 1].clamp(0, H - 1)
    x0, y0 = x.floor().clamp(max=max(W - 2, 0)), y.floor().clamp(max=max(H - 2, 0))
    fx, fy = x - x0, y - y0
    i00 = base + y0.long() * W + x0.long()  # [J, n] flat index of the top-left pixel
    dx, dy = int(W > 1), W * int(H > 1)
    d = torch.stack([flat.take(i00), flat.take(i00 + dx), flat.take(i00 + dy), flat.take(i00 + dx + dy)], -1)  # [J, n, 4]
    bilinear = (d[..., 0] * (1 - fx) + d[..., 1] * fx) * (1 - fy) + (d[..., 2] * (1 - fx) + d[..., 3] * fx) * fy
    dmin, dmax = d.aminmax(dim=-1)
    one_surface = (dmin > 0) & (dmax <= dmin * (1 + smooth))
    # The nearest of the four pixels (pixel centres at integers).
    corner = (fx >= 0.5).long() + 2 * (fy >= 0.5).long()  # [J, n] in 0..3
    nearest = d.gather(-1, corner.unsqueeze(-1)).squeeze(-1)
    value = torch.where(one_surface, bilinear, nearest)
    return value, value > 0


def _project(points: Tensor, cam_from_world: Tensor, intrinsics: Tensor) -> tuple[Tensor, Tensor]:
    """World ``points [n, 3]`` into ``J`` cameras: pixels ``[J, n, 2]`` and camera z ``[J, n]``.

    Convention: as :func:`vggt3d.geometry.project_points` (OpenCV axes, pixel
    centres at integers), written as one matrix product per camera for speed.
    """
    cam = torch.einsum("jab,nb->jna", cam_from_world[:, :, :3], points) + cam_from_world[:, None, :, 3]  # [J, n, 3]
    pix = torch.einsum("jab,jnb->jna", intrinsics, cam)  # [J, n, 3]
    z = cam[..., 2]
    return pix[..., :2] / pix[..., 2:], z


PAIR_COUNTS = ("valid", "in_view", "agree", "violate", "occluded")


def _pair_counts(pts: Tensor, depth: Tensor, cam_from_world: Tensor, intrinsics: Tensor,
                 rel_tol: float) -> dict[str, Tensor]:
    """Counts ``[J]`` (:data:`PAIR_COUNTS`) of one source frame's valid world points ``pts [n, 3]`` checked
    against ``J`` target frames (``depth [J, H, W]``, ``cam_from_world [J, 3, 4]``, ``intrinsics [J, 3, 3]``)."""
    H, W = depth.shape[-2:]
    uv, z = _project(pts, cam_from_world, intrinsics)  # [J, n, 2], [J, n]
    inside = (z > 1e-8) & (uv[..., 0] > -0.5) & (uv[..., 0] < W - 0.5) & (uv[..., 1] > -0.5) & (uv[..., 1] < H - 0.5)
    d, surface = _sample_depth(depth, torch.nan_to_num(uv, nan=-1.0, posinf=-1.0, neginf=-1.0))  # [J, n]
    seen = inside & surface
    front = seen & (z < d * (1 - rel_tol))
    behind = seen & (z > d * (1 + rel_tol))
    return {"valid": torch.full((depth.shape[0],), float(pts.shape[0]), dtype=torch.float64),
            "in_view": seen.sum(1).double().cpu(), "violate": front.sum(1).double().cpu(),
            "occluded": behind.sum(1).double().cpu(), "agree": (seen & ~front & ~behind).sum(1).double().cpu()}


def _source_points(depth: Tensor, valid: Tensor, cam_from_world: Tensor, intrinsics: Tensor,
                   stride: int) -> list[Tensor]:
    """Each frame's valid world points ``[n_i, 3]`` (every ``stride``-th row and column) of ``[S, H, W]`` maps."""
    world, _ = depth_to_world_points(depth, cam_from_world, intrinsics)  # [S, H, W, 3]
    world, valid = world[:, ::stride, ::stride], valid[:, ::stride, ::stride]
    return [world[i][valid[i]] for i in range(depth.shape[0])]


def _depth_pairs(depth: Tensor, valid: Tensor, cam_from_world: Tensor, intrinsics: Tensor, rel_tol: float,
                 max_gap: int | None, stride: int) -> dict[str, Tensor]:
    """Counts ``[S, S]`` (source i, target j): valid, in view, agree, violate, occluded."""
    S = depth.shape[0]
    points = _source_points(depth, valid, cam_from_world, intrinsics, stride)
    counts = {k: torch.zeros(S, S, dtype=torch.float64) for k in PAIR_COUNTS}
    for i in range(S):
        targets = [j for j in range(S) if j != i and (max_gap is None or abs(i - j) <= max_gap)]
        if not targets or points[i].shape[0] == 0:
            continue
        J = torch.tensor(targets, device=depth.device)
        for k, v in _pair_counts(points[i], depth[J], cam_from_world[J], intrinsics[J], rel_tol).items():
            counts[k][i, targets] = v
    return counts


# --------------------------------------------------------------------------- tracks
def _lift_tracks(depth: Tensor, cam_from_world: Tensor, intrinsics: Tensor, tracks: Tensor,
                 visibility: Tensor) -> tuple[Tensor, Tensor]:
    """World points ``[S, N, 3]`` of the tracked pixels lifted with each frame's depth; ``[S, N]`` where possible."""
    S, H, W = depth.shape
    d, has = _sample_depth(depth, tracks)  # [S, N]
    ok = visibility & has & (tracks[..., 0] > -0.5) & (tracks[..., 0] < W - 0.5) \
        & (tracks[..., 1] > -0.5) & (tracks[..., 1] < H - 0.5)
    K_inv = torch.linalg.inv(intrinsics)  # [S, 3, 3]
    pix = torch.cat([tracks, torch.ones_like(tracks[..., :1])], dim=-1)  # [S, N, 3]
    cam = (K_inv[:, None] @ pix.unsqueeze(-1)).squeeze(-1) * d.unsqueeze(-1)  # [S, N, 3]
    world_from_cam = invert_rigid(cam_from_world)  # [S, 3, 4]
    world = (world_from_cam[:, None, :, :3] @ cam.unsqueeze(-1)).squeeze(-1) + world_from_cam[:, None, :, 3]
    return world, ok


def _reproject_tracks(world: Tensor, ok_src: Tensor, cam_from_world: Tensor, intrinsics: Tensor, tracks: Tensor,
                      ok_dst: Tensor, same: Tensor) -> Tensor:
    """Errors ``[S_src, S_dst, N]`` in pixels of lifted points ``world [S_src, N, 3]`` projected into ``S_dst``
    frames (their cameras, tracks ``[S_dst, N, 2]``); NaN where undefined or where ``same [S_src, S_dst]``."""
    S_dst = cam_from_world.shape[0]
    pts = world[None].expand(S_dst, -1, -1, -1)  # [S_dst, S_src, N, 3]
    uv, z = project_points(pts, cam_from_world, intrinsics)  # [S_dst, S_src, N, 2], [S_dst, S_src, N]
    uv, z = uv.transpose(0, 1), z.transpose(0, 1)  # [S_src, S_dst, N, ...]
    err = (uv - tracks[None]).norm(dim=-1)  # [S_src, S_dst, N]
    use = ok_src[:, None] & ok_dst[None] & (z > 1e-8) & ~same[..., None]
    return torch.where(use, err, torch.full_like(err, float("nan")))


def _track_errors(depth: Tensor, cam_from_world: Tensor, intrinsics: Tensor, tracks: Tensor,
                  visibility: Tensor) -> Tensor:
    """Reprojection errors ``[S_src, S_dst, N]`` in pixels (NaN where undefined)."""
    S = depth.shape[0]
    world, ok = _lift_tracks(depth, cam_from_world, intrinsics, tracks, visibility)
    same = torch.eye(S, dtype=torch.bool, device=depth.device)
    return _reproject_tracks(world, ok, cam_from_world, intrinsics, tracks, ok, same)


# --------------------------------------------------------------------------- cameras
def _rotation_angle(R: Tensor) -> Tensor:
    cos = ((R.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    return torch.arccos(cos)


def _smoothness(cam_from_world: Tensor, scene_scale: float, smooth_tol: float) -> tuple[Tensor, Tensor]:
    """Per-frame smoothness ``[S]`` in (0, 1] and jerk ``[S]`` (see the module docstring)."""
    S = cam_from_world.shape[0]
    if S < 3:
        return torch.ones(S, dtype=torch.float64), torch.zeros(S, dtype=torch.float64)
    pose = cam_from_world.double()
    R, t = pose[:, :, :3], pose[:, :, 3]
    centers = -(R.transpose(1, 2) @ t.unsqueeze(-1)).squeeze(-1)  # [S, 3]
    step = (centers[1:] - centers[:-1]).norm(dim=-1)  # [S-1]
    accel = (centers[2:] - 2 * centers[1:-1] + centers[:-2]).norm(dim=-1)  # [S-2]
    dR = R[1:] @ R[:-1].transpose(1, 2)  # [S-1, 3, 3]
    rot_step = _rotation_angle(dR)
    rot_accel = _rotation_angle(dR[1:] @ dR[:-1].transpose(1, 2))  # [S-2]
    trans = accel / (step.median() + 0.01 * scene_scale)
    rot = rot_accel / (rot_step.median() + math.radians(5.0))
    jerk = (trans - smooth_tol).clamp_min(0) + (rot - smooth_tol).clamp_min(0)  # [S-2]
    jerk = torch.cat([jerk[:1], jerk, jerk[-1:]])  # ends take their neighbour's value
    return 1.0 / (1.0 + jerk), jerk


# --------------------------------------------------------------------------- core
def consistency_from_geometry(depth: Tensor, cam_from_world: Tensor, intrinsics: Tensor, conf: Tensor | None = None,
                              tracks: Tensor | None = None, track_visibility: Tensor | None = None, *,
                              rel_tol: float = 0.05, max_gap: int | None = None, track_tol: float | None = None,
                              smooth_tol: float = 0.5, conf_quantile: float = 0.0,
                              pixel_stride: int = 1) -> ConsistencyReport:
    """3D-consistency of one clip from its geometry (see the module docstring for the measures).

    Convention: ``cam_from_world = [R | t]``, ``X_cam = R X_world + t``, OpenCV
    axes (x right, y down, z forward); intrinsics and tracks in pixels of the
    depth maps, pixel centres at integers; depth is camera z, ``<= 0`` invalid.

    Args:
        depth: ``[S, H, W]`` (a leading batch of 1 is accepted for every input).
        cam_from_world: ``[S, 3, 4]``.
        intrinsics: ``[S, 3, 3]``.
        conf: ``[S, H, W]`` per-pixel confidence (statistics; ``conf_quantile``).
        tracks: ``[S, N, 2]`` pixel (x, y) of N points in every frame.
        track_visibility: ``[S, N]`` bool (default: all visible).
        rel_tol: relative depth tolerance of the agreement test.
        max_gap: compare only frames at most this far apart (default: all pairs).
        track_tol: pixels under which a track reprojection agrees (default: 1%
            of the image diagonal, at least 1 pixel).
        smooth_tol: camera accelerations up to this fraction of the median
            step are not penalised.
        conf_quantile: drop each frame's pixels below this confidence quantile.
        pixel_stride: use every ``pixel_stride``-th pixel (row and column) as a source pixel.

    Raises:
        ValueError: fewer than 2 frames, or shapes that do not match.
    """
    depth = _squeeze_batch("depth", depth, 3)
    cam_from_world = _squeeze_batch("cam_from_world", cam_from_world, 3)
    intrinsics = _squeeze_batch("intrinsics", intrinsics, 3)
    conf = _squeeze_batch("conf", conf, 3)
    tracks = _squeeze_batch("tracks", tracks, 3)
    track_visibility = _squeeze_batch("track_visibility", track_visibility, 2)
    S, H, W = depth.shape
    if S < 2:
        raise ValueError(f"consistency needs at least 2 frames, got {S}")
    if tuple(cam_from_world.shape) != (S, 3, 4) or tuple(intrinsics.shape) != (S, 3, 3):
        raise ValueError(f"cam_from_world must be [{S}, 3, 4] and intrinsics [{S}, 3, 3], got "
                         f"{list(cam_from_world.shape)} and {list(intrinsics.shape)}")
    if conf is not None and tuple(conf.shape) != (S, H, W):
        raise ValueError(f"conf must be [{S}, {H}, {W}] like depth, got {list(conf.shape)}")
    if tracks is not None and (tracks.shape[0] != S or tracks.shape[-1] != 2):
        raise ValueError(f"tracks must be [{S}, N, 2], got {list(tracks.shape)}")
    if not 0 <= conf_quantile < 1:
        raise ValueError(f"conf_quantile must be in [0, 1), got {conf_quantile}")
    if rel_tol <= 0 or pixel_stride < 1 or (max_gap is not None and max_gap < 1):
        raise ValueError("rel_tol must be > 0, pixel_stride >= 1 and max_gap >= 1")

    settings = dict(rel_tol=rel_tol, max_gap=max_gap, track_tol=track_tol, smooth_tol=smooth_tol,
                    conf_quantile=conf_quantile, pixel_stride=pixel_stride, image_size=[H, W], num_frames=S)
    depth, valid, conf = _prepare_depth(depth, conf, conf_quantile)
    cam_from_world = cam_from_world.detach().to(depth.device, torch.float64)
    intrinsics = intrinsics.detach().to(depth.device, torch.float64)
    counts = _depth_pairs(depth, valid, cam_from_world, intrinsics, rel_tol, max_gap, pixel_stride)
    err = None
    if tracks is not None:
        tracks = tracks.detach().to(depth.device, torch.float64)
        vis = (torch.ones(tracks.shape[:2], dtype=torch.bool, device=depth.device) if track_visibility is None
               else track_visibility.detach().to(depth.device).bool())
        err = _track_errors(depth, cam_from_world, intrinsics, tracks, vis).cpu()  # [S_src, S_dst, N]
    return _report(counts, depth[valid], cam_from_world, conf, err, settings)


def _prepare_depth(depth: Tensor, conf: Tensor | None, conf_quantile: float) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(depth, valid, conf)`` of ``[S, H, W]`` maps in float64: invalid depth (non-finite, ``<= 0``, under each
    frame's ``conf_quantile``) set to 0. Per frame, so scoring a growing clip gives the same values."""
    device = depth.device  # the pair loop runs where the geometry is (a GPU is much faster for long clips)
    S = depth.shape[0]
    depth = depth.detach().to(device, torch.float64)
    valid = torch.isfinite(depth) & (depth > 0)
    if conf is not None:
        conf = conf.detach().to(device, torch.float64)
        if conf_quantile > 0:
            cut = torch.quantile(conf.reshape(S, -1), conf_quantile, dim=1)  # [S]
            valid &= conf >= cut[:, None, None]
    return torch.where(valid, depth, torch.zeros_like(depth)), valid, conf


def _frame_scores(counts_src: dict[str, Tensor], counts_dst: dict[str, Tensor], track_agreement: Tensor | None,
                  smoothness: Tensor) -> tuple[Tensor, Tensor]:
    """Per-frame ``(depth_agreement, score)`` from each frame's pair counts as source (``counts_src[k]`` summed
    over targets) and as target, its track agreement (or None) and its smoothness (all ``[S]``)."""
    agree = counts_src["agree"] + counts_dst["agree"]
    checked = agree + counts_src["violate"] + counts_dst["violate"]
    agreement = torch.where(checked > 0, agree / checked.clamp_min(1), float("nan"))
    geometric = torch.nan_to_num(agreement, nan=0.0)
    if track_agreement is not None:
        geometric = torch.where(torch.isfinite(track_agreement), (geometric + track_agreement) / 2, geometric)
    return agreement, geometric * smoothness


def _track_tol(track_tol: float | None, H: int, W: int) -> float:
    return track_tol if track_tol is not None else max(1.0, 0.01 * math.hypot(H, W))


def _track_agreement(into: Tensor, tol: float) -> Tensor:
    """Fraction of finite errors under ``tol`` per row of ``into [S, M]`` (NaN for a row with none)."""
    n = torch.isfinite(into).sum(1)
    return torch.where(n > 0, (into < tol).sum(1) / n.clamp_min(1), float("nan"))


def _report(counts: dict[str, Tensor], valid_depths: Tensor, cam_from_world: Tensor, conf: Tensor | None,
            err: Tensor | None, settings: dict[str, Any]) -> ConsistencyReport:
    """The report of a clip from its pair counts ``[S, S]``, its valid depth values (scene scale), cameras
    ``[S, 3, 4]``, confidence ``[S, H, W]`` (or None) and track errors ``[S_src, S_dst, N]`` (or None)."""
    S = cam_from_world.shape[0]
    H, W = settings["image_size"]
    per_frame: dict[str, Tensor] = {}
    summary: dict[str, float] = {}
    if conf is not None:
        per_frame["conf_mean"] = conf.reshape(S, -1).mean(1).cpu()
        per_frame["conf_median"] = conf.reshape(S, -1).median(1).values.cpu()
        summary["conf_mean"] = float(conf.mean())
        summary["conf_median"] = float(conf.median())
        summary["conf_p10"] = float(torch.quantile(conf.flatten()[:: max(1, conf.numel() // 1_000_000)], 0.1))

    track_part, track_summary = None, {}
    if err is not None:
        tol = _track_tol(settings["track_tol"], H, W)
        into = err.transpose(0, 1).reshape(S, -1)  # [S_dst, S_src * N]
        per_frame["track_error_px"] = into.nanmedian(dim=1).values
        per_frame["track_agreement"] = track_part = _track_agreement(into, tol)
        finite = err[torch.isfinite(err)]
        track_summary["track_error_px"] = float(finite.median()) if finite.numel() else float("nan")
        track_summary["track_agreement"] = float((finite < tol).double().mean()) if finite.numel() else float("nan")
        track_summary["track_tol_px"] = tol
    scene_scale = float(valid_depths.median()) if valid_depths.numel() else 1.0
    per_frame["smoothness"], per_frame["camera_jerk"] = _smoothness(cam_from_world.cpu(), scene_scale,
                                                                    settings["smooth_tol"])
    per_frame["depth_agreement"], per_frame["score"] = _frame_scores(
        {k: c.sum(1) for k, c in counts.items()}, {k: c.sum(0) for k, c in counts.items()}, track_part,
        per_frame["smoothness"])
    per_frame["covisibility"] = counts["in_view"].sum(1) / counts["valid"].sum(1).clamp_min(1)

    total = {k: float(c.sum()) for k, c in counts.items()}
    checked_total = total["agree"] + total["violate"]
    summary["depth_agreement"] = _nanmean(per_frame["depth_agreement"])
    summary["depth_agreement_pooled"] = total["agree"] / checked_total if checked_total else float("nan")
    summary["violation_fraction"] = total["violate"] / total["in_view"] if total["in_view"] else float("nan")
    summary["occluded_fraction"] = total["occluded"] / total["in_view"] if total["in_view"] else float("nan")
    summary["covisibility"] = total["in_view"] / total["valid"] if total["valid"] else float("nan")
    summary.update(track_summary)
    summary["smoothness"] = float(per_frame["smoothness"].mean())
    score = float(per_frame["score"].mean())
    summary["score"] = score
    summary["worst_frame"] = int(per_frame["score"].argmin())
    order = ["score", "depth_agreement", "covisibility", "track_error_px", "track_agreement", "smoothness",
             "camera_jerk", "conf_mean", "conf_median"]
    frames = {k: _values(per_frame[k]) for k in order if k in per_frame}
    return ConsistencyReport(score=score, per_frame=frames, summary=summary, settings=dict(settings))
