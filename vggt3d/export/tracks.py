"""``tracks.npz``: point tracks from query points in the first frame (when requested).

Arrays: ``query_points [N, 2]`` (pixels in frame 0), ``tracks [S, N, 2]`` (pixels
in each frame), ``visibility [S, N]`` and ``confidence [S, N]`` in [0, 1],
``image_names [S]``. Pixels ``(x, y)`` at each frame's original resolution,
pixel centres at integers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vggt3d.result import Reconstruction

__all__ = ["write"]


def write(rec: Reconstruction, root: Path) -> list[Path]:
    if rec.tracks is None:
        return []
    t = rec.tracks
    path = root / "tracks.npz"
    np.savez(path, query_points=t.query_points.astype(np.float32), tracks=t.uv.astype(np.float32),
             visibility=t.visibility.astype(np.float32), confidence=t.confidence.astype(np.float32),
             image_names=np.array(rec.image_names))
    return [path]
