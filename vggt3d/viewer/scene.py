"""What the viewers show: a :class:`Scene` read (never written) from a vggt3d output, a COLMAP model or a PLY.

:func:`load_scene` recognises

- a vggt3d output folder (``cameras.json`` with ``"format": "vggt3d.cameras"``):
  cameras, ``images/`` thumbnails, points unprojected from ``depth/`` with their
  ``confidence/`` (the point set ``depth``), ``points.ply`` (the point set
  ``pointmap`` when the run used ``--points-from pointmap``, else ``points.ply``)
  and ``tracks.npz`` lifted to 3D polylines through the depth maps;
- a COLMAP model folder (``cameras``/``images``/``points3D`` ``.bin`` or ``.txt``,
  also found under ``sparse/0``, ``sparse`` or ``colmap/sparse/0``), read with
  pycolmap; a point's confidence is ``1 / (1 + reprojection error)``;
- a ``.ply`` point cloud or mesh (its vertices), read with trimesh.

Convention: world points and ``cam_from_world`` (4x4) with OpenCV axes (x right,
y down, z forward); intrinsics ``K`` in pixels with pixel centres at integer
coordinates (COLMAP's half-pixel offset is removed on reading).

Everything read is untrusted: paths named inside files must stay inside the
folder, arrays are loaded without pickle and checked for shape and finiteness,
and a folder that is none of the above raises :class:`SceneError` (one line).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..io.paths import UnsafePathError, path_inside

if TYPE_CHECKING:
    from vggt3d.result import Reconstruction

log = logging.getLogger(__name__)

__all__ = ["Frame", "PointSet", "Scene", "SceneError", "TrackLines", "lift_tracks", "load_scene",
           "scene_from_reconstruction"]

#: Default number of points read from the depth maps (strided per frame).
DEFAULT_MAX_POINTS = 1_000_000
_COLMAP_FILES = ("cameras", "images", "points3D")


class SceneError(ValueError):
    """A path that the viewers cannot show; the message is one line naming the path and what to do."""


@dataclass
class Frame:
    """One camera. Convention: OpenCV axes; ``K`` in pixels, pixel centres at integers."""

    name: str
    width: int
    height: int
    K: np.ndarray  # [3, 3] float64
    cam_from_world: np.ndarray  # [4, 4] float64
    image_path: Path | None = None  # the input image, when present

    @property
    def world_from_cam(self) -> np.ndarray:
        return np.linalg.inv(self.cam_from_world)

    @property
    def fov_y(self) -> float:
        """Vertical field of view in radians."""
        return float(2.0 * np.arctan2(0.5 * self.height, self.K[1, 1]))

    def thumbnail(self, max_side: int = 256) -> np.ndarray | None:
        """The image as uint8 ``[h, w, 3]`` with its longer side at most ``max_side``, or None if unreadable."""
        if self.image_path is None:
            return None
        from PIL import Image, ImageOps

        try:
            with Image.open(self.image_path) as image:
                image = ImageOps.exif_transpose(image).convert("RGB")
                image.thumbnail((max_side, max_side))
                return np.asarray(image, dtype=np.uint8)
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s (%s); the camera is shown without its image", self.image_path, exc)
            return None


@dataclass
class PointSet:
    """Coloured world points ``[N, 3]``; ``confidence`` (higher is better) and ``frame`` when known."""

    points: np.ndarray  # [N, 3] float32, world
    colors: np.ndarray  # [N, 3] uint8
    confidence: np.ndarray | None = None  # [N] float32
    frame: np.ndarray | None = None  # [N] int32, index into Scene.frames

    def __len__(self) -> int:
        return len(self.points)

    def subset(self, keep: np.ndarray) -> PointSet:
        return PointSet(self.points[keep], self.colors[keep],
                        None if self.confidence is None else self.confidence[keep],
                        None if self.frame is None else self.frame[keep])


@dataclass
class TrackLines:
    """Point tracks lifted to world space: ``points [S, N, 3]`` (NaN where not visible or without depth)."""

    points: np.ndarray  # [S, N, 3] float32

    def segments(self, frames: np.ndarray | None = None) -> np.ndarray:
        """Line segments ``[M, 2, 3]`` between consecutive known positions of each track (within ``frames``)."""
        p = self.points if frames is None else self.points[frames]
        a, b = p[:-1], p[1:]  # [S-1, N, 3]
        ok = np.isfinite(a).all(-1) & np.isfinite(b).all(-1)
        return np.stack([a[ok], b[ok]], axis=1).astype(np.float32)


@dataclass
class Scene:
    """Cameras, point sets by name and optional tracks, in one world frame (OpenCV axes)."""

    source: Path
    kind: Literal["vggt3d", "colmap", "ply"]
    frames: list[Frame] = field(default_factory=list)
    point_sets: dict[str, PointSet] = field(default_factory=dict)
    tracks: TrackLines | None = None

    @property
    def default_set(self) -> str | None:
        return next(iter(self.point_sets), None)

    def extent(self) -> float:
        """A robust size of the scene: the spread of cameras and points (for frustum size and camera distance)."""
        centres = [f.world_from_cam[:3, 3] for f in self.frames]
        pts = [self.point_sets[self.default_set].points] if self.default_set else []
        both = np.concatenate([np.asarray(centres, np.float64).reshape(-1, 3)] + [p.astype(np.float64) for p in pts])
        both = both[np.isfinite(both).all(1)]
        if len(both) < 2:
            return 1.0
        lo, hi = np.percentile(both, 5, axis=0), np.percentile(both, 95, axis=0)
        size = float(np.linalg.norm(hi - lo))
        return size if size > 1e-9 else 1.0


# --------------------------------------------------------------------------------------- safe file access
def _inside(root: Path, relative: str, what: str) -> Path:
    """``root / relative`` (:func:`vggt3d.io.paths.path_inside`), as a :class:`SceneError`."""
    try:
        return path_inside(root, relative, what, folder="output folder")
    except UnsafePathError as exc:
        raise SceneError(f"{exc}; the folder is not a valid output") from None


def _load_npy(path: Path, shape: tuple[int, ...], what: str) -> np.ndarray:
    """A float32 array of ``shape`` from ``path`` (memory-mapped, no pickle)."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SceneError(f"{path}: cannot read {what} ({exc}); re-export it or remove it") from None
    if tuple(arr.shape) != shape or arr.dtype.kind != "f":
        raise SceneError(f"{path}: {what} has shape {tuple(arr.shape)} ({arr.dtype}), expected {shape} floats")
    return arr


