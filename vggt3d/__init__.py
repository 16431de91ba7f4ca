"""vggt3d: feed-forward 3D geometry (cameras, depth, point maps, tracks) from images.

A VGGT-style model (Wang et al., "VGGT: Visual Geometry Grounded Transformer",
CVPR 2025, arXiv:2503.11651) that loads the public VGGT-1B checkpoint and
reproduces its outputs, plus the library around it.
"""

from __future__ import annotations

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
