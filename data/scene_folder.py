"""The scene-folder format: our native on-disk multi-view scene (reader, writer, dataset).

Layout of a scene folder ``root/``::

    cameras.json          per frame: image file, width, height, K, cam_from_world (+ depth, mask files)
    images/000000.png     the frames (any format Pillow reads; the writer uses PNG by default)
    depths/000000.npy     optional float32 [H, W] z-depth, 0 = invalid (or 16-bit PNG, see below)
    masks/000000.png      optional 8-bit validity masks (> 127 = valid)

``cameras.json``::

    {"format": "vggt3d-scene-folder", "version": 1,
     "conventions": {...},                 # the conventions below, spelled out
     "depth_format": "npy" | "png16" | null,
     "depth_scale": float | null,          # png16 only: depth = png_value * depth_scale
     "frames": [{"image": "images/000000.png", "width": W, "height": H,
                 "K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
                 "cam_from_world": [[r00, r01, r02, t0], [...], [...]],
                 "depth": "depths/000000.npy" | null, "mask": "masks/000000.png" | null}, ...]}

Convention: ``cam_from_world = [R | t]`` with ``X_cam = R X_world + t``, OpenCV
axes (x right, y down, z forward); ``K`` in pixels with pixel centres at
integer coordinates; depth is camera z (not ray length), 0 = invalid.
Numbers are written with Python's shortest round-trip repr, so cameras, PNG
images and ``.npy`` depths round-trip exactly (16-bit PNG depth is quantised
to ``depth_scale``). Every file is written to a temporary name and renamed;
``cameras.json`` is written last, so a folder without it is incomplete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
from PIL import Image

from vggt3d.io.atomic import atomic_write

from .base import SceneListDataset, path_inside
from .views import View, load_depth_png16, load_mask, load_rgb, save_depth_png16

__all__ = ["CAMERAS_FILE", "SceneFolder", "SceneFolderDataset", "read_scene_folder", "write_scene_folder"]

CAMERAS_FILE = "cameras.json"
FORMAT = "vggt3d-scene-folder"
VERSION = 1
CONVENTIONS = {
    "cam_from_world": "X_cam = R @ X_world + t; OpenCV camera axes: x right, y down, z forward",
    "K": "pixels; pixel centres at integer coordinates (u column, v row); zero skew",
    "depth": "camera z (not ray length); 0 = invalid",
    "masks": "8-bit images, value > 127 = valid pixel",
}
DepthFormat = Literal["npy", "png16"]


class SceneFolderError(ValueError):
    """A scene folder is missing files or holds malformed ``cameras.json`` entries."""


def _as_array(value: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    array = value.detach().cpu().double().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, np.float64)
    if array.ndim != len(shape) or any(s not in (-1, a) for s, a in zip(shape, array.shape)):
        raise ValueError(f"{name} must have shape {[('S' if s == -1 else s) for s in shape]}, got {list(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or inf")
    return array


def _image_array(image: Any, index: int) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"images[{index}] must be a PIL image or a uint8 [H, W, 3] array, "
                         f"got {array.dtype} {list(array.shape)}")
    return array


def write_scene_folder(root: str | os.PathLike, images: Sequence[Any], cam_from_world: Any, intrinsics: Any,
                       depths: Sequence[np.ndarray] | None = None, image_names: Sequence[str] | None = None,
                       masks: Sequence[np.ndarray] | None = None, depth_format: DepthFormat = "npy",
                       depth_scale: float | None = None, overwrite: bool = False) -> Path:
    """Write a scene folder (layout in the module docstring) and return its root.

    Args:
        root: the folder; created if needed. An existing ``cameras.json`` there is an
            error unless ``overwrite``.
        images: S PIL images or uint8 ``[H, W, 3]`` arrays (sizes may differ per frame).
        cam_from_world: ``[S, 3, 4]`` (or ``[S, 4, 4]``) numpy array or tensor, OpenCV axes
            (x right, y down, z forward).
        intrinsics: ``[S, 3, 3]`` pixels, pixel centres at integers.
        depths: optional S float ``[H, W]`` z-depth arrays (0 = invalid).
        image_names: optional S file names inside ``images/`` (default ``000000.png``...);
            the extension picks the format (use PNG for an exact round trip).
        masks: optional S bool ``[H, W]`` arrays (True = valid).
        depth_format: ``"npy"`` (float32, exact) or ``"png16"`` (16-bit, ``depth_scale``).
        depth_scale: png16 only: metres (scene units) per PNG step; default fits the
            largest depth into 65000 steps.
        overwrite: replace an existing scene folder's files.

    Raises:
        ValueError: shapes, dtypes or names that do not fit, naming the argument.
        FileExistsError: ``root`` already holds a scene and ``overwrite`` is False.
    """
    root = Path(root)
    count = len(images)
    if count == 0:
        raise ValueError("images is empty: a scene folder needs at least one frame")
    extrinsics = _as_array(cam_from_world, "cam_from_world", (-1, -1, 4))
    if extrinsics.shape[1] not in (3, 4) or len(extrinsics) != count:
        raise ValueError(f"cam_from_world must be [S={count}, 3, 4] (or [S, 4, 4]), got {list(extrinsics.shape)}")
    extrinsics = extrinsics[:, :3]
    ks = _as_array(intrinsics, "intrinsics", (count, 3, 3))
    if depth_format not in ("npy", "png16"):
        raise ValueError(f"depth_format must be 'npy' or 'png16', got {depth_format!r}")
    for name, seq in (("depths", depths), ("masks", masks), ("image_names", image_names)):
        if seq is not None and len(seq) != count:
            raise ValueError(f"{name} has {len(seq)} entries for {count} images")
    names = list(image_names) if image_names is not None else [f"{i:06d}.png" for i in range(count)]
    for name in names:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"image_names entries must be plain file names, got {name!r}")
    if len(set(names)) != count:
        raise ValueError("image_names must be unique")
    stems = [Path(n).stem for n in names]
    if depths is not None or masks is not None:
        if len(set(stems)) != count:
            raise ValueError("image_names must have unique stems (depth and mask files are named after them)")
    pixels = [_image_array(im, i) for i, im in enumerate(images)]
    depth_arrays = None
    if depths is not None:
        depth_arrays = []
        for i, (d, im) in enumerate(zip(depths, pixels)):
            d = d.detach().cpu().numpy() if isinstance(d, torch.Tensor) else np.asarray(d)
            if d.shape != im.shape[:2]:
                raise ValueError(f"depths[{i}] has shape {list(d.shape)}, image {i} is {list(im.shape[:2])}")
            d = d.astype(np.float32)
            if not np.isfinite(d).all() or (d < 0).any():
                raise ValueError(f"depths[{i}] must be finite and >= 0 (0 = invalid)")
            depth_arrays.append(d)
        if depth_format == "png16":
            largest = max(float(d.max(initial=0.0)) for d in depth_arrays)
            depth_scale = float(depth_scale) if depth_scale else (largest / 65000.0 if largest > 0 else 1.0)
    mask_arrays = None
    if masks is not None:
        mask_arrays = []
        for i, (m, im) in enumerate(zip(masks, pixels)):
            m = m.detach().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m)
            if m.shape != im.shape[:2]:
                raise ValueError(f"masks[{i}] has shape {list(m.shape)}, image {i} is {list(im.shape[:2])}")
            mask_arrays.append(m.astype(bool))

    cameras_path = root / CAMERAS_FILE
    if cameras_path.exists() and not overwrite:
        raise FileExistsError(f"{cameras_path} exists: {root} already holds a scene (pass overwrite=True)")
    for sub in ("images", *(["depths"] if depth_arrays else []), *(["masks"] if mask_arrays else [])):
        (root / sub).mkdir(parents=True, exist_ok=True)

    frames = []
    for i in range(count):
        image_rel = f"images/{names[i]}"
        atomic_write(root / image_rel, lambda tmp, i=i: Image.fromarray(pixels[i]).save(
            tmp, format=Image.registered_extensions().get(Path(names[i]).suffix.lower(), "PNG")))
        entry: dict[str, Any] = {"image": image_rel, "width": int(pixels[i].shape[1]),
                                 "height": int(pixels[i].shape[0]), "K": ks[i].tolist(),
                                 "cam_from_world": extrinsics[i].tolist(), "depth": None, "mask": None}
        if depth_arrays is not None:
            ext = ".npy" if depth_format == "npy" else ".png"
            entry["depth"] = depth_rel = f"depths/{stems[i]}{ext}"
            if depth_format == "npy":
                atomic_write(root / depth_rel, lambda tmp, i=i: _save_npy(tmp, depth_arrays[i]))
            else:
                atomic_write(root / depth_rel, lambda tmp, i=i: save_depth_png16(tmp, depth_arrays[i], depth_scale))
        if mask_arrays is not None:
            entry["mask"] = mask_rel = f"masks/{stems[i]}.png"
            atomic_write(root / mask_rel, lambda tmp, i=i: Image.fromarray(
                mask_arrays[i].astype(np.uint8) * 255).save(tmp, format="PNG"))
        frames.append(entry)
    document = {"format": FORMAT, "version": VERSION, "conventions": CONVENTIONS,
                "depth_format": depth_format if depth_arrays is not None else None,
                "depth_scale": depth_scale if depth_arrays is not None and depth_format == "png16" else None,
                "frames": frames}
    atomic_write(cameras_path, lambda tmp: Path(tmp).write_text(json.dumps(document, indent=1)))
    return root


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


@dataclass
class SceneFolder:
    """A scene folder read by :func:`read_scene_folder` (cameras in memory, pixels loaded on demand).

    Convention: ``cam_from_world [F, 3, 4]`` float64 (OpenCV axes: x right, y down,
    z forward), ``intrinsics [F, 3, 3]`` float64 pixels with centres at integers,
    ``sizes [F, 2]`` int64 (H, W).
    """

    root: Path
    image_paths: list[Path]
    cam_from_world: np.ndarray
    intrinsics: np.ndarray
    sizes: np.ndarray
    depth_paths: list[Path | None]
    mask_paths: list[Path | None]
    depth_format: str | None = None
    depth_scale: float | None = None

    def __len__(self) -> int:
        return len(self.image_paths)

    @property
    def name(self) -> str:
        return self.root.name

    def load_image(self, i: int) -> np.ndarray:
        """Frame ``i``'s pixels, ``[H, W, 3]`` uint8; the size must match ``cameras.json``."""
        image = load_rgb(self.image_paths[i])
        if image.shape[:2] != tuple(self.sizes[i]):
            raise SceneFolderError(f"{self.image_paths[i]}: image is {image.shape[1]}x{image.shape[0]} (WxH) but "
                                   f"{self.root / CAMERAS_FILE} says {self.sizes[i][1]}x{self.sizes[i][0]}")
        return image

    def load_depth(self, i: int) -> np.ndarray | None:
        """Frame ``i``'s depth ``[H, W]`` float32 (0 = invalid), or None without depth."""
        path = self.depth_paths[i]
        if path is None:
            return None
        if path.suffix == ".npy":
            if not path.is_file():
                raise FileNotFoundError(f"depth file not found: {path}")
            depth = np.load(path, allow_pickle=False).astype(np.float32)
        else:
            depth = load_depth_png16(path, float(self.depth_scale or 1.0))
        if depth.shape != tuple(self.sizes[i]):
            raise SceneFolderError(f"{path}: depth map is {list(depth.shape)}, expected {list(self.sizes[i])} (H, W)")
        return depth

    def load_mask(self, i: int) -> np.ndarray | None:
        """Frame ``i``'s validity mask ``[H, W]`` bool, or None."""
        path = self.mask_paths[i]
        return None if path is None else load_mask(path)

    def load_view(self, i: int) -> View:
        """Frame ``i`` as a :class:`~vggt3d.data.views.View` (zero depth when the folder has none)."""
        image = self.load_image(i)
        depth = self.load_depth(i)
        return View(image=image, depth=np.zeros(image.shape[:2], np.float32) if depth is None else depth,
                    intrinsics=self.intrinsics[i], cam_from_world=self.cam_from_world[i], frame_id=i,
                    mask=self.load_mask(i))


