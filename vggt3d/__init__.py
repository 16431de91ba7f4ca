"""vggt3d: feed-forward 3D geometry (cameras, depth, point maps, tracks) from images.

A VGGT-style model (Wang et al., "VGGT: Visual Geometry Grounded Transformer",
CVPR 2025, arXiv:2503.11651) that loads the public VGGT-1B checkpoint and
reproduces its outputs, plus the library around it.
"""

from __future__ import annotations

import os as _os

# ``heads/`` and ``data/`` live at the repository root and install as
# ``vggt3d.heads`` / ``vggt3d.data`` (setuptools package-dir mapping). When the
# source tree itself is imported (repository root on sys.path: ``python
# train.py``, ``python -m pytest``), make the two sub-packages resolvable too.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if not _os.path.isdir(_os.path.join(_os.path.dirname(__file__), "heads")) and _os.path.isfile(
    _os.path.join(_root, "heads", "__init__.py")
):
    __path__.append(_root)  # type: ignore[name-defined]  # noqa: F821

__version__ = "0.1.0"

from ._lazy import lazy_getattr

_LAZY = {
    "ModelConfig": "vggt3d.config",
    "ConfigError": "vggt3d.config",
    "VGGT3D": "vggt3d.model",
    "CheckpointError": "vggt3d.hub",
    "load_images": "vggt3d.io.images",
    "preprocess_images": "vggt3d.io.images",
    "ImageTransform": "vggt3d.io.images",
    "ImageLoadError": "vggt3d.io.images",
    "reconstruct": "vggt3d.reconstruct",
    "Reconstruction": "vggt3d.reconstruct",
    "GeometryPrior": "vggt3d.prior",
    "GeometryFeatures": "vggt3d.prior",
}

__all__ = sorted(_LAZY) + ["__version__"]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
