"""``preview.png``: an overview picture of a reconstruction, drawn without a display (matplotlib Agg).

Top row: the coloured points and every camera's frustum from two viewpoints
(an oblique view from above and behind the first camera, and a top-down view);
bottom rows: a strip of up to :data:`STRIP_FRAMES` input frames (evenly spaced)
with their depth (turbo; white = no prediction) and depth confidence (viridis).
``ls`` and an image viewer then answer "did it work?" on a headless server.

The projection is orthographic about the scene centre with "up" = -y of the
first camera (OpenCV axes: x right, y down, z forward), points drawn far to
near. :func:`render_comparison` draws prediction and ground truth side by side
(``vggt3d evaluate`` reports).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vggt3d.result import Reconstruction

__all__ = ["Overview", "VIEWS", "frustum_lines", "overview_from_reconstruction", "overview_pair",
           "render_comparison", "render_overview", "write"]

#: Points drawn per 3D panel (a random subset beyond that).
MAX_POINTS = 30_000
#: Frames in the thumbnail strip.
STRIP_FRAMES = 6
#: (title, azimuth, elevation) in degrees: azimuth about the up axis from the first camera's +z, elevation
#: above the horizon (looking down).
VIEWS: tuple[tuple[str, float, float], ...] = (("oblique", 30.0, 35.0), ("top", 0.0, 89.0))


@dataclass
class Overview:
    """What the overview draws. Convention: world points and ``cam_from_world`` with OpenCV axes."""

    points: np.ndarray  # [N, 3] float, world
    colors: np.ndarray  # [N, 3] uint8
    cam_from_world: np.ndarray  # [S, 4, 4]
    intrinsics: np.ndarray  # [S, 3, 3] pixels, centres at integers
    image_sizes: np.ndarray  # [S, 2] (width, height) the intrinsics refer to
    images: list[np.ndarray] = field(default_factory=list)  # per frame [H, W, 3] uint8 (thumbnails)
    depths: list[np.ndarray] = field(default_factory=list)  # per frame [H, W] (0 = none)
    confidences: list[np.ndarray] = field(default_factory=list)  # per frame [H, W] (0 = none)
    title: str = ""


def overview_from_reconstruction(rec: Reconstruction) -> Overview:
    """The overview of a :class:`~vggt3d.result.Reconstruction` (model-resolution maps, no file reading)."""
    return Overview(rec.points, rec.colors, rec.cam_from_world, rec.intrinsics, rec.image_sizes,
                    list(rec.model_colors), list(rec.depth), list(rec.depth_conf),
                    title=f"{rec.num_frames} frames, {len(rec.points):,} points")


def _numpy(value) -> np.ndarray:
    return np.asarray(value.detach().cpu().double() if hasattr(value, "detach") else value, dtype=np.float64)


def _homogeneous(cams: np.ndarray) -> np.ndarray:
    """``[S, 3, 4]`` or ``[S, 4, 4]`` -> ``[S, 4, 4]``."""
    out = np.tile(np.eye(4), (len(cams), 1, 1))
    out[:, :3, :] = cams[:, :3, :]
    return out


def _unproject_maps(depth: np.ndarray, cam_from_world: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``depth [S, H, W]`` -> world points ``[S, H, W, 3]`` (OpenCV axes, pixel centres at integers)."""
    S, H, W = depth.shape
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    pix = np.stack([u, v, np.ones_like(u)], -1)  # [H, W, 3]
    out = np.empty((S, H, W, 3))
    for i in range(S):
        cam = (pix @ np.linalg.inv(K[i]).T) * depth[i][..., None]
        wfc = np.linalg.inv(cam_from_world[i])
        out[i] = cam @ wfc[:3, :3].T + wfc[:3, 3]
    return out