def _matrix(value, shape: tuple[int, int], what: str, path: Path) -> np.ndarray:
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        m = np.zeros(0)
    if m.shape != shape or not np.isfinite(m).all():
        raise SceneError(f"{path}: {what} is not a finite {shape[0]}x{shape[1]} matrix; re-export the folder")
    return m


# ------------------------------------------------------------------------------------------ vggt3d output
def _read_cameras_json(root: Path) -> tuple[list[Frame], dict]:
    path = root / "cameras.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SceneError(f"{path}: not readable JSON ({exc})") from None
    frames_data = data.get("frames") if isinstance(data, dict) else None
    if not isinstance(frames_data, list):
        raise SceneError(f"{path}: no 'frames' list; is this a vggt3d output folder?")
    frames = []
    for i, r in enumerate(frames_data):
        if not isinstance(r, dict):
            raise SceneError(f"{path}: frame {i} is not an object")
        try:
            width, height = int(r["width"]), int(r["height"])
            image = str(r["image"])
        except (KeyError, TypeError, ValueError):
            raise SceneError(f"{path}: frame {i} lacks image/width/height") from None
        if not (0 < width <= 100_000 and 0 < height <= 100_000):
            raise SceneError(f"{path}: frame {i} has an implausible size {width}x{height}")
        K = _matrix(r.get("K"), (3, 3), f"frame {i} K", path)
        cam = _matrix(r.get("cam_from_world"), (4, 4), f"frame {i} cam_from_world", path)
        image_path = _inside(root, image, f"{path} frame {i}")
        frames.append(Frame(Path(image).name, width, height, K, cam, image_path if image_path.is_file() else None))
    return frames, data.get("model") if isinstance(data.get("model"), dict) else {}


