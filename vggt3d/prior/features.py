"""The typed result of :class:`vggt3d.GeometryPrior`: tokens of the chosen layers, the grid, the heads.

Convention: ``B`` clips of ``T`` frames; the model sees every frame resized
(whole frame, no crop, no padding) from the caller's ``input_size = (H, W)``
to ``image_size = (H', W')`` (multiples of the patch size ``p``), a grid of
``grid = (h, w) = (H' / p, W' / p)`` patches. Patch ``(i, j)`` (row i, column j)
covers the caller's pixels ``x in [j W / w, (j + 1) W / w)``, ``y in [i H / h,
(i + 1) H / h)``; its centre is ``((j + 0.5) W / w - 0.5, (i + 0.5) H / h - 0.5)``
(pixel centres at integers). ``C'`` is twice the aggregator width: the frame-
attention half, then the global-attention half.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .windows import Window

__all__ = ["GeometryFeatures"]


@dataclass
class GeometryFeatures:
    """Features of ``B`` clips of ``T`` frames from :class:`vggt3d.GeometryPrior`.

    Attributes:
        patch_tokens: ``{layer: [B, T, h, w, C']}`` patch tokens, row-major grid.
        camera_tokens: ``{layer: [B, T, C']}`` the camera token of each frame.
        register_tokens: ``{layer: [B, T, R, C']}`` the register tokens.
        grid: ``(h, w)`` patches.
        image_size: ``(H', W')`` pixels the model saw.
        input_size: ``(H, W)`` pixels of the caller's frames.
        frame_window: ``[T]`` int64, the window each frame's features come from
            (all zeros for a single pass); see :mod:`vggt3d.prior.windows`.
        windows: the windows, in order.
        heads: ``None`` unless asked for; then on the model grid ``(H', W')``:
            ``pose_enc [B, T, 9]``, ``cam_from_world [B, T, 3, 4]`` (OpenCV axes:
            x right, y down, z forward; frame 0 is the world), ``intrinsics
            [B, T, 3, 3]`` (model pixels), ``depth`` and ``depth_conf [B, T, H', W']``,
            and with query points ``track [B, T, N, 2]`` (model pixels), ``vis``
            and ``track_conf [B, T, N]``. Across windows these are in frame 0's
            camera frame and window 0's scale (see :class:`vggt3d.GeometryPrior`).
    """

    patch_tokens: dict[int, Tensor]
    camera_tokens: dict[int, Tensor]
    register_tokens: dict[int, Tensor]
    grid: tuple[int, int]
    image_size: tuple[int, int]
    input_size: tuple[int, int]
    frame_window: Tensor
    windows: list[Window] = field(default_factory=list)
    heads: dict[str, Tensor] | None = None

    @property
    def layers(self) -> list[int]:
        """The aggregator layers held, ascending."""
        return sorted(self.patch_tokens)

    def flat(self, layer: int) -> Tensor:
        """Patch tokens of ``layer`` as ``[B, T, h*w, C']`` (row-major)."""
        x = self.patch_tokens[layer]
        return x.reshape(*x.shape[:2], -1, x.shape[-1])  # [B, T, h*w, C']

    def to_grid(self, layer: int, size: tuple[int, int] | None = None) -> Tensor:
        """Patch tokens of ``layer`` resampled to ``size`` (default: the caller's ``(H, W)``): ``[B, T, H, W, C']``.

        Convention: bilinear, ``align_corners=False``, so output pixel ``(x, y)``
        reads the patch grid at the position given by the mapping in the module
        docstring (patch centres land exactly on their caller pixel).
        """
        H, W = size if size is not None else self.input_size
        x = self.patch_tokens[layer]
        B, T, h, w, C = x.shape
        grid = x.reshape(B * T, h, w, C).permute(0, 3, 1, 2)  # [B*T, C', h, w]
        up = F.interpolate(grid.float(), size=(H, W), mode="bilinear", align_corners=False).to(x.dtype)
        return up.permute(0, 2, 3, 1).reshape(B, T, H, W, C)  # [B, T, H, W, C']

    def patch_centers(self) -> Tensor:
        """Centre of every patch in the caller's pixels: ``[h, w, 2]`` (x, y), pixel centres at integers."""
        (h, w), (H, W) = self.grid, self.input_size
        ys = (torch.arange(h, dtype=torch.float64) + 0.5) * (H / h) - 0.5
        xs = (torch.arange(w, dtype=torch.float64) + 0.5) * (W / w) - 0.5
        return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # [h, w, 2]

    def to(self, *args: Any, **kwargs: Any) -> "GeometryFeatures":
        """A copy with every tensor moved/cast by ``Tensor.to(*args, **kwargs)`` (integer tensors keep their dtype)."""

        def move(t: Tensor) -> Tensor:
            if t.is_floating_point():
                return t.to(*args, **kwargs)
            return t.to(device=kwargs.get("device", next((a for a in args if isinstance(a, (str, torch.device))), t.device)))

        def tree(d: dict | None) -> dict | None:
            return None if d is None else {k: move(v) for k, v in d.items()}

        return replace(self, patch_tokens=tree(self.patch_tokens), camera_tokens=tree(self.camera_tokens),
                       register_tokens=tree(self.register_tokens), heads=tree(self.heads))
