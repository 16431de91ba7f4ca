"""Looking at results: a live browser viewer (viser), a self-contained HTML page, and the scene they both show.

- :mod:`vggt3d.viewer.scene`: :func:`load_scene` reads a vggt3d output folder, a
  COLMAP model or a PLY into a :class:`Scene` (read only).
- :mod:`vggt3d.viewer.page`: :func:`export_html` writes one shareable ``.html``
  file that opens from disk (our own canvas renderer, no server, no network).
- :mod:`vggt3d.viewer.live`: :func:`serve` starts the interactive viewer
  (``pip install vggt3d[view]`` for viser).

``vggt3d view`` is the command line of all three; ``preview.png`` lives in
:mod:`vggt3d.export.preview`.
"""

from __future__ import annotations

from .._lazy import lazy_getattr

_NAMES = {
    "Frame": "vggt3d.viewer.scene", "PointSet": "vggt3d.viewer.scene", "Scene": "vggt3d.viewer.scene",
    "SceneError": "vggt3d.viewer.scene", "TrackLines": "vggt3d.viewer.scene", "load_scene": "vggt3d.viewer.scene",
    "export_html": "vggt3d.viewer.page", "ViewerConfig": "vggt3d.viewer.live", "serve": "vggt3d.viewer.live",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_getattr(__name__, _NAMES, globals())
