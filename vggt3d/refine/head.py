"""Tracks from the model's track head, with query points in several frames (not only the first).

The aggregator runs once; the track head's feature maps are computed once;
then for each query frame ``q`` the tracker runs on the feature maps reordered
so that ``q`` comes first (the tracker follows queries of its first frame), and
the result is put back in input order. Observations below the visibility or
confidence thresholds are dropped.

Convention: query points on a regular grid over each query frame's image
content; observations in original pixels with centres at integers.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from ..io.images import ImageTransform
from .tracks import Observations

__all__ = ["head_tracks", "query_frames"]

log = logging.getLogger(__name__)


def query_frames(S: int, count: int) -> list[int]:
    """``count`` frames spread evenly over ``0..S-1`` (always including the first)."""
    count = max(1, min(int(count), S))
    return sorted({round(float(x)) for x in np.linspace(0, S - 1, count)})


def _grid(transform: ImageTransform, n: int) -> np.ndarray:
    """``[n * n, 2]`` model pixels on a regular grid over the image content."""
    x0, y0, x1, y1 = transform.content_box_xyxy
    xs = x0 + (np.arange(n) + 0.5) * (x1 - x0) / n - 0.5
    ys = y0 + (np.arange(n) + 0.5) * (y1 - y0) / n - 0.5
    return np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)


def head_tracks(model: Any, images: torch.Tensor, transforms: list[ImageTransform], num_query_frames: int = 4,
                grid: int = 16, min_visibility: float = 0.5, min_confidence: float = 0.5) -> Observations:
    """Tracks of a ``grid x grid`` of queries in each of ``num_query_frames`` frames.

    Args:
        model: a :class:`vggt3d.VGGT3D` with a track head.
        images: ``[S, 3, H, W]`` the model input (as :func:`vggt3d.reconstruct` prepared it).
        transforms: per frame, model pixels <-> original pixels.

    Returns observations (original pixels) of tracks with at least two kept observations.
    """
    if "track" not in model.heads():
        raise ValueError("this model has no track head; use tracks_from='features'")
    S, _, H, W = images.shape
    device = next(model.parameters()).device
    with torch.inference_mode():
        tokens = model.forward_intermediates(images.to(device)[None], model.head_layers(track=True))
        frames = query_frames(S, num_query_frames)
        queries = {q: torch.from_numpy(_grid(transforms[q], grid)).float().to(device)[None] for q in frames}
        tracked = model.forward_tracks(tokens, (H, W), queries)
        parts = []
        for q in frames:
            uv = tracked[q]["track"][0].float().cpu().numpy()  # [S, N, 2] model pixels, input order
            vis = tracked[q]["vis"][0].float().cpu().numpy()  # [S, N]
            conf = tracked[q]["conf"][0].float().cpu().numpy()
            keep = (vis >= min_visibility) & (conf >= min_confidence) & np.isfinite(uv).all(axis=-1)
            keep[q] = True  # the query itself
            frame, point = np.nonzero(keep)
            uv_orig = np.stack([transforms[f].model_to_original_points(uv[f, p]) for f, p in zip(frame, point)]
                               ) if len(frame) else np.zeros((0, 2))
            inside = np.array([_inside(transforms[f], xy) for f, xy in zip(frame, uv_orig)], dtype=bool)
            parts.append(Observations(point[inside].astype(np.int64), frame[inside].astype(np.int64),
                                      uv_orig[inside].reshape(-1, 2), "head").select(slice(None)))
    obs = Observations.concatenate(parts, "head").min_length(2)
    log.debug("track head: %d tracks, %d observations from %d query frames", obs.num_tracks, len(obs), len(parts))
    return obs


def _inside(transform: ImageTransform, xy: np.ndarray) -> bool:
    return bool(-0.5 <= xy[0] <= transform.original_width - 0.5 and -0.5 <= xy[1] <= transform.original_height - 0.5)
