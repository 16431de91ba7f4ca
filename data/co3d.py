"""CO3Dv2 sequences in the public layout, converted from PyTorch3D NDC cameras to OpenCV pixels.

Layout (``root`` is the dataset root; annotation paths are relative to it)::

    root/CATEGORY/frame_annotations.jgz       gzip JSON list of frame annotations
    root/CATEGORY/sequence_annotations.jgz    gzip JSON list of sequence annotations
    root/CATEGORY/SEQUENCE/images/frame000001.jpg
    root/CATEGORY/SEQUENCE/depths/frame000001.jpg.geometric.png   16-bit PNG holding float16 bits
    root/CATEGORY/SEQUENCE/depth_masks/frame000001.png             MVS validity mask
    root/CATEGORY/SEQUENCE/masks/frame000001.png                   foreground probability * 255

A frame annotation holds ``sequence_name``, ``frame_number``, ``image`` {path,
size [H, W]}, ``depth`` {path, scale_adjustment, mask_path} and ``viewpoint``
{R, T, focal_length, principal_point, intrinsics_format}.

Convention (PyTorch3D, the source): row vectors, ``X_view = X_world @ R + T``;
view axes +x left, +y up, +z forward; NDC ``x_ndc = f_x X/Z + p_x``, with
(+1, +1) at the top-left *corner* of the image. ``ndc_isotropic`` scales both
axes by ``min(H, W) / 2``; ``ndc_norm_image_bounds`` scales x by ``W / 2`` and y
by ``H / 2``. Ours (the result): ``cam_from_world = [R_cv | t_cv]`` with OpenCV
axes (x right, y down, z forward) and pixel centres at integers:
``R_cv = diag(-1, -1, 1) R^T``, ``t_cv = diag(-1, -1, 1) T``,
``f_px = f_ndc * scale``, ``c_px = size / 2 - 0.5 - p_ndc * scale``.
(PyTorch3D's own ``opencv_from_cameras_projection`` omits the -0.5: it treats
pixel corners as integers.) Depth = PNG float16 value * ``scale_adjustment``.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from .base import SceneListDataset, path_inside
from .views import View, load_mask, load_rgb

__all__ = ["Co3dDataset", "Co3dSequence", "load_co3d_depth", "co3d_viewpoint_to_opencv"]

logger = logging.getLogger(__name__)

_FLIP_XY = np.diag([-1.0, -1.0, 1.0])
INTRINSICS_FORMATS = ("ndc_isotropic", "ndc_norm_image_bounds")


def co3d_viewpoint_to_opencv(R: Any, T: Any, focal_length: Any, principal_point: Any, image_size_hw: Sequence[int],
                             intrinsics_format: str = "ndc_norm_image_bounds") -> tuple[np.ndarray, np.ndarray]:
    """Convert a CO3D (PyTorch3D NDC) viewpoint to OpenCV ``cam_from_world [3, 4]`` and pixel ``K [3, 3]``.

    Convention: see the module docstring (PyTorch3D row-vector extrinsics, +x left
    +y up view axes, NDC with corners at +-1; OpenCV x right, y down, z forward,
    pixel centres at integers).
    """
    rotation = np.asarray(R, dtype=np.float64).reshape(3, 3)
    translation = np.asarray(T, dtype=np.float64).reshape(3)
    height, width = (float(s) for s in image_size_hw)
    if intrinsics_format == "ndc_isotropic":
        scale_x = scale_y = min(height, width) / 2.0
    elif intrinsics_format == "ndc_norm_image_bounds":
        scale_x, scale_y = width / 2.0, height / 2.0
    else:
        raise ValueError(f"unknown CO3D intrinsics_format {intrinsics_format!r}; expected one of {INTRINSICS_FORMATS}")
    fx, fy = (float(f) for f in np.asarray(focal_length, dtype=np.float64).reshape(2))
    px, py = (float(p) for p in np.asarray(principal_point, dtype=np.float64).reshape(2))
    k = np.array([[fx * scale_x, 0.0, width / 2.0 - 0.5 - px * scale_x],
                  [0.0, fy * scale_y, height / 2.0 - 0.5 - py * scale_y],
                  [0.0, 0.0, 1.0]])
    cam_from_world = np.concatenate([_FLIP_XY @ rotation.T, (_FLIP_XY @ translation)[:, None]], axis=1)
    return cam_from_world, k


def load_co3d_depth(path: str | os.PathLike, scale_adjustment: float = 1.0) -> np.ndarray:
    """Read a CO3D depth PNG (16-bit PNG whose values are float16 bits) as ``[H, W]`` float32 z-depth."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CO3D depth file not found: {path}")
    with Image.open(path) as im:
        bits = np.array(im, dtype=np.uint16)
    depth = bits.view(np.float16).astype(np.float32) * np.float32(scale_adjustment)
    depth[~np.isfinite(depth) | (depth < 0)] = 0.0
    return depth


