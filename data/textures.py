"""World-anchored procedural textures: value noise, checker, stripes, colour ramps (numpy).

A texture is a function of the 3D world position of a surface point only, so
every view of a surface sees the same colours.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

__all__ = ["PATTERNS", "Material", "value_noise"]

Pattern = Literal["noise", "checker", "stripes", "ramp"]
PATTERNS: tuple[str, ...] = ("noise", "checker", "stripes", "ramp")


@dataclass(frozen=True)
class Material:
    """A procedural texture evaluated at world points.

    Convention: the pattern value ``v`` in [0, 1] mixes ``color_a`` (v = 0) and
    ``color_b`` (v = 1); ``scale`` is the pattern period in world units;
    ``direction`` (unit [3]) orients stripes and ramps; ``phase`` [3] shifts the
    lattice so that no axis-aligned surface lies on a pattern boundary;
    ``noise_amount`` in [0, 1] modulates the colour with finer value noise.
    """

    pattern: Pattern
    color_a: np.ndarray
    color_b: np.ndarray
    scale: float
    direction: np.ndarray
    phase: np.ndarray
    noise_amount: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"unknown texture pattern {self.pattern!r}; expected one of {PATTERNS}")
        if not self.scale > 0:
            raise ValueError(f"texture scale must be > 0, got {self.scale}")

    def albedo(self, points: np.ndarray) -> np.ndarray:
        """Colour ``[M, 3]`` float32 in [0, 1] at world ``points [M, 3]``."""
        ones = np.ones(len(points), dtype=np.float32)
        return np.clip(self.shaded(points[:, 0], points[:, 1], points[:, 2], ones), 0.0, 1.0)

    def pattern_value(self, px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Pattern value ``v [M]`` in [0, 1] and the noise modulation factor ``[M]`` (None without noise)."""
        inv = 1.0 / self.scale
        # Pattern space, one array per axis [M] (Python-float scalars keep float32 inputs float32).
        x, y, z = ((p + float(self.phase[i])) * inv for i, p in enumerate((px, py, pz)))
        if self.pattern == "noise":
            v = value_noise(x, y, z, self.seed, octaves=2)
        elif self.pattern == "checker":
            v = ((np.floor(x) + np.floor(y) + np.floor(z)).astype(np.int32) & 1).astype(np.float32)
        else:
            d = [float(c) for c in self.direction]
            along = x * d[0] + y * d[1] + z * d[2]
            if self.pattern == "stripes":
                v = np.clip(np.sin(along * np.float32(2 * np.pi)) * np.float32(2.5) + np.float32(0.5), 0.0, 1.0)
            else:  # ramp
                v = along - np.floor(along)
        if self.noise_amount <= 0:
            return v, None
        s = np.float32(3.7)  # finer grain than the pattern
        n = value_noise(x * s, y * s, z * s, self.seed + 1, octaves=1)
        return v, n * np.float32(2.0 * self.noise_amount) + np.float32(1.0 - self.noise_amount)

    def shaded(self, px: np.ndarray, py: np.ndarray, pz: np.ndarray, light: np.ndarray,
               out: np.ndarray | None = None) -> np.ndarray:
        """``albedo * light`` ``[M, 3]`` at world points given per axis, for a light factor ``[M]``.

        Convention: albedo is ``color_a + v (color_b - color_a)`` times the optional noise
        modulation (which may exceed 1 by ``noise_amount``). Without ``out`` the result
        is float32 (unclipped); with a uint8 ``out [M, 3]`` it is written there as
        ``round(255 * value)`` clipped to [0, 255].
        """
        v, modulation = self.pattern_value(px, py, pz)
        light = light.astype(np.float32, copy=False)
        if modulation is not None:
            light = light * modulation
        lit_v = light * v
        a, b = self.color_a.astype(np.float64), self.color_b.astype(np.float64)
        if out is None:
            return light[:, None] * a.astype(np.float32) + lit_v[:, None] * (b - a).astype(np.float32)  # [M, 3]
        for c in range(3):  # per channel: light * 255 a + light v * 255 (b - a) + 0.5, then truncate
            value = light * float(255.0 * a[c]) + lit_v * float(255.0 * (b[c] - a[c])) + np.float32(0.5)
            out[:, c] = np.clip(value, 0.0, 255.0)
        return out


_LATTICE_BITS = 5  # the noise lattice repeats every 32 units of pattern space
_LATTICE = 1 << _LATTICE_BITS


@lru_cache(maxsize=512)
def _lattice(seed: int) -> np.ndarray:
    """Random values ``[32^3]`` float32 in [0, 1) at the integer lattice points of one noise seed."""
    return np.random.default_rng([seed & 0xFFFFFFFF, 0x7E57]).random(_LATTICE**3, dtype=np.float32)


def value_noise(x: np.ndarray, y: np.ndarray, z: np.ndarray, seed: int, octaves: int = 2) -> np.ndarray:
    """Smooth 3D value noise ``[M]`` in [0, 1) at points ``(x, y, z)`` (each ``[M]``), lattice period 1.

    Convention: random values at integer lattice points (a deterministic table per
    ``seed`` and octave, repeating every 32 units) are interpolated trilinearly with
    smoothstep weights; ``octaves > 1`` adds copies at about twice the frequency and
    half the amplitude (fBm), normalised to [0, 1).
    """
    total = np.zeros(np.shape(x), dtype=np.float32)
    weight_sum = 0.0
    p = [np.asarray(c, dtype=np.float32) for c in (x, y, z)]
    mask = _LATTICE - 1
    for octave in range(octaves):
        table = _lattice(seed * 7919 + octave)
        weights, lo, hi = [], [], []
        for axis, c in enumerate(p):
            base = np.floor(c)
            f = c - base
            weights.append(f * f * (np.float32(3.0) - np.float32(2.0) * f))  # smoothstep
            i = base.astype(np.int32) & mask
            shift = _LATTICE_BITS * axis  # flat index = ix + 32 iy + 1024 iz
            lo.append(i << shift)
            hi.append(((i + 1) & mask) << shift)
        ux, uy, uz = weights
        corners_x = []
        for iy in (lo[1], hi[1]):
            for iz in (lo[2], hi[2]):
                yz = iy + iz
                a, b = table.take(lo[0] + yz), table.take(hi[0] + yz)
                corners_x.append(a + ux * (b - a))
        x00, x01, x10, x11 = corners_x  # indexed [y][z]
        y0 = x00 + uy * (x10 - x00)
        y1 = x01 + uy * (x11 - x01)
        amplitude = np.float32(0.5**octave)
        total += amplitude * (y0 + uz * (y1 - y0))
        weight_sum += float(amplitude)
        p = [c * np.float32(2.03) for c in p]
    return total / np.float32(weight_sum)
