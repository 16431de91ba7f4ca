"""Deterministic, name-derived weights for parity tests and benchmarks.

Every tensor is filled from its own name, shape and a salt, so two independent
implementations with the same parameter names get bit-identical weights on
any machine (the rule of ``tests/fixtures/golden/README.md``):

1. ``seed = (crc32(name) XOR salt) & 0xFFFFFFFF`` (uint64);
2. element ``i`` (row-major): ``z = splitmix64((seed << 32) + i)`` (uint64 wrap-around);
3. ``u = float32(z >> 40) * 2**-24``; ``unit = (2u - 1) * sqrt(3)`` (float32);
4. by kind: 0-/1-d ``...gamma`` -> ``0.1 + 0.02 unit``; 0-/1-d ``...weight`` ->
   ``1 + 0.1 unit``; other 0-/1-d -> ``0.02 unit``; first dim 1 ->
   ``0.5 unit``; otherwise ``unit / sqrt(prod(shape[1:]))`` (times 0.05 for
   names ending in ``flow_head.weight``).

Two buffer kinds of VGGT-Omega keep their defined values instead
(``tests/fixtures/golden/omega/README.md``): ``*.attn.qkv.bias_mask`` (1 on
the q and v thirds, 0 on the k third) and ``*.rope_embed.periods``
(``float32(100 ** (2j / (D/2)))`` for ``j < D/4``, D = 4 * length).
"""

from __future__ import annotations

import math
import zlib
from typing import Iterable, Mapping

import numpy as np
import torch

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def rule_unit(name: str, numel: int, salt: int = 0, chunk: int = 1 << 22) -> np.ndarray:
    """The rule's standardized float32 stream (mean 0, std 1) for tensor ``name``."""
    seed = np.uint64((zlib.crc32(name.encode("utf-8")) ^ salt) & 0xFFFFFFFF)
    out = np.empty(numel, dtype=np.float32)
    base = seed << np.uint64(32)
    scale = np.float32(2.0**-24)
    sqrt3 = np.float32(math.sqrt(3.0))
    for start in range(0, numel, chunk):
        stop = min(numel, start + chunk)
        with np.errstate(over="ignore"):
            idx = base + np.arange(start, stop, dtype=np.uint64)
        u = (_splitmix64(idx) >> np.uint64(40)).astype(np.float32) * scale
        out[start:stop] = (np.float32(2.0) * u - np.float32(1.0)) * sqrt3
    return out


def defined_buffer(name: str, shape: Iterable[int]) -> torch.Tensor | None:
    """The defined value of a VGGT-Omega buffer the rule leaves alone, or ``None`` for any other tensor."""
    shape = tuple(int(s) for s in shape)
    if name.endswith("attn.qkv.bias_mask") and len(shape) == 1 and shape[0] % 3 == 0:
        mask = torch.ones(shape, dtype=torch.float32)
        mask[shape[0] // 3: 2 * shape[0] // 3] = 0.0
        return mask
    if name.endswith("rope_embed.periods") and len(shape) == 1:
        D = 4 * shape[0]
        return torch.from_numpy((100.0 ** (2 * np.arange(shape[0]) / (D / 2))).astype(np.float32))
    return None


def rule_tensor(name: str, shape: Iterable[int], salt: int = 0) -> torch.Tensor:
    """One tensor of the weight rule, float32 (the two defined VGGT-Omega buffers excepted)."""
    shape = tuple(int(s) for s in shape)
    defined = defined_buffer(name, shape)
    if defined is not None:
        return defined
    unit = rule_unit(name, int(np.prod(shape, dtype=np.int64)), salt)
    if len(shape) <= 1:
        if name.endswith("gamma"):
            values = np.float32(0.1) + np.float32(0.02) * unit
        elif name.endswith("weight"):
            values = np.float32(1.0) + np.float32(0.1) * unit
        else:
            values = np.float32(0.02) * unit
    elif shape[0] == 1:
        values = np.float32(0.5) * unit
    else:
        values = unit / np.float32(math.sqrt(float(np.prod(shape[1:]))))
        if name.endswith("flow_head.weight"):
            values = values * np.float32(0.05)
    return torch.from_numpy(values.astype(np.float32).reshape(shape))


def rule_state_dict(shapes: Mapping[str, Iterable[int]] | torch.nn.Module, salt: int = 0) -> dict[str, torch.Tensor]:
    """Rule weights for every name of a state dict (or of a module's state dict)."""
    if isinstance(shapes, torch.nn.Module):
        shapes = {k: tuple(v.shape) for k, v in shapes.state_dict().items()}
    return {name: rule_tensor(name, shape, salt) for name, shape in shapes.items()}


def load_rule_weights(model: torch.nn.Module, salt: int = 0) -> torch.nn.Module:
    """Fill ``model`` in place with the rule's weights (strict) and return it."""
    model.load_state_dict(rule_state_dict(model, salt), strict=True)
    return model