def overview_pair(pred, sample, max_points: int = MAX_POINTS, seed: int = 0) -> tuple[Overview, Overview]:
    """Prediction and ground truth of one evaluated scene as overviews (``vggt3d evaluate`` reports).

    ``pred``: ``cam_from_world [S, 3|4, 4]``, ``intrinsics [S, 3, 3]``, ``depth [S, H, W]`` and/or
    ``world_points [S, H, W, 3]``; ``sample``: the dataset sample (``images [S, 3, H, W]`` in [0, 1],
    ``cam_from_world``, ``intrinsics``, ``depths``, ``world_points``, ``point_masks``). Points are drawn
    where the ground truth is valid, coloured by the images; both in their own world frame (camera 0).
    """
    images = np.clip(np.round(_numpy(sample["images"]).transpose(0, 2, 3, 1) * 255), 0, 255).astype(np.uint8)
    S, H, W = images.shape[:3]
    mask = _numpy(sample["point_masks"]) > 0
    rng = np.random.default_rng(seed)
    where = np.flatnonzero(mask.reshape(-1))
    keep = np.sort(rng.choice(where, min(max_points, len(where)), replace=False)) if len(where) else where
    colors = images.reshape(-1, 3)[keep]
    sizes = np.array([[W, H]] * S)
    gt_cams, gt_K = _homogeneous(_numpy(sample["cam_from_world"])), _numpy(sample["intrinsics"])
    gt_depth = np.where(mask, _numpy(sample["depths"]), 0.0)
    gt = Overview(_numpy(sample["world_points"]).reshape(-1, 3)[keep], colors, gt_cams, gt_K, sizes,
                  list(images), list(gt_depth), title="ground truth")
    pred_cams = _homogeneous(_numpy(pred["cam_from_world"])) if "cam_from_world" in pred else gt_cams
    pred_K = _numpy(pred["intrinsics"]) if "intrinsics" in pred else gt_K
    if "world_points" in pred:
        world = _numpy(pred["world_points"])
    elif "depth" in pred:
        world = _unproject_maps(_numpy(pred["depth"]), pred_cams, pred_K)
    else:
        world = np.full((S, H, W, 3), np.nan)
    depth = list(_numpy(pred["depth"])) if "depth" in pred else []
    return (Overview(world.reshape(-1, 3)[keep], colors, pred_cams, pred_K, sizes, list(images), depth,
                     title="prediction"), gt)


def frustum_lines(cam_from_world: np.ndarray, K: np.ndarray, size: tuple[int, int], depth: float) -> np.ndarray:
    """Segments ``[8, 2, 3]`` of one camera's frustum (apex to the 4 image corners at camera z = ``depth``, and the
    image rectangle) in world coordinates. Convention: OpenCV axes, pixel centres at integers."""
    w, h = size
    corners = np.array([[-0.5, -0.5, 1], [w - 0.5, -0.5, 1], [w - 0.5, h - 0.5, 1], [-0.5, h - 0.5, 1]], float)
    rays = corners @ np.linalg.inv(K).T * depth  # [4, 3] camera coordinates
    world_from_cam = np.linalg.inv(cam_from_world)
    world = rays @ world_from_cam[:3, :3].T + world_from_cam[:3, 3]
    apex = world_from_cam[:3, 3]
    segs = [(apex, c) for c in world] + [(world[i], world[(i + 1) % 4]) for i in range(4)]
    return np.array(segs, dtype=np.float64)


def _view_axes(azimuth: float, elevation: float) -> np.ndarray:
    """Rows: screen right, screen down, viewing direction (world, OpenCV axes with up = -y)."""
    a, e = np.radians(azimuth), np.radians(elevation)
    forward = np.array([np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])
    down = np.array([0.0, 1.0, 0.0]) - np.sin(e) * forward
    down /= np.linalg.norm(down)
    right = np.cross(down, forward)
    return np.stack([right, down, forward])


