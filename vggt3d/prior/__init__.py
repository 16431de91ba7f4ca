"""vggt3d as a geometry prior for other models (world models, video generators).

- :class:`GeometryPrior` / :class:`GeometryFeatures`: frozen feature extraction
  for clips of any size and length (:mod:`.prior`, :mod:`.features`,
  :mod:`.windows`);
- :mod:`.cache`: one safetensors file per clip, a manifest, and a torch
  ``Dataset`` that reads them back;
- :func:`alignment_loss` / :class:`FeatureProjector`: align another network's
  features to the prior's (:mod:`.alignment`);
- :func:`consistency` / :func:`consistency_from_geometry`: the 3D-consistency
  score of a clip (:mod:`.scoring`); :class:`OnlineScorer`: the same score
  causally, frame by frame, for world-model rollouts (:mod:`.online`);
- :func:`export_prior`: a ``torch.export`` program for fixed clip sizes (:mod:`.export`).

The guide is ``docs/geometry_prior.md``. Imports are lazy.
"""

from __future__ import annotations

from vggt3d._lazy import lazy_getattr

_LAZY = {
    "GeometryPrior": "vggt3d.prior.prior",
    "model_input_size": "vggt3d.prior.prior",
    "GeometryFeatures": "vggt3d.prior.features",
    "Window": "vggt3d.prior.windows",
    "plan_windows": "vggt3d.prior.windows",
    "FeatureCache": "vggt3d.prior.cache",
    "FeatureCacheWriter": "vggt3d.prior.cache",
    "alignment_loss": "vggt3d.prior.alignment",
    "FeatureProjector": "vggt3d.prior.alignment",
    "consistency": "vggt3d.prior.consistency",
    "consistency_from_geometry": "vggt3d.prior.scoring",
    "ConsistencyReport": "vggt3d.prior.scoring",
    "OnlineScorer": "vggt3d.prior.online",
    "export_prior": "vggt3d.prior.export",
    "export_onnx": "vggt3d.prior.export",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
