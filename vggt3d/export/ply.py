"""``points.ply``: the confidence-filtered, coloured point cloud (binary little-endian PLY).

Vertex properties ``x y z`` (float32, world coordinates: OpenCV axes of the
first camera), ``nx ny nz`` (float32 unit normals facing the camera the point
was seen from; 0 where unknown) and ``red green blue`` (uchar). Readable by
trimesh, open3d, MeshLab and CloudCompare.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vggt3d.result import Reconstruction

__all__ = ["write", "write_ply"]

_PLY_TYPES = {np.dtype(np.float32): "float", np.dtype(np.uint8): "uchar", np.dtype(np.float64): "double",
              np.dtype(np.int32): "int", np.dtype(np.uint16): "ushort"}


def write_ply(path: Path, columns: list[tuple[str, np.ndarray]], comments: tuple[str, ...] = ()) -> Path:
    """Write one ``vertex`` element with the given ``(name, values [N])`` properties, in order.

    Values are stored little-endian with their numpy dtype (float32, float64, uint8, uint16, int32).
    """
    n = len(columns[0][1]) if columns else 0
    dtype = np.dtype([(name, np.asarray(v).dtype.newbyteorder("<")) for name, v in columns])
    data = np.empty(n, dtype=dtype)
    for name, values in columns:
        if len(values) != n:
            raise ValueError(f"PLY property {name} has {len(values)} values, expected {n}")
        data[name] = values
    header = ["ply", "format binary_little_endian 1.0", *(f"comment {c}" for c in comments),
              f"element vertex {n}"]
    header += [f"property {_PLY_TYPES[np.dtype(np.asarray(v).dtype)]} {name}" for name, v in columns]
    header.append("end_header")
    with open(path, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(data.tobytes())
    return path


def write(rec: Reconstruction, root: Path) -> list[Path]:
    p, n, c = rec.points.astype(np.float32), rec.point_normals.astype(np.float32), rec.colors.astype(np.uint8)
    columns = [("x", p[:, 0]), ("y", p[:, 1]), ("z", p[:, 2]), ("nx", n[:, 0]), ("ny", n[:, 1]), ("nz", n[:, 2]),
               ("red", c[:, 0]), ("green", c[:, 1]), ("blue", c[:, 2])]
    comments = ("vggt3d point cloud; world = camera of the first frame, OpenCV axes (x right, y down, z forward)",)
    return [write_ply(root / "points.ply", columns, comments)]
