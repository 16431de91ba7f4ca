"""Image panels for TensorBoard: input, true depth, predicted depth, confidence."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch


def colorize(values: torch.Tensor, mask: torch.Tensor | None = None, cmap: str = "turbo",
             vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """``[H, W]`` -> ``[H, W, 3]`` float RGB in [0, 1] (masked-out pixels black); range from the valid values."""
    from matplotlib import colormaps

    v = values.detach().float().cpu()
    m = torch.isfinite(v) if mask is None else (mask.cpu().bool() & torch.isfinite(v))
    if bool(m.any()):
        lo = float(v[m].min()) if vmin is None else vmin
        hi = float(v[m].max()) if vmax is None else vmax
    else:
        lo, hi = 0.0, 1.0
    x = ((v - lo) / max(hi - lo, 1e-12)).clamp(0, 1).numpy()
    rgb = colormaps[cmap](x)[..., :3]
    rgb[~m.numpy()] = 0.0
    return rgb.astype(np.float32)


def depth_panel(batch: Mapping[str, Any], predictions: Mapping[str, torch.Tensor], sequence: int = 0,
                max_frames: int = 4) -> np.ndarray:
    """Rows: images, true depth, predicted depth (same colour range as the truth), confidence.

    Columns are the first ``max_frames`` frames of ``sequence``. Returns ``[rows*H, cols*W, 3]`` float in [0, 1].
    """
    images = batch["images"][sequence].detach().float().cpu()  # [S, 3, H, W]
    S = min(images.shape[0], max_frames)
    gt = batch["depths"][sequence].detach().float().cpu()
    mask = batch["point_masks"][sequence].cpu()
    pred = predictions["depth"][sequence, ..., 0].detach().float().cpu()
    conf = predictions["depth_conf"][sequence].detach().float().cpu()
    rows = []
    valid = gt[mask]
    lo, hi = (float(valid.min()), float(valid.max())) if valid.numel() else (0.0, 1.0)
    rows.append(np.concatenate([images[s].permute(1, 2, 0).clamp(0, 1).numpy() for s in range(S)], axis=1))
    rows.append(np.concatenate([colorize(gt[s], mask[s], vmin=lo, vmax=hi) for s in range(S)], axis=1))
    rows.append(np.concatenate([colorize(pred[s], vmin=lo, vmax=hi) for s in range(S)], axis=1))
    rows.append(np.concatenate([colorize(torch.log(conf[s]), cmap="viridis") for s in range(S)], axis=1))
    return np.concatenate(rows, axis=0)
