"""COLMAP scenes: a sparse model (binary or text, read with pycolmap) plus its images -> samples.

Layout (``root`` is the COLMAP project or dense workspace)::

    root/images/...                       the images (``images_dir`` overrides)
    root/sparse/0/ | root/sparse/ | root/  cameras, images, points3D (.bin or .txt; ``model_dir`` overrides)
    root/stereo/depth_maps/NAME.geometric.bin   optional dense depth (a dense workspace)

Depth: COLMAP's dense depth maps when present (``depth="auto"`` or ``"dense"``),
otherwise sparse depth from projecting each image's observed 3D points to the
nearest pixel (``point_masks`` then mark only those pixels).

Cameras: SIMPLE_PINHOLE, PINHOLE, and any perspective model whose distortion
parameters are all zero are used as they are. Distorted models (SIMPLE_RADIAL,
RADIAL, OPENCV, FULL_OPENCV, the fisheye models, ...) are undistorted to a
pinhole camera with ``pycolmap.undistort_image`` when ``undistort=True`` (the
default; images are resampled, the field of view may shrink), or refused with
``undistort=False``. EQUIRECTANGULAR (spherical) cameras are always refused.

Convention: COLMAP puts the centre of the top-left pixel at (0.5, 0.5); we put
pixel centres at integers, so ``cx = cx_colmap - 0.5``, ``cy = cy_colmap - 0.5``.
Poses are COLMAP's ``cam_from_world`` (OpenCV axes: x right, y down, z forward).
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from .base import SceneListDataset, path_inside
from .views import View, load_rgb

__all__ = ["ColmapDataset", "ColmapError", "ColmapScene", "read_colmap_depth", "write_colmap_depth"]

logger = logging.getLogger(__name__)

DepthSource = Literal["auto", "dense", "sparse"]


class ColmapError(ValueError):
    """A COLMAP model or workspace cannot be used (layout, camera model, sizes)."""


def read_colmap_depth(path: str | os.PathLike) -> np.ndarray:
    """Read a COLMAP dense map (``*.geometric.bin`` / ``*.photometric.bin``) as ``[H, W]`` float32.

    Convention: a text header ``width&height&channels&`` then float32 values,
    row-major per channel; depth is camera z, 0 (or negative) = invalid.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"COLMAP depth map not found: {path}")
    data = path.read_bytes()
    header, fields = b"", 0
    for pos, byte in enumerate(data[:64]):
        if byte == ord("&"):
            fields += 1
            if fields == 3:
                header, data = data[:pos], data[pos + 1:]
                break
    try:
        width, height, channels = (int(x) for x in header.split(b"&"))
        values = np.frombuffer(data, dtype="<f4")
        array = values.reshape(channels, height, width)
    except ValueError as exc:
        raise ColmapError(f"{path}: not a COLMAP depth map ({exc})") from None
    depth = array[0].astype(np.float32)
    depth[~np.isfinite(depth) | (depth < 0)] = 0.0
    return depth


def write_colmap_depth(path: str | os.PathLike, depth: np.ndarray) -> None:
    """Write ``[H, W]`` float depth in COLMAP's dense map format (inverse of :func:`read_colmap_depth`)."""
    depth = np.asarray(depth, dtype="<f4")
    height, width = depth.shape
    with open(path, "wb") as f:
        f.write(f"{width}&{height}&1&".encode())
        f.write(np.ascontiguousarray(depth).tobytes())


def _find_model(root: Path) -> Path:
    for candidate in (root / "sparse" / "0", root / "sparse", root):
        if (candidate / "cameras.bin").is_file() or (candidate / "cameras.txt").is_file():
            return candidate
    raise FileNotFoundError(f"no COLMAP model (cameras.bin/.txt) in {root}/sparse/0, {root}/sparse or {root}; "
                            "pass model_dir")


def _check_model_files(model_dir: Path) -> None:
    """One clear line for a model whose files are missing or empty (pycolmap's own messages are cryptic)."""
    for stem in ("cameras", "images", "points3D"):
        candidates = [model_dir / f"{stem}{ext}" for ext in (".bin", ".txt")]
        present = [p for p in candidates if p.is_file()]
        if not present:
            raise ColmapError(f"{model_dir}: {stem}.bin / {stem}.txt missing; a COLMAP model needs cameras, "
                              "images and points3D")
        if any(p.suffix == ".bin" and p.stat().st_size == 0 for p in present):
            raise ColmapError(f"{model_dir / (stem + '.bin')} is empty; re-export the COLMAP model")
    for stem in ("cameras", "images", "points3D", "rigs", "frames"):
        if (model_dir / f"{stem}.bin").is_file():
            _check_binary_file(model_dir / f"{stem}.bin", stem)