def _subset(ov: Overview, max_points: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    pts, cols = np.asarray(ov.points, np.float64).reshape(-1, 3), np.asarray(ov.colors, np.uint8).reshape(-1, 3)
    ok = np.isfinite(pts).all(1)
    pts, cols = pts[ok], cols[ok]
    if len(pts) > max_points:
        keep = np.random.default_rng(seed).choice(len(pts), max_points, replace=False)
        pts, cols = pts[keep], cols[keep]
    return pts, cols


def _draw_3d(ax, ov: Overview, azimuth: float, elevation: float, title: str) -> None:
    """Points and frustums of ``ov`` in one matplotlib axes, orthographic (see the module docstring)."""
    import matplotlib

    pts, cols = _subset(ov, MAX_POINTS)
    centres = np.linalg.inv(np.asarray(ov.cam_from_world, np.float64))[:, :3, 3] if len(ov.cam_from_world) else \
        np.zeros((0, 3))
    both = np.concatenate([pts, centres]) if len(pts) else centres
    centre = np.median(both, axis=0) if len(both) else np.zeros(3)
    extent = float(np.linalg.norm(np.percentile(both, 95, 0) - np.percentile(both, 5, 0))) if len(both) > 1 else 1.0
    extent = extent if extent > 1e-9 else 1.0
    R = _view_axes(azimuth, elevation)
    if len(pts):
        p = (pts - centre) @ R.T
        order = np.argsort(-p[:, 2])  # far to near
        ax.scatter(p[order, 0], -p[order, 1], c=cols[order] / 255.0, s=2.0, marker="s", linewidths=0,
                   rasterized=True)
    cmap = matplotlib.colormaps["plasma"]
    S = len(ov.cam_from_world)
    screen = [((pts - centre) @ R.T)[:, :2]] if len(pts) else []
    for i in range(S):
        segs = frustum_lines(ov.cam_from_world[i], ov.intrinsics[i], tuple(int(v) for v in ov.image_sizes[i]),
                             0.1 * extent)
        s = (segs - centre) @ R.T
        color = cmap(0.85 * i / max(S - 1, 1))
        for a, b in s:
            ax.plot([a[0], b[0]], [-a[1], -b[1]], color=color, linewidth=1.2 if i else 2.0)
        screen.append(s.reshape(-1, 3)[:, :2])
    if screen:  # 1-99 % of the points, and every camera
        lo = np.min([np.percentile(xy, 1 if k == 0 and len(pts) else 0, axis=0) for k, xy in enumerate(screen)], 0)
        hi = np.max([np.percentile(xy, 99 if k == 0 and len(pts) else 100, axis=0) for k, xy in enumerate(screen)], 0)
        mid, half = 0.5 * (lo + hi), 0.55 * float(max(hi - lo)) + 1e-9  # a square window, 10 % margin
        ax.set_xlim(mid[0] - half, mid[0] + half)
        ax.set_ylim(-mid[1] - half, -mid[1] + half)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def _strip_indices(n: int) -> list[int]:
    return sorted(set(np.linspace(0, n - 1, min(n, STRIP_FRAMES)).round().astype(int).tolist())) if n else []


def _draw_map(ax, values: np.ndarray, cmap: str) -> None:
    v = np.asarray(values, np.float32)
    valid = np.isfinite(v) & (v > 0)
    shown = np.ma.masked_where(~valid, v)
    vmin, vmax = (np.percentile(v[valid], 2), np.percentile(v[valid], 98)) if valid.any() else (0, 1)
    import matplotlib

    cm = matplotlib.colormaps[cmap].with_extremes(bad="white")
    ax.imshow(shown, cmap=cm, vmin=vmin, vmax=max(vmax, vmin + 1e-6), interpolation="nearest")


def _figure(rows_3d: list[tuple[Overview, str]], strip: list[tuple[str, list[np.ndarray], str | None]],
            strip_frames: list[int], title: str):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    n_views = len(VIEWS) * len(rows_3d)
    cols = max(n_views, len(strip_frames), 1)
    cols = max(cols, 2 * n_views)
    top_height = 0.9 * 2.0 * cols / n_views  # about square 3D panels across the full width
    fig = Figure(figsize=(2.0 * cols, top_height + 1.7 * len(strip) + 0.4), dpi=100)
    grid = fig.add_gridspec(1 + len(strip), cols, height_ratios=[top_height] + [1.7] * len(strip))
    top = grid[0, :].subgridspec(1, n_views)
    k = 0
    for ov, label in rows_3d:
        for name, azimuth, elevation in VIEWS:
            _draw_3d(fig.add_subplot(top[0, k]), ov, azimuth, elevation, f"{label}{name}")
            k += 1
    for r, (label, maps, cmap) in enumerate(strip):
        row = grid[1 + r, :].subgridspec(1, cols)
        for c, i in enumerate(strip_frames):
            ax = fig.add_subplot(row[0, c])
            if i < len(maps) and maps[i] is not None:
                if cmap is None:
                    ax.imshow(np.asarray(maps[i], np.uint8))
                else:
                    _draw_map(ax, maps[i], cmap)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
            if r == 0:
                ax.set_title(f"frame {i}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def render_overview(ov: Overview, path: str | Path) -> Path:
    """Write the overview PNG of ``ov`` to ``path`` (see the module docstring); returns the path."""
    frames = _strip_indices(max(len(ov.images), len(ov.depths)))
    strip = [(name, maps, cmap) for name, maps, cmap in (("image", ov.images, None), ("depth", ov.depths, "turbo"),
                                                          ("confidence", ov.confidences, "viridis")) if maps]
    fig = _figure([(ov, "")], strip, frames, ov.title or "vggt3d reconstruction")
    fig.savefig(path)
    return Path(path)


def render_comparison(pred: Overview, gt: Overview, path: str | Path, title: str = "") -> Path:
    """Prediction beside ground truth: both from the two viewpoints, then images, predicted and true depth."""
    frames = _strip_indices(max(len(pred.images), len(gt.depths)))
    strip = [(name, maps, cmap) for name, maps, cmap in (("image", gt.images or pred.images, None),
                                                          ("predicted depth", pred.depths, "turbo"),
                                                          ("true depth", gt.depths, "turbo")) if maps]
    fig = _figure([(pred, "prediction, "), (gt, "ground truth, ")], strip, frames, title or "prediction vs truth")
    fig.savefig(path)
    return Path(path)


def write(rec: Reconstruction, root: Path) -> list[Path]:
    return [render_overview(overview_from_reconstruction(rec), root / "preview.png")]