def read_scene_folder(root: str | os.PathLike) -> SceneFolder:
    """Read ``root/cameras.json`` (no pixels are decoded).

    Every file it names must lie inside ``root`` (no absolute paths, no ``..``
    or links leading out): the file is untrusted input.

    Raises:
        vggt3d.data.base.UnsafePathError: a listed path leads outside ``root``.
        FileNotFoundError: no ``cameras.json`` or a listed file is missing.
        SceneFolderError: malformed entries, naming the file and the frame.
    """
    root = Path(root)
    path = root / CAMERAS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"not a scene folder: {path} not found")
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SceneFolderError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("frames"), list) or not document["frames"]:
        raise SceneFolderError(f"{path}: expected an object with a non-empty 'frames' list")
    version = document.get("version", VERSION)
    if document.get("format", FORMAT) != FORMAT or not isinstance(version, int) or version > VERSION:
        raise SceneFolderError(f"{path}: unsupported format {document.get('format')!r} "
                               f"version {document.get('version')!r} (this reader: {FORMAT} v{VERSION})")
    images, depths, masks, extrinsics, ks, sizes = [], [], [], [], [], []
    for i, frame in enumerate(document["frames"]):
        where = f"{path}: frames[{i}]"
        if not isinstance(frame, dict):
            raise SceneFolderError(f"{where}: expected an object, got {type(frame).__name__}")
        image = path_inside(root, frame.get("image"), f"{where}.image")
        try:
            size = (int(frame["height"]), int(frame["width"]))
            k = np.asarray(frame["K"], dtype=np.float64)
            e = np.asarray(frame["cam_from_world"], dtype=np.float64)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise SceneFolderError(f"{where}: needs 'image', 'width', 'height', 'K' [3x3] and 'cam_from_world' "
                                   f"[3x4] ({exc!r})") from exc
        if k.shape != (3, 3) or e.shape not in ((3, 4), (4, 4)):
            raise SceneFolderError(f"{where}: K must be 3x3 and cam_from_world 3x4, got {k.shape} and {e.shape}")
        if not (np.isfinite(k).all() and np.isfinite(e).all()) or min(size) < 1 or max(size) > 1 << 20:
            raise SceneFolderError(f"{where}: K and cam_from_world must be finite, width and height in 1..2^20")
        if not image.is_file():
            raise FileNotFoundError(f"{where}: image file not found: {image}")
        images.append(image)
        sizes.append(size)
        ks.append(k)
        extrinsics.append(e[:3])
        depths.append(path_inside(root, frame["depth"], f"{where}.depth") if frame.get("depth") else None)
        masks.append(path_inside(root, frame["mask"], f"{where}.mask") if frame.get("mask") else None)
    scale = document.get("depth_scale")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int | float)
                              or not np.isfinite(scale) or scale <= 0):
        raise SceneFolderError(f"{path}: 'depth_scale' must be a positive number or null, got {scale!r}")
    if any(d is not None and d.suffix == ".png" for d in depths) and not scale:
        raise SceneFolderError(f"{path}: 16-bit PNG depth needs a positive 'depth_scale'")
    return SceneFolder(root, images, np.stack(extrinsics), np.stack(ks), np.asarray(sizes, dtype=np.int64),
                       depths, masks, document.get("depth_format"), None if scale is None else float(scale))