#: smallest record of each binary model file (bytes), to bound a record count read from a corrupt header
_MIN_RECORD = {"cameras": 24, "images": 73, "points3D": 51, "rigs": 8, "frames": 68}


def _camera_param_counts() -> dict[int, int]:
    import pycolmap

    counts = {}
    for name, model_id in pycolmap.CameraModelId.__members__.items():
        if name != "INVALID":
            counts[int(model_id)] = len(pycolmap.Camera.create_from_model_id(1, model_id, 1.0, 1, 1).params)
    return counts


def _check_binary_file(path: Path, kind: str) -> None:
    """Walk the record structure of a COLMAP ``.bin`` file; raise :class:`ColmapError` if it is truncated/corrupt.

    pycolmap trusts the counts inside the file: a truncated or corrupt file can make
    it allocate without bound, hang or abort the process, so the layout is checked
    first (rigs with several sensors only up to their first extra sensor).
    """
    size = path.stat().st_size

    def corrupt(what: str) -> ColmapError:
        return ColmapError(f"{path} is truncated or corrupt ({what}, file of {size} bytes); re-export the COLMAP "
                           "model")

    if size < 8:
        raise corrupt("no record count")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        count = struct.unpack_from("<Q", data, 0)[0]
        if count * _MIN_RECORD[kind] > size - 8:
            raise corrupt(f"{count} records announced")
        params = _camera_param_counts() if kind == "cameras" else {}
        pos = 8
        for index in range(count):
            if kind == "cameras":
                fixed = 24
                if pos + fixed > size:
                    raise corrupt(f"camera {index} ends early")
                model_id = struct.unpack_from("<i", data, pos + 4)[0]
                if model_id not in params:
                    raise corrupt(f"camera {index} has unknown model id {model_id}")
                pos += fixed + 8 * params[model_id]
            elif kind == "images":
                pos += 64  # image_id, qvec, tvec, camera_id
                end = data.find(b"\0", pos, min(size, pos + 65536)) if pos <= size else -1
                if end < 0:
                    raise corrupt(f"image {index} has no complete name")
                pos = end + 1
                if pos + 8 > size:
                    raise corrupt(f"image {index} ends early")
                points = struct.unpack_from("<Q", data, pos)[0]
                if points > (size - pos - 8) // 24:
                    raise corrupt(f"image {index} announces {points} keypoints")
                pos += 8 + 24 * points
            elif kind == "frames":
                pos += 64  # frame_id, rig_id, rig_from_world (quaternion, translation)
                if pos + 4 > size:
                    raise corrupt(f"frame {index} ends early")
                ids = struct.unpack_from("<I", data, pos)[0]
                pos += 4 + 16 * ids  # (sensor type, sensor id, data id) each
            elif kind == "rigs":
                if pos + 8 > size:
                    raise corrupt(f"rig {index} ends early")
                sensors = struct.unpack_from("<I", data, pos + 4)[0]
                pos += 8 + (8 if sensors else 0)  # rig_id, count, reference sensor (type, id)
                if sensors > 1:  # extra sensors carry optional poses: trust pycolmap past this point
                    return
            else:  # points3D
                pos += 43  # point3D_id, xyz, rgb, error
                if pos + 8 > size:
                    raise corrupt(f"point {index} ends early")
                length = struct.unpack_from("<Q", data, pos)[0]
                if length > (size - pos - 8) // 8:
                    raise corrupt(f"point {index} announces a track of {length}")
                pos += 8 + 8 * length
            if pos > size:
                raise corrupt(f"record {index} ends past the end")
        if pos != size:
            raise corrupt(f"{size - pos} bytes after the last of {count} records")


def _pinhole_intrinsics(camera) -> np.ndarray:
    """Our ``K [3, 3]`` (pixel centres at integers) of an undistorted pycolmap camera."""
    return np.array([[camera.focal_length_x, 0.0, camera.principal_point_x - 0.5],
                     [0.0, camera.focal_length_y, camera.principal_point_y - 0.5],
                     [0.0, 0.0, 1.0]])