def _pixel_grid(width: int, height: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres ``(u [h, w], v [h, w])`` sampled every ``stride`` pixels (centres at integers)."""
    u = np.arange(stride // 2, width, stride, dtype=np.float64)
    v = np.arange(stride // 2, height, stride, dtype=np.float64)
    return np.meshgrid(u, v)


def _unproject(depth: np.ndarray, u: np.ndarray, v: np.ndarray, frame: Frame) -> np.ndarray:
    """World points ``[..., 3]`` of pixels ``(u, v)`` at camera-z ``depth`` (OpenCV axes)."""
    K = frame.K
    x = (u - K[0, 2]) / K[0, 0] * depth
    y = (v - K[1, 2]) / K[1, 1] * depth
    cam = np.stack([x, y, depth], axis=-1)
    wfc = frame.world_from_cam
    return cam @ wfc[:3, :3].T + wfc[:3, 3]


def _depth_files(root: Path, frames: list[Frame], kind: str) -> list[Path | None]:
    """Per frame the ``.npy`` of ``depth/`` or ``confidence/`` (from its ``index.json``, else by name)."""
    folder = root / kind
    found: list[Path | None] = [None] * len(frames)
    index = folder / "index.json"
    entries = []
    if index.is_file():
        try:
            entries = json.loads(index.read_text(encoding="utf-8")).get("frames", [])
        except (OSError, ValueError, AttributeError):
            raise SceneError(f"{index}: not a readable index; re-export the folder") from None
    for i, frame in enumerate(frames):
        rel = entries[i].get("npy") if i < len(entries) and isinstance(entries[i], dict) else None
        path = _inside(root, str(rel), str(index)) if rel else folder / (os.path.splitext(frame.name)[0] + ".npy")
        found[i] = path if path.is_file() else None
    return found


def _depth_points(root: Path, frames: list[Frame], max_points: int) -> tuple[PointSet | None, list]:
    """Points from every frame's depth map (strided to about ``max_points``); also the depth maps (memory-mapped)."""
    depth_paths = _depth_files(root, frames, "depth")
    if not any(depth_paths):
        return None, [None] * len(frames)
    conf_paths = _depth_files(root, frames, "confidence")
    total = sum(f.width * f.height for f, p in zip(frames, depth_paths) if p is not None)
    stride = max(1, int(np.ceil(np.sqrt(total / max(max_points, 1)))))
    from PIL import Image, ImageOps

    pts, cols, confs, idx, depths = [], [], [], [], []
    for i, (frame, dpath, cpath) in enumerate(zip(frames, depth_paths, conf_paths)):
        if dpath is None:
            depths.append(None)
            continue
        shape = (frame.height, frame.width)
        depth_map = _load_npy(dpath, shape, "a depth map")
        depths.append(depth_map)
        d = np.asarray(depth_map[stride // 2::stride, stride // 2::stride], dtype=np.float64)
        u, v = _pixel_grid(frame.width, frame.height, stride)
        conf = (np.asarray(_load_npy(cpath, shape, "a confidence map")[stride // 2::stride, stride // 2::stride],
                           dtype=np.float32) if cpath is not None else np.ones_like(d, dtype=np.float32))
        ok = np.isfinite(d) & (d > 0) & np.isfinite(conf)
        color = np.full(d.shape + (3,), 160, np.uint8)
        if frame.image_path is not None:
            try:
                with Image.open(frame.image_path) as image:
                    rgb = np.asarray(ImageOps.exif_transpose(image).convert("RGB"), dtype=np.uint8)
                if rgb.shape[:2] == shape:
                    color = rgb[stride // 2::stride, stride // 2::stride]
            except (OSError, ValueError) as exc:
                log.warning("cannot read %s (%s); its points are grey", frame.image_path, exc)
        pts.append(_unproject(d[ok], u[ok], v[ok], frame).astype(np.float32))
        cols.append(color[ok])
        confs.append(conf[ok])
        idx.append(np.full(int(ok.sum()), i, np.int32))
    if not pts:
        return None, depths
    return PointSet(np.concatenate(pts), np.concatenate(cols), np.concatenate(confs), np.concatenate(idx)), depths


def _lift_tracks(path: Path, frames: list[Frame], depths: list) -> TrackLines | None:
    """``tracks.npz`` pixels -> world polylines through each frame's depth (NaN where invisible or unknown)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            uv = np.asarray(data["tracks"], dtype=np.float64)
            vis = np.asarray(data["visibility"], dtype=np.float64)
    except (OSError, ValueError, KeyError) as exc:
        raise SceneError(f"{path}: not a readable tracks file ({exc}); re-export it or remove it") from None
    S = len(frames)
    if uv.ndim != 3 or uv.shape[0] != S or uv.shape[2] != 2 or vis.shape != uv.shape[:2]:
        raise SceneError(f"{path}: tracks have shape {uv.shape}, expected [{S}, N, 2] for {S} frames")
    lines = lift_tracks(uv, vis, frames, depths)
    if lines is None:
        log.info("%s: no track position has a depth; tracks are not shown", path)
    return lines


def lift_tracks(uv: np.ndarray, vis: np.ndarray, frames: list[Frame], depths: list) -> TrackLines | None:
    """Pixels ``uv [S, N, 2]`` with visibility ``[S, N]`` -> world polylines through each frame's depth
    ``[height, width]`` (or None); None if no position has a depth. Convention: pixel centres at integers."""
    out = np.full(uv.shape[:2] + (3,), np.nan, np.float32)
    for s, (frame, depth) in enumerate(zip(frames, depths)):
        if depth is None:
            continue
        u, v = uv[s, :, 0], uv[s, :, 1]
        ok = np.isfinite(u) & np.isfinite(v) & (vis[s] > 0.5)
        ok &= (u > -0.5) & (u < frame.width - 0.5) & (v > -0.5) & (v < frame.height - 0.5)
        ui = np.clip(np.round(u[ok]).astype(np.int64), 0, frame.width - 1)
        vi = np.clip(np.round(v[ok]).astype(np.int64), 0, frame.height - 1)
        d = np.asarray(depth[vi, ui], dtype=np.float64)
        good = np.isfinite(d) & (d > 0)
        rows = np.flatnonzero(ok)[good]
        out[s, rows] = _unproject(d[good], u[rows], v[rows], frame)
    return TrackLines(out) if np.isfinite(out).any() else None


def _read_ply(path: Path) -> PointSet:
    import trimesh

    try:
        geometry = trimesh.load(str(path), file_type="ply", process=False)
    except Exception as exc:  # noqa: BLE001 - trimesh raises many types on malformed files
        raise SceneError(f"{path}: not a readable PLY file ({type(exc).__name__}: {exc})") from None
    vertices = np.asarray(getattr(geometry, "vertices", np.zeros((0, 3))), dtype=np.float32).reshape(-1, 3)
    colors = None
    if isinstance(geometry, trimesh.PointCloud):
        colors = geometry.colors
    elif hasattr(geometry, "visual") and getattr(geometry.visual, "kind", None) == "vertex":
        colors = geometry.visual.vertex_colors
    colors = (np.asarray(colors, dtype=np.uint8)[:, :3] if colors is not None and len(colors) == len(vertices)
              else np.full((len(vertices), 3), 160, np.uint8))
    ok = np.isfinite(vertices).all(1)
    return PointSet(vertices[ok], colors[ok])


def _load_vggt3d(root: Path, max_points: int) -> Scene:
    frames, model = _read_cameras_json(root)
    scene = Scene(root, "vggt3d", frames)
    depth_set, depths = _depth_points(root, frames, max_points)
    if depth_set is not None:
        scene.point_sets["depth"] = depth_set
    if (root / "points.ply").is_file():
        name = "pointmap" if model.get("points_from") == "pointmap" else "points.ply"
        scene.point_sets[name] = _read_ply(root / "points.ply")
    if (root / "tracks.npz").is_file():
        if any(d is not None for d in depths):
            scene.tracks = _lift_tracks(root / "tracks.npz", frames, depths)
        else:
            log.info("%s has tracks.npz but no depth/; tracks need depth maps to be placed in 3D", root)
    return scene


# -------------------------------------------------------------------------------------------------- COLMAP
def _colmap_model_dir(root: Path) -> Path | None:
    for candidate in (root, root / "sparse" / "0", root / "sparse", root / "colmap" / "sparse" / "0"):
        if all((candidate / f"{n}.bin").is_file() for n in _COLMAP_FILES) or \
                all((candidate / f"{n}.txt").is_file() for n in _COLMAP_FILES):
            return candidate
    return None


def _load_colmap(model_dir: Path, root: Path) -> Scene:
    import pycolmap

    try:
        rec = pycolmap.Reconstruction(str(model_dir))
    except Exception as exc:  # noqa: BLE001 - pycolmap raises RuntimeError/ValueError on broken models
        raise SceneError(f"{model_dir}: not a readable COLMAP model ({exc})") from None
    image_dirs = [d / "images" for d in (root, model_dir, model_dir.parent, model_dir.parent.parent,
                                         model_dir.parent.parent.parent)]
    frames = []
    for image_id in sorted(rec.images):
        image = rec.images[image_id]
        if not image.has_pose:
            continue
        camera = image.camera
        K = np.asarray(camera.calibration_matrix(), dtype=np.float64)
        K[0, 2] -= 0.5  # COLMAP: pixel centres at half-integers
        K[1, 2] -= 0.5
        cam = np.eye(4)
        cam[:3, :] = np.asarray(image.cam_from_world().matrix(), dtype=np.float64)
        path = None
        for d in image_dirs:
            candidate = (d / image.name).resolve()
            if candidate.is_file() and candidate.is_relative_to(d.resolve()):
                path = candidate
                break
        frames.append(Frame(Path(image.name).name, int(camera.width), int(camera.height), K, cam, path))
    ids = sorted(rec.points3D)
    if ids:
        xyz = np.array([rec.points3D[i].xyz for i in ids], dtype=np.float32)
        rgb = np.array([rec.points3D[i].color for i in ids], dtype=np.uint8)
        err = np.array([rec.points3D[i].error for i in ids], dtype=np.float64)
        conf = (1.0 / (1.0 + np.where(np.isfinite(err) & (err >= 0), err, 1e6))).astype(np.float32)
        points = PointSet(xyz, rgb, conf)
    else:
        points = PointSet(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8))
    return Scene(root, "colmap", frames, {"colmap": points})


def load_scene(path: str | os.PathLike, max_points: int = DEFAULT_MAX_POINTS) -> Scene:
    """Read a vggt3d output folder, a COLMAP model folder or a ``.ply`` file (see the module docstring)."""
    root = Path(path)
    if not root.exists():
        raise SceneError(f"{root} does not exist; give a vggt3d output folder, a COLMAP model folder or a .ply file")
    if max_points < 1:
        raise SceneError(f"max_points must be >= 1, got {max_points}")
    if root.is_file():
        if root.suffix.lower() != ".ply":
            raise SceneError(f"{root} is a file but not a .ply; give a vggt3d output folder, a COLMAP model folder "
                             "or a .ply file")
        return Scene(root, "ply", [], {"ply": _read_ply(root)})
    cameras = root / "cameras.json"
    if cameras.is_file():
        try:
            fmt = json.loads(cameras.read_text(encoding="utf-8")).get("format")
        except (OSError, ValueError, AttributeError):
            fmt = None
        if fmt == "vggt3d.cameras":
            return _load_vggt3d(root, max_points)
    model_dir = _colmap_model_dir(root)
    if model_dir is not None:
        return _load_colmap(model_dir, root)
    raise SceneError(f"{root} is not a vggt3d output folder (no cameras.json of format vggt3d.cameras), a COLMAP "
                     "model folder (cameras/images/points3D .bin or .txt) or a .ply file")


def scene_from_reconstruction(rec: Reconstruction) -> Scene:
    """The scene of an in-memory reconstruction (``reconstruct --html``): the depth maps at model resolution
    unprojected (set ``depth``), the saved cloud as ``pointmap`` when it came from the point map, and the tracks."""
    frames = [Frame(n, int(w), int(h), rec.intrinsics[i], rec.cam_from_world[i])
              for i, (n, (w, h)) in enumerate(zip(rec.image_names, rec.image_sizes))]
    source = Path(rec.sources[0]).parent if rec.sources and rec.sources[0] != "<memory>" else Path("reconstruction")
    scene = Scene(source, "vggt3d", frames)
    S, H, W = rec.depth.shape
    u, v = _pixel_grid(W, H, 1)
    pts, cols, confs, idx = [], [], [], []
    for i in range(S):
        model_frame = Frame("", W, H, rec.model_intrinsics[i], rec.cam_from_world[i])
        d = rec.depth[i].astype(np.float64)
        ok = np.isfinite(d) & (d > 0)
        pts.append(_unproject(d[ok], u[ok], v[ok], model_frame).astype(np.float32))
        cols.append(rec.model_colors[i][ok])
        confs.append(rec.depth_conf[i][ok].astype(np.float32))
        idx.append(np.full(int(ok.sum()), i, np.int32))
    scene.point_sets["depth"] = PointSet(np.concatenate(pts), np.concatenate(cols), np.concatenate(confs),
                                         np.concatenate(idx))
    if rec.info.get("points_from") == "pointmap":
        scene.point_sets["pointmap"] = PointSet(rec.points, rec.colors, rec.point_conf, rec.point_frame)
    if rec.tracks is not None:
        depths = [rec.depth_at_original(i) for i in range(S)]
        scene.tracks = lift_tracks(rec.tracks.uv, rec.tracks.visibility, frames, depths)
    return scene
