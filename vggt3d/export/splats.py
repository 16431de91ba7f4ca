"""``splats.ply``: a 3D Gaussian splatting initialisation in the standard attribute layout.

The layout of Kerbl et al. 2023 (``GaussianModel.save_ply``), all float32:
``x y z nx ny nz f_dc_0 f_dc_1 f_dc_2 f_rest_0 .. f_rest_{3(d+1)^2-4} opacity
scale_0 scale_1 scale_2 rot_0 rot_1 rot_2 rot_3``, where

- ``f_dc = (rgb - 0.5) / C0`` with ``C0 = 0.28209479177387814`` (degree-0 spherical
  harmonic), ``rgb`` the point colour in [0, 1]; ``f_rest`` (higher degrees) is 0;
- ``opacity`` is a logit (``log(a / (1 - a))``, default ``a = 0.1`` as 3DGS initialises);
- ``scale_*`` are natural logs of the Gaussian's standard deviation, isotropic, set
  to the local point spacing (distance to the nearest neighbouring pixel's point,
  enlarged by the square root of any random thinning);
- ``rot_*`` a unit quaternion, scalar first (``w x y z``) as 3DGS stores it: identity.

Positions are world coordinates (OpenCV axes of the first camera), like ``points.ply`` and COLMAP.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .ply import write_ply

if TYPE_CHECKING:
    from vggt3d.result import Reconstruction

__all__ = ["SH_C0", "splat_columns", "write"]

SH_C0 = 0.28209479177387814


def splat_columns(points: np.ndarray, colors: np.ndarray, spacing: np.ndarray, normals: np.ndarray | None = None,
                  sh_degree: int = 3, opacity: float = 0.1) -> list[tuple[str, np.ndarray]]:
    """PLY columns of Gaussians at ``points [N, 3]`` with ``colors [N, 3]`` uint8 and ``spacing [N]``."""
    if not 0 < opacity < 1:
        raise ValueError(f"opacity must be in (0, 1), got {opacity}")
    n = len(points)
    f32 = np.float32
    normals = np.zeros((n, 3), f32) if normals is None else normals.astype(f32)
    f_dc = ((colors.astype(np.float64) / 255.0 - 0.5) / SH_C0).astype(f32)
    positive = spacing[np.isfinite(spacing) & (spacing > 0)]
    floor = float(np.median(positive)) * 1e-3 if positive.size else 1e-6
    scale = np.log(np.where(np.isfinite(spacing) & (spacing > floor), spacing, max(floor, 1e-12))).astype(f32)
    columns = [(name, points[:, i].astype(f32)) for i, name in enumerate("xyz")]
    columns += [(name, normals[:, i]) for i, name in enumerate(("nx", "ny", "nz"))]
    columns += [(f"f_dc_{i}", f_dc[:, i]) for i in range(3)]
    columns += [(f"f_rest_{i}", np.zeros(n, f32)) for i in range(3 * (sh_degree + 1) ** 2 - 3)]
    columns.append(("opacity", np.full(n, np.log(opacity / (1.0 - opacity)), f32)))
    columns += [(f"scale_{i}", scale) for i in range(3)]
    columns += [(f"rot_{i}", np.full(n, 1.0 if i == 0 else 0.0, f32)) for i in range(4)]
    return columns


def write(rec: Reconstruction, root: Path) -> list[Path]:
    columns = splat_columns(rec.points, rec.colors, rec.point_spacing, rec.point_normals)
    return [write_ply(root / "splats.ply", columns)]
