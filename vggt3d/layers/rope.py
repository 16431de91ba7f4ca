"""2D rotary position embeddings (RoPE, Su et al. 2021): VGGT's (CroCo v2 style) and DINOv3's.

:class:`RotaryEmbedding2D` (VGGT-1B): integer positions.

Each attention head's features are split in two halves. The first half is
rotated by the token's row position, the second by its column position. Within
a half of ``d`` features the frequencies are ``base ** (-2k/d)`` for
``k < d/2``, laid out as ``[f, f]`` and applied as
``x * cos(pos * f) + rotate_half(x) * sin(pos * f)`` with
``rotate_half([a, b]) = [-b, a]``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def grid_positions(num_frames: int, h: int, w: int, num_special: int, device: torch.device | None = None) -> torch.Tensor:
    """Integer (row, col) positions of the tokens of ``num_frames`` frames.

    Patch ``(i, j)`` gets ``(i + 1, j + 1)``; the ``num_special`` leading tokens
    (camera, registers) get ``(0, 0)``. Returns ``[num_frames, num_special + h*w, 2]`` (long).
    """
    rows = torch.arange(h, device=device)
    cols = torch.arange(w, device=device)
    patch = torch.cartesian_prod(rows, cols) + 1  # [h*w, 2], row-major
    special = torch.zeros(num_special, 2, dtype=patch.dtype, device=device)
    pos = torch.cat([special, patch], dim=0)  # [P, 2]
    return pos.unsqueeze(0).expand(num_frames, -1, -1)


class RotaryEmbedding2D(nn.Module):
    """Apply 2D RoPE to ``q`` or ``k`` of shape ``[N, heads, P, head_dim]``.

    ``positions``: ``[N, P, 2]`` integer (row, col) per token.
    """

    def __init__(self, base: float = 100.0) -> None:
        super().__init__()
        self.base = base

    def _angles(self, positions: torch.Tensor, half_dim: int, dtype: torch.dtype) -> torch.Tensor:
        """``pos * f_k`` laid out as ``[f, f]``: ``[N, 1, P, half_dim]`` (computed in float32, as stored tables are)."""
        exponents = torch.arange(0, half_dim, 2, device=positions.device).float() / half_dim
        inv_freq = 1.0 / (self.base**exponents)  # [half_dim/2]
        angles = (positions.float()[..., None] * inv_freq).to(dtype)  # [N, P, half_dim/2]
        return torch.cat((angles, angles), dim=-1).unsqueeze(1)

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rows, cols = x.split(half, dim=-1)
        out = []
        for feats, pos in ((rows, positions[..., 0]), (cols, positions[..., 1])):
            angles = self._angles(pos, half, x.dtype)
            out.append(feats * angles.cos() + _rotate_half(feats) * angles.sin())
        return torch.cat(out, dim=-1)


class RopeGrid(NamedTuple):
    """Precomputed DINOv3-style rotation for one ``h x w`` grid: ``cos``/``sin`` ``[h*w, head_dim]`` (float32).

    The first ``prefix`` tokens of every sequence (class/storage or camera/register tokens) are not rotated.
    """

    prefix: int
    cos: torch.Tensor
    sin: torch.Tensor


class DinoRope2D(nn.Module):
    """DINOv3's 2D RoPE (Simeoni et al. 2025), as VGGT-Omega uses it in its encoder and frame attention.

    Buffer ``periods`` ``[D/4]`` = ``base ** (4j / D)`` for head dimension D.
    Patch ``(i, j)`` of an ``h x w`` grid sits at ``y = 2 (i + 0.5) / m - 1``,
    ``x = 2 (j + 0.5) / m - 1`` with ``m = max(h, w)`` (the longer side spans
    (-1, 1)); its angles are ``a = [2 pi y / p, 2 pi x / p]`` (length D/2) and
    ``theta = [a, a]``. The rotation ``v cos(theta) + rotate_half(v) sin(theta)``
    acts across the whole head vector, always in float32.
    """

    def __init__(self, head_dim: int, base: float = 100.0) -> None:
        super().__init__()
        if head_dim % 4:
            raise ValueError(f"RoPE head dim {head_dim} must be a multiple of 4")
        self.head_dim = head_dim
        exponents = 2 * torch.arange(head_dim // 4, dtype=torch.float32) / (head_dim // 2)
        self.register_buffer("periods", float(base) ** exponents)  # [D/4]

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001 - nn.Module's signature
        """Moves follow the module, but ``periods`` stays float32 (RoPE is float32 whatever the weights' dtype)."""
        periods = self.periods
        super()._apply(fn, recurse)
        if self.periods.dtype != torch.float32 and periods.dtype == torch.float32:
            self.periods = periods.to(device=self.periods.device)
        return self

    def grid(self, h: int, w: int, prefix: int, device: torch.device | None = None) -> RopeGrid:
        """The rotation of an ``h x w`` patch grid behind ``prefix`` unrotated tokens."""
        m = max(h, w)
        ys = 2 * ((torch.arange(h, dtype=torch.float32, device=device) + 0.5) / m) - 1  # [h]
        xs = 2 * ((torch.arange(w, dtype=torch.float32, device=device) + 0.5) / m) - 1  # [w]
        coords = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(h * w, 2)  # [h*w, (y, x)]
        periods = self.periods.to(device=device, dtype=torch.float32)
        angles = (2 * math.pi * coords[:, :, None]) / periods  # [h*w, 2, D/4]
        angles = angles.reshape(h * w, -1).repeat(1, 2)  # [h*w, D]
        return RopeGrid(prefix, angles.cos(), angles.sin())

    def forward(self, x: torch.Tensor, grid: RopeGrid) -> torch.Tensor:
        """``x`` ``[N, heads, P, D]`` with ``P = prefix + h*w``; the patch part rotated in float32."""
        head, rest = x[..., :grid.prefix, :], x[..., grid.prefix:, :]
        r = rest.float()
        r = r * grid.cos + _rotate_half(r) * grid.sin
        return torch.cat([head, r.to(x.dtype)], dim=-2)
