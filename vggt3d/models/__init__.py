"""Model families behind :class:`vggt3d.VGGT3D`: one module per family, one line per family in :data:`FAMILIES`.

A family (chosen by ``config.aggregator.kind``) is an object with

- ``build(model, config)``: set ``model.aggregator`` (an
  :class:`~vggt3d.aggregator.AlternatingAggregator`) and the head modules,
  under the attribute names of the family's checkpoints;
- ``head_layers(model, track)``: the aggregator layers its heads read;
- ``forward_heads(model, tokens, image_size, query_points)``: the heads on
  aggregator tokens ``{layer: [B, S, P, 2C]}`` (fp32) -> output dict;
- ``head_modules(model)``: ``{head name: module}`` of the built heads.

Families: ``vggt`` (VGGT-1B, :mod:`.vggt`) and ``omega`` (VGGT-Omega, :mod:`.omega`).
"""

from __future__ import annotations

from types import ModuleType

from . import omega, vggt

#: ``aggregator.kind`` -> family module.
FAMILIES: dict[str, ModuleType] = {"vggt": vggt, "omega": omega}


def family(kind: str) -> ModuleType:
    """The family module of ``aggregator.kind``."""
    try:
        return FAMILIES[kind]
    except KeyError:
        raise ValueError(f"unknown model family {kind!r}; choose from {sorted(FAMILIES)}") from None