def _read_jgz(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"CO3D annotation file not found: {path}")
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a gzip JSON annotation file ({exc})") from exc
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of annotations")
    return data


class Co3dSequence:
    """One CO3D sequence: cameras converted to OpenCV, frames loaded on demand.

    Args:
        root: the dataset root (annotation paths are relative to it).
        frames: the sequence's frame annotations (dicts), any order (sorted by frame_number).
        category: the category name (for the scene name).
        depth_percentile: zero depths above this percentile of each map (zeros included),
            as the original training does, when that percentile is above 0 (a mostly invalid map
            is kept as it is); None keeps all.
        use_depth_mask: zero depth outside the MVS depth mask.
        foreground_only: also zero depth outside the foreground mask (> 127).
    """

    def __init__(self, root: str | os.PathLike, frames: Sequence[dict], category: str = "",
                 depth_percentile: float | None = 98.0, use_depth_mask: bool = True,
                 foreground_only: bool = False) -> None:
        self.root = Path(root)
        if not frames:
            raise ValueError("a CO3D sequence needs at least one frame annotation")
        self.frames = sorted(frames, key=lambda f: int(f["frame_number"]))
        self.sequence_name = str(self.frames[0]["sequence_name"])
        self.category = category
        self.depth_percentile = depth_percentile
        self.use_depth_mask = use_depth_mask
        self.foreground_only = foreground_only
        extrinsics, ks, sizes = [], [], []
        for frame in self.frames:
            try:
                size = [int(s) for s in frame["image"]["size"]]
                vp = frame["viewpoint"]
                e, k = co3d_viewpoint_to_opencv(vp["R"], vp["T"], vp["focal_length"], vp["principal_point"], size,
                                                vp.get("intrinsics_format", "ndc_norm_image_bounds"))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"CO3D sequence {self.sequence_name!r}, frame {frame.get('frame_number')}: "
                                 f"malformed annotation ({exc!r})") from exc
            self._path(frame["image"].get("path"), "image path")  # refuse paths leading out now, not mid-run
            for key, what in (("path", "depth path"), ("mask_path", "depth mask path")):
                self._path((frame.get("depth") or {}).get(key), what)
            self._path((frame.get("mask") or {}).get("path"), "mask path")
            extrinsics.append(e)
            ks.append(k)
            sizes.append(size)
        self.cam_from_world = np.stack(extrinsics)  # [F, 3, 4]
        self.intrinsics = np.stack(ks)  # [F, 3, 3]
        self.sizes = np.asarray(sizes, dtype=np.int64)  # [F, 2] (H, W)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def name(self) -> str:
        return f"{self.category}/{self.sequence_name}" if self.category else self.sequence_name

    def _path(self, relative: str | None, what: str = "path") -> Path | None:
        """``root / relative``; annotations are untrusted, so the path must stay inside ``root``."""
        return None if not relative else path_inside(self.root, relative, f"CO3D sequence {self.name!r} {what}")

    def load_view(self, i: int) -> View:
        """Frame ``i``: image, cleaned depth (see the constructor), OpenCV camera."""
        frame = self.frames[i]
        image_path = self._path(frame["image"]["path"], "image path")
        image = load_rgb(image_path)
        if image.shape[:2] != tuple(self.sizes[i]):
            raise ValueError(f"{image_path}: image is {list(image.shape[:2])} (H, W) but its annotation says "
                             f"{list(self.sizes[i])}")
        depth_info = frame.get("depth") or {}
        depth_path = self._path(depth_info.get("path"), "depth path")
        if depth_path is None:
            depth = np.zeros(image.shape[:2], dtype=np.float32)
        else:
            depth = load_co3d_depth(depth_path, float(depth_info.get("scale_adjustment", 1.0)))
            if depth.shape != image.shape[:2]:
                raise ValueError(f"{depth_path}: depth is {list(depth.shape)}, image is {list(image.shape[:2])}")
            mask_path = self._path(depth_info.get("mask_path"), "depth mask path")
            if self.use_depth_mask and mask_path is not None:
                depth[~load_mask(mask_path, threshold=128)] = 0.0
            if self.foreground_only and frame.get("mask", {}).get("path"):
                depth[~load_mask(self._path(frame["mask"]["path"], "mask path"))] = 0.0
            if self.depth_percentile is not None and depth.size:
                # as the original: only a positive cut applies (a map that is >= 98 % invalid keeps its depth)
                cut = np.percentile(depth, self.depth_percentile)
                if cut > 0:
                    depth[depth > cut] = 0.0
        return View(image=image, depth=depth, intrinsics=self.intrinsics[i], cam_from_world=self.cam_from_world[i],
                    frame_id=int(frame["frame_number"]))


