"""DPT dense decoder (Ranftl et al., "Vision Transformers for Dense Prediction", ICCV 2021).

Used by VGGT for the depth head, the point-map head and the track head's
feature extractor. Four aggregator layers are projected to a multi-scale
pyramid (4x, 2x, 1x, 1/2x the patch grid), fused coarse to fine by RefineNet
blocks, and upsampled to the image (or ``1/down_ratio`` of it).
"""

from __future__ import annotations

import math
from typing import Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _interpolate(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize with ``align_corners=True`` (the DPT convention), ``[N, C, H, W]``."""
    return F.interpolate(x, size=tuple(int(s) for s in size), mode="bilinear", align_corners=True)


def uv_position_embedding(channels: int, height: int, width: int, aspect: float, dtype: torch.dtype,
                          device: torch.device, base: float = 100.0) -> torch.Tensor:
    """Sinusoidal embedding of a normalized image grid, ``[channels, height, width]``.

    The grid spans ``x in [-sx, sx]``, ``y in [-sy, sy]`` with ``sx = a / sqrt(a^2+1)``,
    ``sy = 1 / sqrt(a^2+1)`` for image aspect ``a = W / H``, and cell centres at
    ``+-s * (n-1)/n``. The first half of the channels encode x, the second y,
    each as ``[sin(p * w_k), cos(p * w_k)]`` with ``w_k = base ** (-k / (channels/4))``,
    computed in float64.
    """
    diag = math.sqrt(aspect**2 + 1.0)
    span_x, span_y = aspect / diag, 1.0 / diag
    xs = torch.linspace(-span_x * (width - 1) / width, span_x * (width - 1) / width, width, dtype=dtype, device=device)
    ys = torch.linspace(-span_y * (height - 1) / height, span_y * (height - 1) / height, height, dtype=dtype,
                        device=device)
    quarter = channels // 4
    omega = 1.0 / base ** (torch.arange(quarter, dtype=torch.float64, device=device) / quarter)  # [c/4]

    def embed(p: torch.Tensor) -> torch.Tensor:
        angles = p.double()[:, None] * omega[None]  # [n, c/4]
        return torch.cat([angles.sin(), angles.cos()], dim=-1).float()  # [n, c/2]

    ex = embed(xs)[None, :, :].expand(height, width, -1)  # [height, width, c/2]
    ey = embed(ys)[:, None, :].expand(height, width, -1)
    return torch.cat([ex, ey], dim=-1).permute(2, 0, 1).to(dtype)  # [c, height, width]


class ResidualConvUnit(nn.Module):
    """``conv2(relu(conv1(relu(x)))) + relu(x)`` (VGGT-1B) or ``... + x`` (``relu_skip=False``, VGGT-Omega).

    VGGT-1B's skip path carries ``relu(x)``: the original applies an in-place
    ReLU to its input, and the released weights were trained with that
    behaviour; VGGT-Omega's ReLU is not in place.
    """

    def __init__(self, features: int, relu_skip: bool = True) -> None:
        super().__init__()
        self.relu_skip = relu_skip
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = F.relu(x)
        return self.conv2(F.relu(self.conv1(r))) + (r if self.relu_skip else x)


class FusionBlock(nn.Module):
    """RefineNet-style fusion: ``out_conv(resize(RCU2(x0 + RCU1(x1))))``."""

    def __init__(self, features: int, has_skip: bool = True, relu_skip: bool = True) -> None:
        super().__init__()
        if has_skip:
            self.resConfUnit1 = ResidualConvUnit(features, relu_skip)
        self.resConfUnit2 = ResidualConvUnit(features, relu_skip)
        self.out_conv = nn.Conv2d(features, features, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None, size: Sequence[int] | None = None):
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        x = _interpolate(x, size if size is not None else (x.shape[-2] * 2, x.shape[-1] * 2))
        return self.out_conv(x)


class DPTHead(nn.Module):
    """Aggregator layers -> dense map.

    Input: ``{layer: [B, S, P, 2C]}`` tokens and the image size; output either
    features ``[B, S, features, H/r, W/r]`` (``feature_only``) or the activated
    prediction ``[B, S, H, W, output_dim - 1]`` and confidence ``[B, S, H, W]``
    (channels last, as the original returns them).

    ``frames_chunk_size``: frames decoded at a time (0 = all at once). The
    full-resolution activations of the decoder dominate inference memory, so
    the default decodes one frame at a time; results do not depend on it.

    ``activation``: ``"exp"`` (depth, ``exp(x)``) or ``"inv_log"`` (points,
    ``sign(x) * (exp(|x|) - 1)``); the confidence is ``1 + exp(x_last)``.
    """

    def _build_front_end(self, dim_in: int, out_channels: Sequence[int], features: int, norm_eps: float = 1e-5,
                         relu_skip: bool = True) -> None:
        """Token norm, per-layer 1x1 projections, the 4x/2x/1x/0.5x resize pyramid and the fusion blocks.

        Shared by both DPT decoders; ``relu_skip`` is VGGT-1B's in-place ReLU on the residual path.
        """
        oc = list(out_channels)
        self.norm = nn.LayerNorm(dim_in, eps=norm_eps)
        self.projects = nn.ModuleList(nn.Conv2d(dim_in, c, 1) for c in oc)
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(oc[0], oc[0], kernel_size=4, stride=4),  # 4x up
            nn.ConvTranspose2d(oc[1], oc[1], kernel_size=2, stride=2),  # 2x up
            nn.Identity(),
            nn.Conv2d(oc[3], oc[3], kernel_size=3, stride=2, padding=1),  # 2x down
        ])
        self.scratch = nn.Module()
        for i, c in enumerate(oc, start=1):
            setattr(self.scratch, f"layer{i}_rn", nn.Conv2d(c, features, 3, padding=1, bias=False))
            setattr(self.scratch, f"refinenet{i}", FusionBlock(features, has_skip=i != 4, relu_skip=relu_skip))

    def __init__(self, dim_in: int, patch_size: int, features: int, out_channels: Sequence[int],
                 layers: Sequence[int], output_dim: int = 4, activation: Literal["exp", "inv_log"] = "inv_log",
                 pos_embed: bool = True, feature_only: bool = False, down_ratio: int = 1,
                 frames_chunk_size: int = 1) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.layers = list(layers)
        self.activation = activation
        self.use_pos_embed = pos_embed
        self.feature_only = feature_only
        self.down_ratio = down_ratio
        self.frames_chunk_size = frames_chunk_size
        self._build_front_end(dim_in, out_channels, features)
        if feature_only:
            self.scratch.output_conv1 = nn.Conv2d(features, features, 3, padding=1)
        else:
            self.scratch.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
            self.scratch.output_conv2 = nn.Sequential(
                nn.Conv2d(features // 2, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, output_dim, 1)
            )

    def _add_pos(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        emb = uv_position_embedding(x.shape[1], x.shape[2], x.shape[3], W / H, x.dtype, x.device)
        return x + 0.1 * emb[None]

    def _fuse(self, tokens: Sequence[torch.Tensor], H: int, W: int, upsample_last: bool = True) -> torch.Tensor:
        """The shared front end: tokens (patches only) ``4 x [N, h*w, 2C]`` -> fused map ``[N, F, 8h, 8w]``.

        ``upsample_last=False`` (VGGT-Omega): the last fusion keeps ``l1``'s size, ``[N, F, 4h, 4w]``.
        """
        h, w = H // self.patch_size, W // self.patch_size
        pyramid = []
        for i, x in enumerate(tokens):
            x = self.norm(x)
            x = x.transpose(1, 2).reshape(x.shape[0], x.shape[-1], h, w)  # [N, 2C, h, w]
            x = self.projects[i](x)
            if self.use_pos_embed:
                x = self._add_pos(x, H, W)
            pyramid.append(self.resize_layers[i](x))
        s = self.scratch
        l1, l2, l3, l4 = (getattr(s, f"layer{i + 1}_rn")(x) for i, x in enumerate(pyramid))
        del pyramid
        out = s.refinenet4(l4, size=l3.shape[-2:])
        out = s.refinenet3(out, l3, size=l2.shape[-2:])
        out = s.refinenet2(out, l2, size=l1.shape[-2:])
        return s.refinenet1(out, l1, size=None if upsample_last else l1.shape[-2:])

    def _decode(self, tokens: Sequence[torch.Tensor], H: int, W: int) -> torch.Tensor:
        """Tokens (patches only) ``4 x [N, h*w, 2C]`` -> ``[N, features or out, H/r, W/r]``."""
        h, w = H // self.patch_size, W // self.patch_size
        s = self.scratch
        out = s.output_conv1(self._fuse(tokens, H, W))
        out = _interpolate(out, (h * self.patch_size // self.down_ratio, w * self.patch_size // self.down_ratio))
        if self.use_pos_embed:
            out = self._add_pos(out, H, W)
        if self.feature_only:
            return out
        return s.output_conv2(out)

    def forward(self, tokens: Mapping[int, torch.Tensor], image_hw: tuple[int, int], patch_start_idx: int):
        H, W = image_hw
        first = tokens[self.layers[0]]
        B, S = first.shape[:2]
        chunk = S if self.frames_chunk_size <= 0 else self.frames_chunk_size
        outs = []
        for s0 in range(0, S, chunk):
            sel = [tokens[i][:, s0:s0 + chunk, patch_start_idx:] for i in self.layers]  # [B, s, h*w, 2C]
            n = sel[0].shape[1]
            sel = [t.reshape(B * n, t.shape[2], t.shape[3]) for t in sel]  # [B*s, h*w, 2C]
            out = self._decode(sel, H, W)
            outs.append(out.reshape(B, n, *out.shape[1:]))  # [B, s, ch, H', W']
        out = torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]  # [B, S, ch, H', W']
        if self.feature_only:
            return out
        out = out.permute(0, 1, 3, 4, 2)  # [B, S, H, W, ch]
        value, conf = out[..., :-1], out[..., -1]
        if self.activation == "exp":
            value = torch.exp(value)
        else:
            value = torch.sign(value) * torch.expm1(value.abs())
        return value, 1.0 + torch.exp(conf)
