"""Reading known intrinsics and poses from users' files, checked against the frames of a reconstruction.

Intrinsics (:func:`read_intrinsics`), at the *original* image resolution:

- JSON, one shared camera: ``{"K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]}`` or
  ``{"fx": .., "fy": .., "cx": .., "cy": ..}`` (optional ``"width"``, ``"height"``);
- JSON per image: ``{"IMAGE": {"K": ...} | {"fx": ...} | [[...]], ...}``, or
  ``{"frames": [{"image": "IMAGE", "K": ...}, ...]}`` (our ``cameras.json`` is one);
- COLMAP: a model folder, ``cameras.txt`` or ``cameras.bin`` (one camera for all
  images, or several with ``images.txt/bin`` beside them to say which is whose).

JSON principal points follow vggt3d's convention (pixel centres at integers);
COLMAP's (centres at half-integers) are shifted by -0.5.

Poses (:func:`read_poses`): our ``cameras.json`` (``cam_from_world``), a COLMAP
model (folder, ``images.txt`` or ``images.bin``), or a nerfstudio
``transforms.json`` (``transform_matrix`` camera-to-world with OpenGL axes).

Images are matched by name (the names in ``images/``; a path's last part, or
``images/NAME``, also matches). Every file error is a :class:`KnownCamerasError`
whose one-line message names the file and the frames.

Convention: ``cam_from_world [S, 4, 4]`` with OpenCV axes; ``K [S, 3, 3]`` pixels.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["KnownCamerasError", "read_intrinsics", "read_poses"]

_GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


class KnownCamerasError(ValueError):
    """An intrinsics or poses file is unreadable, incomplete or wrong (one line, naming the file and frames)."""


def _names_list(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _match(path: Path, entries: dict[str, Any], image_names: list[str], what: str) -> list[Any]:
    """Entries in frame order; errors for unknown names and frames not covered."""
    def key(name: str) -> str:
        return os.path.basename(str(name).replace("\\", "/"))

    by_key: dict[str, Any] = {}
    for name, value in entries.items():
        k = key(name)
        if k in by_key:
            raise KnownCamerasError(f"{path}: two {what} entries for image {k}")
        by_key[k] = value
    unknown = sorted(set(by_key) - set(image_names))
    if unknown:
        raise KnownCamerasError(f"{path}: {what} for unknown image(s) {_names_list(unknown)} (the frames are "
                                f"{_names_list(image_names, 3)})")
    missing = [n for n in image_names if n not in by_key]
    if missing:
        raise KnownCamerasError(f"{path}: no {what} for frame(s) {_names_list(missing)}; the file must cover "
                                "every image")
    return [by_key[n] for n in image_names]


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KnownCamerasError(f"{path}: not a readable JSON file ({exc})") from exc


def _matrix(path: Path, value: Any, shape: tuple[int, int], what: str) -> np.ndarray:
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise KnownCamerasError(f"{path}: {what} is not a numeric matrix") from exc
    if m.shape != shape:
        raise KnownCamerasError(f"{path}: {what} must be {shape[0]}x{shape[1]}, got shape {list(m.shape)}")
    if not np.isfinite(m).all():
        raise KnownCamerasError(f"{path}: {what} holds NaN or infinite values")
    return m


def _K_from_record(path: Path, record: Any, name: str) -> tuple[np.ndarray, tuple[int, int] | None]:
    size = None
    if isinstance(record, dict):
        if "width" in record and "height" in record:
            size = (int(record["width"]), int(record["height"]))
        if "K" in record:
            K = _matrix(path, record["K"], (3, 3), f"K of {name}")
        elif all(k in record for k in ("fx", "fy", "cx", "cy")):
            K = _matrix(path, [[record["fx"], 0, record["cx"]], [0, record["fy"], record["cy"]], [0, 0, 1]], (3, 3),
                        f"fx/fy/cx/cy of {name}")
        elif all(k in record for k in ("fl_x", "fl_y", "cx", "cy")):  # nerfstudio: centres at half-integers
            K = _matrix(path, [[record["fl_x"], 0, record["cx"] - 0.5], [0, record["fl_y"], record["cy"] - 0.5],
                               [0, 0, 1]], (3, 3), f"intrinsics of {name}")
        else:
            raise KnownCamerasError(f"{path}: entry {name} has no K and no fx, fy, cx, cy")
    else:
        K = _matrix(path, record, (3, 3), f"K of {name}")
    return K, size


def _check_K(path: Path, K: np.ndarray, name: str) -> np.ndarray:
    if not np.isfinite(K).all():
        raise KnownCamerasError(f"{path}: intrinsics of {name} hold NaN or infinite values")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise KnownCamerasError(f"{path}: non-positive focal length for {name} (fx={K[0, 0]:g}, fy={K[1, 1]:g})")
    if abs(K[2, 2] - 1) > 1e-9 or abs(K[1, 0]) > 1e-9 or abs(K[2, 0]) + abs(K[2, 1]) > 1e-9:
        raise KnownCamerasError(f"{path}: K of {name} is not an upper-triangular pinhole matrix with K[2][2] = 1")
    return K


def _colmap_model(path: Path) -> Any:
    import pycolmap

    folder = path if path.is_dir() else path.parent
    try:
        return pycolmap.Reconstruction(str(folder))
    except Exception as exc:
        raise KnownCamerasError(f"{path}: not a readable COLMAP model ({str(exc).splitlines()[0][:120]})") from exc


def _colmap_K(path: Path, camera: Any) -> np.ndarray:
    model = str(camera.model).split(".")[-1]
    p = list(camera.params)
    if model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"):
        f, cx, cy, extra = p[0], p[1], p[2], p[3:]
        fx = fy = f
    elif model in ("PINHOLE", "OPENCV", "FULL_OPENCV"):
        fx, fy, cx, cy, extra = p[0], p[1], p[2], p[3], p[4:]
    else:
        raise KnownCamerasError(f"{path}: camera model {model} is not supported (use PINHOLE or SIMPLE_PINHOLE)")
    if any(abs(e) > 1e-12 for e in extra):
        raise KnownCamerasError(f"{path}: camera {camera.camera_id} ({model}) has lens distortion; undistort the "
                                "images first (e.g. colmap image_undistorter) and give the PINHOLE cameras")
    return np.array([[fx, 0, cx - 0.5], [0, fy, cy - 0.5], [0, 0, 1.0]])


def _read_cameras_txt(path: Path) -> dict[int, tuple[np.ndarray, tuple[int, int]]]:
    import pycolmap

    cameras = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            camera = pycolmap.Camera(model=parts[1], width=int(parts[2]), height=int(parts[3]),
                                     params=[float(x) for x in parts[4:]], camera_id=int(parts[0]))
        except Exception as exc:
            raise KnownCamerasError(f"{path}: line {number} is not 'ID MODEL WIDTH HEIGHT PARAMS...' ({exc})") from exc
        cameras[int(parts[0])] = (_colmap_K(path, camera), (int(parts[2]), int(parts[3])))
    if not cameras:
        raise KnownCamerasError(f"{path}: no cameras in the file")
    return cameras


def read_intrinsics(path: str | os.PathLike, image_names: list[str], image_sizes: np.ndarray) -> np.ndarray:
    """``K [S, 3, 3]`` (original pixels, centres at integers) for the frames ``image_names`` from ``path``.

    ``image_sizes [S, 2]`` (width, height): sizes stated in the file must match.

    Raises:
        KnownCamerasError: unreadable file, unknown or missing images, non-positive
            focal lengths, NaN, distortion, or a stated size that differs.
    """
    path = Path(path)
    if not path.exists():
        raise KnownCamerasError(f"{path}: intrinsics file not found")
    entries: dict[str, tuple[np.ndarray, tuple[int, int] | None]]
    if path.suffix.lower() == ".json":
        data = _load_json(path)
        if isinstance(data, dict) and ("K" in data or "fx" in data):
            shared = _K_from_record(path, data, "the shared camera")
            entries = {n: shared for n in image_names}
        elif isinstance(data, dict) and isinstance(data.get("frames"), list):
            entries = {}
            for i, f in enumerate(data["frames"]):
                name = f.get("image", f.get("file_path", f.get("name"))) if isinstance(f, dict) else None
                if name is None:
                    raise KnownCamerasError(f"{path}: frames[{i}] has no image name ('image', 'file_path' or 'name')")
                entries[str(name)] = _K_from_record(path, f, str(name))
        elif isinstance(data, dict):
            entries = {str(n): _K_from_record(path, r, str(n)) for n, r in data.items()}
        else:
            raise KnownCamerasError(f"{path}: expected a JSON object (shared K, per-image entries or 'frames')")
        records = _match(path, entries, image_names, "intrinsics")
    else:
        if path.name.startswith("cameras") and path.suffix == ".txt" and not (path.parent / "images.txt").exists():
            cams = _read_cameras_txt(path)
            if len(cams) != 1:
                raise KnownCamerasError(f"{path}: {len(cams)} cameras but no images.txt beside it to say which "
                                        "image uses which; give the model folder or one camera")
            records = [next(iter(cams.values()))] * len(image_names)
        else:
            model = _colmap_model(path)
            if model.num_images() == 0 and len(model.cameras) == 1:
                cam = next(iter(model.cameras.values()))
                records = [(_colmap_K(path, cam), (cam.width, cam.height))] * len(image_names)
            else:
                entries = {img.name: (_colmap_K(path, model.cameras[img.camera_id]),
                                      (model.cameras[img.camera_id].width, model.cameras[img.camera_id].height))
                           for img in model.images.values()}
                records = _match(path, entries, image_names, "intrinsics")
    K = np.stack([_check_K(path, k, n) for (k, _), n in zip(records, image_names)])
    wrong = [n for (_, size), n, real in zip(records, image_names, np.asarray(image_sizes).tolist())
             if size is not None and tuple(size) != tuple(real)]
    if wrong:
        raise KnownCamerasError(f"{path}: the stated image size differs from the image for {_names_list(wrong)}; "
                                "intrinsics must be at the original resolution")
    return K


def _check_pose(path: Path, m: np.ndarray, name: str) -> np.ndarray:
    R = m[:3, :3]
    if not np.isfinite(m).all():
        raise KnownCamerasError(f"{path}: the pose of {name} holds NaN or infinite values")
    if np.abs(R.T @ R - np.eye(3)).max() > 1e-3 or np.linalg.det(R) < 0:
        raise KnownCamerasError(f"{path}: the rotation of {name} is not orthonormal with det +1")
    if m.shape == (4, 4) and np.abs(m[3] - [0, 0, 0, 1]).max() > 1e-9:
        raise KnownCamerasError(f"{path}: the pose of {name} has a last row other than [0, 0, 0, 1]")
    out = np.eye(4)
    out[:3] = m[:3]
    return out


def read_poses(path: str | os.PathLike, image_names: list[str]) -> np.ndarray:
    """``cam_from_world [S, 4, 4]`` (OpenCV axes) for the frames ``image_names`` from ``path``.

    Raises:
        KnownCamerasError: unreadable file, unknown or missing images, NaN,
            non-orthonormal rotations.
    """
    path = Path(path)
    if not path.exists():
        raise KnownCamerasError(f"{path}: poses file not found")
    entries: dict[str, np.ndarray] = {}
    if path.suffix.lower() == ".json":
        data = _load_json(path)
        frames = data.get("frames") if isinstance(data, dict) else None
        if not isinstance(frames, list):
            raise KnownCamerasError(f"{path}: expected 'frames' (vggt3d cameras.json or nerfstudio transforms.json)")
        for i, f in enumerate(frames):
            if not isinstance(f, dict):
                raise KnownCamerasError(f"{path}: frames[{i}] is not an object")
            name = f.get("image", f.get("file_path"))
            if name is None:
                raise KnownCamerasError(f"{path}: frames[{i}] has no 'image' or 'file_path'")
            if "cam_from_world" in f:
                m = _matrix(path, f["cam_from_world"], (4, 4), f"cam_from_world of {name}")
                entries[str(name)] = _check_pose(path, m, str(name))
            elif "transform_matrix" in f:
                raw = np.asarray(f["transform_matrix"], dtype=np.float64) if isinstance(f["transform_matrix"],
                                                                                       list) else None
                shape = (3, 4) if raw is not None and raw.shape == (3, 4) else (4, 4)
                m = _matrix(path, f["transform_matrix"], shape, f"transform_matrix of {name}")
                c2w = _check_pose(path, m, str(name)) @ _GL_TO_CV
                entries[str(name)] = np.linalg.inv(c2w)
            else:
                raise KnownCamerasError(f"{path}: frames[{i}] ({name}) has no cam_from_world or transform_matrix")
    else:
        model = _colmap_model(path)
        for img in model.images.values():
            entries[img.name] = _check_pose(path, np.asarray(img.cam_from_world().matrix()), img.name)
        if not entries:
            raise KnownCamerasError(f"{path}: the COLMAP model has no images")
    return np.stack(_match(path, entries, image_names, "pose"))
