"""Causal, streaming geometry for world models: frame-causal attention masks and a KV-cache stream.

- :class:`GeometryStream` (``model.stream()``): push frames, get their
  cameras/depth/tokens from cached keys and values of the past (:mod:`.stream`);
- :class:`StreamConfig` / :class:`FrameKVCache` / :func:`causal_mask`: the
  memory budget, eviction policy and masks (:mod:`.cache`).

The guide is ``docs/world_models.md``. Imports are lazy.
"""

from __future__ import annotations

from vggt3d._lazy import lazy_getattr

_LAZY = {
    "GeometryStream": "vggt3d.stream.stream",
    "StreamConfig": "vggt3d.stream.cache",
    "StreamBudgetError": "vggt3d.stream.cache",
    "FrameKVCache": "vggt3d.stream.cache",
    "CausalFrames": "vggt3d.stream.cache",
    "causal_mask": "vggt3d.stream.cache",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
