"""Long videos: overlapping chunks, Sim(3) alignment of chunks, loop closure and a Sim(3) pose graph.

Everything here except :mod:`vggt3d.longvideo.chunked` is a function of
predictions (numpy + scipy), so it is tested on exact synthetic geometry.
The guide is ``docs/long_videos.md``. Imports are lazy.
"""

from __future__ import annotations

from vggt3d._lazy import lazy_getattr

_LAZY = {
    "Chunk": "vggt3d.longvideo.chunks",
    "ChunkPlanError": "vggt3d.longvideo.chunks",
    "check_chunking": "vggt3d.longvideo.chunks",
    "plan_chunks": "vggt3d.longvideo.chunks",
    "AlignmentError": "vggt3d.longvideo.sim3",
    "Sim3": "vggt3d.longvideo.sim3",
    "Sim3Fit": "vggt3d.longvideo.sim3",
    "robust_sim3": "vggt3d.longvideo.sim3",
    "umeyama": "vggt3d.longvideo.sim3",
    "AlignmentConfig": "vggt3d.longvideo.align",
    "ChunkGeometry": "vggt3d.longvideo.align",
    "LoopConfig": "vggt3d.longvideo.pipeline",
    "align_sequence": "vggt3d.longvideo.pipeline",
    "run_chunked": "vggt3d.longvideo.chunked",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY, globals())