class Co3dDataset(SceneListDataset):
    """CO3Dv2 sequences as a dataset, one scene per sequence (sorted by category, then name).

    Args:
        root: the dataset root holding ``CATEGORY/frame_annotations.jgz``.
        categories: categories to use (default: every folder with annotations).
        min_frames: sequences with fewer frames are skipped (the original uses 24).
        num_frames, image_size, num_tracks, min_overlap, seed: see
            :class:`~vggt3d.data.base.MultiViewDataset`.
        depth_percentile, use_depth_mask, foreground_only: see :class:`Co3dSequence`.
    """

    name = "co3d"

    def __init__(self, root: str | os.PathLike, categories: Sequence[str] | None = None, min_frames: int = 24,
                 num_frames: int | None = None, image_size: tuple[int, int] | None = None, num_tracks: int = 0,
                 min_overlap: float = 0.2, seed: int = 0, depth_percentile: float | None = 98.0,
                 use_depth_mask: bool = True, foreground_only: bool = False) -> None:
        super().__init__(num_frames, image_size, num_tracks, min_overlap, seed)
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"CO3D root not found: {self.root}")
        if categories is None:
            categories = sorted(p.name for p in self.root.iterdir() if (p / "frame_annotations.jgz").is_file())
            if not categories:
                raise FileNotFoundError(f"no CO3D category (CATEGORY/frame_annotations.jgz) in {self.root}")
        self.sequences: list[Co3dSequence] = []
        for category in categories:
            by_sequence: dict[str, list[dict]] = {}
            for frame in _read_jgz(self.root / category / "frame_annotations.jgz"):
                by_sequence.setdefault(str(frame["sequence_name"]), []).append(frame)
            for name in sorted(by_sequence):
                frames = by_sequence[name]
                if len(frames) < min_frames:
                    logger.debug("skipping CO3D sequence %s/%s: %d < %d frames", category, name, len(frames),
                                 min_frames)
                    continue
                self.sequences.append(Co3dSequence(self.root, frames, category, depth_percentile, use_depth_mask,
                                                   foreground_only))
        if not self.sequences:
            raise ValueError(f"no CO3D sequence with at least {min_frames} frames in {self.root} ({list(categories)})")

    @property
    def scenes(self) -> list[Co3dSequence]:
        return self.sequences