class ColmapScene:
    """One COLMAP model with its images (and dense depth maps when present).

    Args:
        root: the project / dense workspace folder.
        images_dir: folder of the images (default ``root/images``).
        model_dir: folder of the model (default: ``sparse/0``, ``sparse`` or ``root``).
        depth_dir: dense depth maps (default ``root/stereo/depth_maps`` if it exists).
        depth: ``"auto"`` (dense if present, else sparse), ``"dense"`` or ``"sparse"``.
        undistort: undistort distorted camera models (else refuse them).
        dense_type: ``"geometric"`` or ``"photometric"`` depth maps.
    """

    def __init__(self, root: str | os.PathLike, images_dir: str | os.PathLike | None = None,
                 model_dir: str | os.PathLike | None = None, depth_dir: str | os.PathLike | None = None,
                 depth: DepthSource = "auto", undistort: bool = True, dense_type: str = "geometric") -> None:
        import pycolmap

        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"COLMAP folder not found: {self.root}")
        if depth not in ("auto", "dense", "sparse"):
            raise ValueError(f"depth must be 'auto', 'dense' or 'sparse', got {depth!r}")
        self.model_dir = Path(model_dir) if model_dir is not None else _find_model(self.root)
        self.images_dir = Path(images_dir) if images_dir is not None else self.root / "images"
        if not self.images_dir.is_dir():
            raise FileNotFoundError(f"COLMAP images folder not found: {self.images_dir} (pass images_dir)")
        default_depth = self.root / "stereo" / "depth_maps"
        if depth_dir is not None:
            self.depth_dir: Path | None = Path(depth_dir)
        else:
            self.depth_dir = default_depth if default_depth.is_dir() else None
        if depth == "dense" and self.depth_dir is None:
            raise FileNotFoundError(f"depth='dense' but no dense depth maps in {default_depth} (pass depth_dir)")
        self.use_dense = depth != "sparse" and self.depth_dir is not None
        self.dense_type = dense_type
        _check_model_files(self.model_dir)
        try:
            reconstruction = pycolmap.Reconstruction(str(self.model_dir))
            images = sorted((im for im in reconstruction.images.values() if im.has_pose), key=lambda im: im.name)
        except Exception as exc:  # pycolmap raises plain RuntimeError/ValueError/IndexError (and MemoryError)
            raise ColmapError(f"cannot read the COLMAP model in {self.model_dir} (a truncated or corrupt "
                              f"cameras/images/points3D file?): {str(exc).splitlines()[0] if str(exc) else exc!r}"
                              ) from None
        if not images:
            raise ColmapError(f"the COLMAP model in {self.model_dir} has no registered images")
        self._options = pycolmap.UndistortCameraOptions()
        self._cameras: dict[int, object] = {}  # camera_id -> distorted pycolmap camera (None if pinhole)
        pinholes: dict[int, object] = {}
        for camera_id, camera in reconstruction.cameras.items():
            name = camera.model.name
            if name == "EQUIRECTANGULAR" or not camera.is_perspective():
                raise ColmapError(f"{self.model_dir}: camera {camera_id} uses the {name} model, which is not a "
                                  "perspective camera; only pinhole-like models are supported")
            if camera.is_undistorted():
                pinholes[camera_id], self._cameras[camera_id] = camera, None
            elif undistort:
                pinholes[camera_id] = pycolmap.undistort_camera(self._options, camera)
                self._cameras[camera_id] = camera
            else:
                raise ColmapError(f"{self.model_dir}: camera {camera_id} uses the distorted {name} model; pass "
                                  "undistort=True, or undistort the images with `colmap image_undistorter` and "
                                  "point at its output")
        self.names = [im.name for im in images]
        # images.bin/.txt is untrusted: a name must stay inside the images folder
        self.image_paths = [path_inside(self.images_dir, n, f"{self.model_dir}: image {im.image_id}")
                            for n, im in zip(self.names, images)]
        self.camera_ids = [im.camera_id for im in images]
        self.cam_from_world = np.stack([np.asarray(im.cam_from_world().matrix(), np.float64) for im in images])
        self.intrinsics = np.stack([_pinhole_intrinsics(pinholes[c]) for c in self.camera_ids])
        self.sizes = np.array([[pinholes[c].height, pinholes[c].width] for c in self.camera_ids], dtype=np.int64)
        self._source_sizes = {c: (cam.height, cam.width) for c, cam in reconstruction.cameras.items()}
        self.points = [np.array([reconstruction.points3D[p.point3D_id].xyz for p in im.get_observation_points2D()],
                                dtype=np.float64).reshape(-1, 3) for im in images]  # observed 3D points per image

    def __len__(self) -> int:
        return len(self.names)

    @property
    def name(self) -> str:
        return self.root.name

    def load_image(self, i: int) -> np.ndarray:
        """Image ``i`` as ``[H, W, 3]`` uint8, undistorted when its camera is distorted."""
        import pycolmap

        path = self.image_paths[i]
        image = load_rgb(path)
        camera_id = self.camera_ids[i]
        expected = self._source_sizes[camera_id]
        if image.shape[:2] != tuple(expected):
            raise ColmapError(f"{path}: image is {image.shape[1]}x{image.shape[0]} (WxH) but COLMAP camera "
                              f"{camera_id} is {expected[1]}x{expected[0]}")
        distorted = self._cameras[camera_id]
        if distorted is not None:
            bitmap, _ = pycolmap.undistort_image(self._options, pycolmap.Bitmap.from_array(image), distorted)
            image = np.ascontiguousarray(bitmap.to_array()[..., :3], dtype=np.uint8)
        return image

    def load_depth(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``(depth [H, W] float32, mask or None)``: dense map if used, else sparse projected points."""
        height, width = (int(s) for s in self.sizes[i])
        if self.use_dense:
            path = path_inside(self.depth_dir, f"{self.names[i]}.{self.dense_type}.bin", f"{self.model_dir}: image "
                               f"{self.names[i]!r} depth map")
            depth = read_colmap_depth(path)
            if depth.shape != (height, width):  # maps computed at a lower max_image_size
                rows = np.minimum(((np.arange(height) + 0.5) * depth.shape[0] / height).astype(int), depth.shape[0] - 1)
                cols = np.minimum(((np.arange(width) + 0.5) * depth.shape[1] / width).astype(int), depth.shape[1] - 1)
                depth = depth[np.ix_(rows, cols)]
            return depth, None
        depth = np.zeros((height, width), dtype=np.float32)
        points = self.points[i]
        if len(points):
            cam = points @ self.cam_from_world[i, :, :3].T + self.cam_from_world[i, :, 3]  # [P, 3]
            k = self.intrinsics[i]
            front = cam[:, 2] > 1e-9
            cam = cam[front]
            u = np.round(k[0, 0] * cam[:, 0] / cam[:, 2] + k[0, 2]).astype(np.int64)
            v = np.round(k[1, 1] * cam[:, 1] / cam[:, 2] + k[1, 2]).astype(np.int64)
            inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
            u, v, z = u[inside], v[inside], cam[inside, 2].astype(np.float32)
            order = np.argsort(-z)  # write far to near: the nearest point wins a shared pixel
            depth[v[order], u[order]] = z[order]
        return depth, depth > 0

    def load_view(self, i: int) -> View:
        """Image ``i`` (undistorted if needed) with its depth, mask and pinhole camera (centres at integers)."""
        image = self.load_image(i)
        if image.shape[:2] != tuple(self.sizes[i]):
            raise ColmapError(f"{self.image_paths[i]}: undistorted image is {list(image.shape[:2])}, "
                              f"camera says {list(self.sizes[i])}")
        depth, mask = self.load_depth(i)
        return View(image=image, depth=depth, intrinsics=self.intrinsics[i], cam_from_world=self.cam_from_world[i],
                    frame_id=i, mask=mask)


class ColmapDataset(SceneListDataset):
    """COLMAP scenes as a dataset: one scene per COLMAP folder.

    Args:
        roots: a COLMAP project/workspace folder or a list of them.
        num_frames, image_size, num_tracks, min_overlap, seed: see
            :class:`~vggt3d.data.base.MultiViewDataset`.
        images_dir, model_dir, depth_dir, depth, undistort, dense_type: see :class:`ColmapScene`
            (the folders only with a single root).
    """

    name = "colmap"

    def __init__(self, roots: str | os.PathLike | Sequence[str | os.PathLike], num_frames: int | None = None,
                 image_size: tuple[int, int] | None = None, num_tracks: int = 0, min_overlap: float = 0.2,
                 seed: int = 0, images_dir: str | os.PathLike | None = None,
                 model_dir: str | os.PathLike | None = None, depth_dir: str | os.PathLike | None = None,
                 depth: DepthSource = "auto", undistort: bool = True, dense_type: str = "geometric") -> None:
        super().__init__(num_frames, image_size, num_tracks, min_overlap, seed)
        roots = [roots] if isinstance(roots, (str, os.PathLike)) else list(roots)
        if not roots:
            raise ValueError("ColmapDataset needs at least one root")
        if len(roots) > 1 and any(p is not None for p in (images_dir, model_dir, depth_dir)):
            raise ValueError("images_dir, model_dir and depth_dir need a single root")
        self.scenes = [ColmapScene(r, images_dir, model_dir, depth_dir, depth, undistort, dense_type) for r in roots]

    def frame_points(self, index: int) -> list[np.ndarray]:
        """Up to 64 observed sparse 3D points per image."""
        out = []
        for points in self.scenes[index].points:
            step = max(1, len(points) // 64)
            out.append(points[::step][:64])
        if any(len(p) == 0 for p in out):
            return super().frame_points(index)
        return out
