"""A self-contained, shareable HTML page of a :class:`~vggt3d.viewer.scene.Scene` (no server, no network).

:func:`export_html` writes one ``.html`` file holding the scene's points
(a random subset of at most ``max_points``, :data:`DEFAULT_PAGE_POINTS` by
default, most confident first), every camera as a frustum and the tracks as
line segments, base64-encoded, plus a small renderer of our own (``page.html``:
a software rasteriser with a depth buffer on a 2D canvas, so it runs without
WebGL) with orbit / pan / zoom, a confidence-percentile slider, point size and
"fly to camera" and a frame range. Opening the file in a browser needs nothing else.

Convention: positions in the scene's world frame (OpenCV axes: x right, y down,
z forward); the page's "up" is -y.
"""

from __future__ import annotations

import base64
import json
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .scene import PointSet, Scene, SceneError

if TYPE_CHECKING:
    from vggt3d.result import Reconstruction

__all__ = ["DEFAULT_PAGE_POINTS", "export_html", "page_data", "subsample", "write"]

#: Points kept in a page by default (about 4.5 MB of HTML).
DEFAULT_PAGE_POINTS = 200_000
BACKGROUND = (246, 246, 246)


def subsample(points: PointSet, budget: int, seed: int = 0) -> PointSet:
    """A random subset of at most ``budget`` points, ordered most confident first (stable for equal values)."""
    n = len(points)
    keep = np.arange(n)
    if n > budget:
        keep = np.sort(np.random.default_rng(seed).choice(n, budget, replace=False))
    if points.confidence is not None:
        keep = keep[np.argsort(-points.confidence[keep], kind="stable")]
    return points.subset(keep)


def _b64(array: np.ndarray, dtype) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _camera_color(i: int, n: int) -> str:
    import matplotlib

    r, g, b, _ = matplotlib.colormaps["plasma"](0.85 * i / max(n - 1, 1))
    return f"rgb({int(255 * r)},{int(255 * g)},{int(255 * b)})"


def page_data(scene: Scene, max_points: int = DEFAULT_PAGE_POINTS, point_set: str | None = None,
              conf_percentile: float = 0.0, seed: int = 0) -> dict:
    """The JSON the page renders (see the module docstring)."""
    from vggt3d.export.preview import frustum_lines

    name = point_set or scene.default_set
    if name is not None and name not in scene.point_sets:
        raise SceneError(f"{scene.source} has no point set {name!r}; it has {', '.join(scene.point_sets) or 'none'}")
    if not 0.0 <= conf_percentile < 100.0:
        raise SceneError(f"the confidence percentile must be in [0, 100), got {conf_percentile}")
    full = scene.point_sets[name] if name else PointSet(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8))
    pts = subsample(full, max_points, seed)
    extent = scene.extent()
    centres = np.array([f.world_from_cam[:3, 3] for f in scene.frames]).reshape(-1, 3)
    centre = (np.median(pts.points, axis=0) if len(pts) else
              centres.mean(axis=0) if len(centres) else np.zeros(3)).astype(float)
    frames = []
    for i, f in enumerate(scene.frames):
        wfc = f.world_from_cam
        segs = frustum_lines(f.cam_from_world, f.K, (f.width, f.height), 0.06 * extent)
        frames.append({"name": f.name, "position": wfc[:3, 3].tolist(), "forward": wfc[:3, 2].tolist(),
                       "segments": _b64(segs, "<f4"), "color": _camera_color(i, len(scene.frames))})
    if frames:  # start behind and above the first camera, looking at the centre
        f0 = scene.frames[0].world_from_cam
        home = f0[:3, 3] - f0[:3, 2] * 0.6 * extent - f0[:3, 1] * 0.3 * extent
    else:
        home = centre + np.array([0.0, -0.4, -1.0]) * extent
    segments = scene.tracks.segments() if scene.tracks is not None else np.zeros((0, 2, 3))
    return {
        "title": f"{scene.source.name} ({scene.kind}, points: {name or 'none'})",
        "positions": _b64(pts.points, "<f4"), "colors": _b64(pts.colors, np.uint8),
        "point_frames": _b64(pts.frame, "<u2") if pts.frame is not None and len(scene.frames) < 65536 else None,
        "has_confidence": pts.confidence is not None, "conf_percentile": float(conf_percentile),
        "budget": int(max_points), "total_points": len(full),
        "frames": frames, "tracks": _b64(segments, "<f4") if len(segments) else None,
        "centre": centre.tolist(), "extent": float(extent), "home_eye": np.asarray(home, float).tolist(),
        "background": list(BACKGROUND),
    }


def export_html(scene: Scene, path: str | os.PathLike, max_points: int = DEFAULT_PAGE_POINTS,
                point_set: str | None = None, conf_percentile: float = 0.0, seed: int = 0) -> Path:
    """Write the page (atomically: the file appears only when complete); returns its path."""
    from vggt3d.io.atomic import atomic_write_text

    if max_points < 1:
        raise SceneError(f"the point budget must be >= 1, got {max_points}")
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise SceneError(f"{path}: the page must be an .html file")
    if not path.parent.is_dir():
        raise SceneError(f"{path}: the folder {path.parent} does not exist; create it first")
    data = page_data(scene, max_points, point_set, conf_percentile, seed)
    template = resources.files("vggt3d.viewer").joinpath("page.html").read_text(encoding="utf-8")
    # "<" only occurs inside JSON strings (names, paths): escaped, no name can end or re-open the script element
    text = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return atomic_write_text(path, template.replace("__SCENE_DATA__", text))


def write(rec: Reconstruction, root: Path) -> list[Path]:
    """The ``html`` export format: ``scene.html`` of the reconstruction (``reconstruct --html``)."""
    from .scene import scene_from_reconstruction

    return [export_html(scene_from_reconstruction(rec), root / "scene.html",
                        conf_percentile=0.0 if rec.info.get("conf_absolute")
                        else min(float(rec.info.get("conf_threshold", 0.0)), 99.0))]
