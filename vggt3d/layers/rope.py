"""2D rotary position embedding (RoPE, Su et al. 2021; 2D variant as in CroCo v2 / VGGT).

Each attention head's features are split in two halves. The first half is
rotated by the token's row position, the second by its column position. Within
a half of ``d`` features the frequencies are ``base ** (-2k/d)`` for
``k < d/2``, laid out as ``[f, f]`` and applied as
``x * cos(pos * f) + rotate_half(x) * sin(pos * f)`` with
``rotate_half([a, b]) = [-b, a]``.
"""

from __future__ import annotations

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