def find_scene_folders(path: str | os.PathLike) -> list[Path]:
    """``path`` itself if it is a scene folder, else its sub-folders that are (sorted)."""
    path = Path(path)
    if (path / CAMERAS_FILE).is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"scene folder not found: {path}")
    found = sorted(p for p in path.iterdir() if (p / CAMERAS_FILE).is_file())
    if not found:
        raise FileNotFoundError(f"no scene folder ({CAMERAS_FILE}) in {path} or its sub-folders")
    return found


class SceneFolderDataset(SceneListDataset):
    """Scene folders as a dataset: one scene per folder.

    Args:
        roots: a scene folder, a folder of scene folders, or a list of either.
        num_frames, image_size, num_tracks, min_overlap, seed: see
            :class:`~vggt3d.data.base.MultiViewDataset`.
    """

    name = "scene_folder"

    def __init__(self, roots: str | os.PathLike | Sequence[str | os.PathLike], num_frames: int | None = None,
                 image_size: tuple[int, int] | None = None, num_tracks: int = 0, min_overlap: float = 0.2,
                 seed: int = 0) -> None:
        super().__init__(num_frames, image_size, num_tracks, min_overlap, seed)
        roots = [roots] if isinstance(roots, (str, os.PathLike)) else list(roots)
        if not roots:
            raise ValueError("SceneFolderDataset needs at least one root")
        self.scenes = [read_scene_folder(p) for r in roots for p in find_scene_folders(r)]

    def frame_points(self, index: int) -> list[np.ndarray]:
        """Up to 64 valid depth points per frame (all frames' depth maps are read once), else a guess."""
        s = self.scenes[index]
        if any(p is None for p in s.depth_paths):
            return super().frame_points(index)
        out = []
        for i in range(len(s)):
            path = s.depth_paths[i]
            # .npy maps are memory-mapped: only the 64 sampled pixels are read.
            depth = np.load(path, mmap_mode="r") if path.suffix == ".npy" else s.load_depth(i)
            h, w = depth.shape
            rows, cols = np.meshgrid(np.linspace(0, h - 1, 8).round().astype(int),
                                     np.linspace(0, w - 1, 8).round().astype(int), indexing="ij")
            z = np.asarray(depth[rows, cols], dtype=np.float64).reshape(-1)
            keep = z > 0
            k = s.intrinsics[i]
            cam = np.stack([(cols.reshape(-1) - k[0, 2]) / k[0, 0] * z, (rows.reshape(-1) - k[1, 2]) / k[1, 1] * z,
                            z], axis=1)[keep]
            rotation, translation = s.cam_from_world[i, :, :3], s.cam_from_world[i, :, 3]
            out.append((cam - translation) @ rotation)  # R^T (X_cam - t)
        return out
