"""Online (causal) 3D-consistency: score frames as they are produced, e.g. inside a world model's rollout.

:class:`OnlineScorer` takes one frame's geometry at a time (depth, camera,
intrinsics; optionally confidence and tracks) and returns that frame's score
at once. The guarantee, tested:

- the score of frame ``t`` returned by :meth:`OnlineScorer.push` equals
  ``consistency_from_geometry(<frames 0..t>).per_frame["score"][t]``: the
  score of frame t in the report of the prefix that ends with it (later frames
  never change it; frame 0 alone has no score: ``None``);
- :meth:`OnlineScorer.report` equals ``consistency_from_geometry`` of all
  frames pushed so far (every per-frame value and summary).

Equal means to float64 rounding: counts are integers, so the pixel tests, and
with them the depth agreement, are identical; the lifted track points are
computed one frame at a time instead of in one batch.

Cost of a push of frame t: the depth pairs of frame t with the earlier frames
(``max_gap`` of them when set; the same pixels as the offline score), plus a
median over the valid depth values seen so far (the scene scale of the
smoothness term). Memory: each frame's depth map and world points while a
later frame can still be compared with it (the last ``max_gap`` frames, or
all), plus every frame's valid depth values and confidence (the summary
statistics); with tracks, the ``[T, T, N]`` reprojection errors.

With a causal model (``vggt3d.GeometryPrior(..., causal=True)`` or a model
stream) the geometry of frame t depends only on frames 0..t, so the model's
online scores equal scoring each prefix of the clip end to end. See
``docs/world_models.md`` for the use inside a generation loop.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .scoring import (PAIR_COUNTS, ConsistencyReport, _frame_scores, _lift_tracks, _pair_counts, _prepare_depth,
                      _report, _reproject_tracks, _smoothness, _source_points, _track_agreement, _track_tol)

__all__ = ["OnlineScorer"]


def _frames(name: str, x: Tensor | None, dims: int) -> Tensor | None:
    """``x`` with a leading frame dimension: one frame (``dims`` dims) or several (``dims + 1``)."""
    if x is None:
        return None
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == dims:
        return x.unsqueeze(0)
    if x.dim() != dims + 1:
        raise ValueError(f"{name} must have {dims} dimensions (one frame) or {dims + 1} (several), "
                         f"got shape {list(x.shape)}")
    return x


class _Grow:
    """A ``[T, T, ...]`` float64 matrix that grows by one row and column per frame (capacity doubles)."""

    def __init__(self, tail: tuple[int, ...] = (), fill: float = 0.0) -> None:
        self.tail, self.fill, self.size = tail, fill, 0
        self.data = torch.full((8, 8, *tail), fill, dtype=torch.float64)

    def grow(self) -> None:
        if self.size == self.data.shape[0]:
            cap = 2 * self.size
            data = torch.full((cap, cap, *self.tail), self.fill, dtype=torch.float64)
            data[: self.size, : self.size] = self.data
            self.data = data
        self.size += 1

    @property
    def value(self) -> Tensor:
        return self.data[: self.size, : self.size]


class OnlineScorer:
    """Per-frame 3D-consistency scores of a growing clip (see the module docstring for the guarantee).

    Args: as :func:`vggt3d.prior.consistency_from_geometry` (``rel_tol``,
    ``max_gap``, ``track_tol``, ``smooth_tol``, ``conf_quantile``,
    ``pixel_stride``); validated here, before any frame.

    Convention: ``cam_from_world = [R | t]``, OpenCV axes (x right, y down, z
    forward); intrinsics and tracks in pixels of the depth maps, pixel centres
    at integers; depth is camera z, ``<= 0`` invalid.

    Example::

        scorer = OnlineScorer(max_gap=8)
        for t in range(T):
            frame = world_model.step(...)                       # generate frame t
            geo = stream.push(frame)                            # causal geometry of frame t
            s = scorer.push(geo["depth"], geo["cam_from_world"], geo["intrinsics"])[0]
            # s is None for frame 0, then the score of frame t in [0, 1]
        report = scorer.report()                                # == consistency_from_geometry(all frames)
    """

    def __init__(self, *, rel_tol: float = 0.05, max_gap: int | None = None, track_tol: float | None = None,
                 smooth_tol: float = 0.5, conf_quantile: float = 0.0, pixel_stride: int = 1) -> None:
        if not 0 <= conf_quantile < 1:
            raise ValueError(f"conf_quantile must be in [0, 1), got {conf_quantile}")
        if not rel_tol > 0 or pixel_stride < 1 or (max_gap is not None and max_gap < 1):
            raise ValueError("rel_tol must be > 0, pixel_stride >= 1 and max_gap >= 1")
        if track_tol is not None and not track_tol > 0:
            raise ValueError(f"track_tol must be > 0, got {track_tol}")
        self.rel_tol, self.max_gap, self.track_tol = rel_tol, max_gap, track_tol
        self.smooth_tol, self.conf_quantile, self.pixel_stride = smooth_tol, conf_quantile, pixel_stride
        self.reset()

    def reset(self) -> None:
        """Forget every frame (start a new clip with the same settings)."""
        self.size: tuple[int, int] | None = None
        self._has_conf: bool | None = None
        self._num_tracks: int | None = None
        self._depth: dict[int, Tensor] = {}  # frame -> [H, W] float64, while a later frame may be compared with it
        self._points: dict[int, Tensor] = {}  # frame -> [n, 3] valid world points (strided)
        self._cams: list[Tensor] = []  # [3, 4] float64
        self._intr: list[Tensor] = []  # [3, 3] float64
        self._valid_depths: list[Tensor] = []  # valid depth values, in the input dtype (exact)
        self._conf: list[Tensor] = []  # [H, W], in the input dtype
        self._counts = {k: _Grow() for k in PAIR_COUNTS}
        self._tracks: list[tuple[Tensor, Tensor, Tensor]] = []  # (world [N, 3], ok [N], tracks [N, 2]) per frame
        self._err: _Grow | None = None
        self.scores: list[float | None] = []  #: each frame's score when it arrived (frame 0: None)

    @property
    def num_frames(self) -> int:
        return len(self._cams)

    def settings(self) -> dict[str, Any]:
        H, W = self.size or (0, 0)
        return dict(rel_tol=self.rel_tol, max_gap=self.max_gap, track_tol=self.track_tol, smooth_tol=self.smooth_tol,
                    conf_quantile=self.conf_quantile, pixel_stride=self.pixel_stride, image_size=[H, W],
                    num_frames=self.num_frames)

    # ------------------------------------------------------------------ input
    def _check(self, depth: Tensor, cam_from_world: Tensor, intrinsics: Tensor, conf: Tensor | None,
               tracks: Tensor | None, track_visibility: Tensor | None) -> None:
        s, H, W = depth.shape
        if tuple(cam_from_world.shape) != (s, 3, 4) or tuple(intrinsics.shape) != (s, 3, 3):
            raise ValueError(f"cam_from_world must be [3, 4] and intrinsics [3, 3] per frame ({s} frames), got "
                             f"{list(cam_from_world.shape)} and {list(intrinsics.shape)}")
        if self.size is not None and (H, W) != self.size:
            raise ValueError(f"depth maps of this clip are {self.size[0]}x{self.size[1]}, got {H}x{W}: every frame "
                             f"of a clip must have the size of the first (call reset() for a new clip)")
        if conf is not None and tuple(conf.shape) != (s, H, W):
            raise ValueError(f"conf must be [{H}, {W}] per frame like depth, got {list(conf.shape)}")
        if self._has_conf is not None and (conf is not None) != self._has_conf:
            raise ValueError("conf must be given for every frame of a clip or for none")
        if tracks is not None:
            if tracks.dim() != 3 or tracks.shape[0] != s or tracks.shape[-1] != 2:
                raise ValueError(f"tracks must be [N, 2] per frame, got {list(tracks.shape)}")
            if track_visibility is not None and tuple(track_visibility.shape) != tuple(tracks.shape[:2]):
                raise ValueError(f"track_visibility must be [N] per frame like tracks, got "
                                 f"{list(track_visibility.shape)}")
        if self._num_tracks is not None or self.num_frames and tracks is not None:
            n = None if tracks is None else tracks.shape[1]
            if n != self._num_tracks:
                raise ValueError(f"this clip has {self._num_tracks} tracks per frame, got {n}: tracks must be given "
                                 f"for every frame or for none, with the same N")

    def push(self, depth: Tensor, cam_from_world: Tensor, intrinsics: Tensor, conf: Tensor | None = None,
             tracks: Tensor | None = None, track_visibility: Tensor | None = None) -> list[float | None]:
        """Add one frame (``depth [H, W]``, ``cam_from_world [3, 4]``, ``intrinsics [3, 3]``, ``conf [H, W]``,
        ``tracks [N, 2]``, ``track_visibility [N]``) or several (a leading frame dimension on each).

        Returns the score of each added frame over the prefix that ends with it
        (``None`` for frame 0, which has nothing to be compared with).

        Raises:
            ValueError: a frame of another size than the first, shapes that do
                not match, or conf / tracks given for some frames only.
        """
        depth = _frames("depth", depth, 2)
        cam_from_world, intrinsics = _frames("cam_from_world", cam_from_world, 2), _frames("intrinsics", intrinsics, 2)
        conf, tracks = _frames("conf", conf, 2), _frames("tracks", tracks, 2)
        track_visibility = _frames("track_visibility", track_visibility, 1)
        self._check(depth, cam_from_world, intrinsics, conf, tracks, track_visibility)
        out = []
        for k in range(depth.shape[0]):
            pick = (lambda x: None if x is None else x[k : k + 1])  # noqa: E731
            out.append(self._push_one(depth[k : k + 1], cam_from_world[k], intrinsics[k], pick(conf), pick(tracks),
                                      pick(track_visibility)))
        return out

    def _push_one(self, depth: Tensor, cam: Tensor, K: Tensor, conf: Tensor | None, tracks: Tensor | None,
                  vis: Tensor | None) -> float | None:
        in_dtype = depth.dtype if depth.is_floating_point() else torch.float64
        depth, valid, conf64 = _prepare_depth(depth, conf, self.conf_quantile)  # [1, H, W]
        device = depth.device
        cam = cam.detach().to(device, torch.float64)
        K = K.detach().to(device, torch.float64)
        t = self.num_frames
        if t == 0:
            self.size, self._has_conf = tuple(depth.shape[-2:]), conf is not None
            self._num_tracks = None if tracks is None else tracks.shape[1]
            if tracks is not None:
                self._err = _Grow((tracks.shape[1],), float("nan"))
        points = _source_points(depth, valid, cam[None], K[None], self.pixel_stride)[0]
        self._cams.append(cam)
        self._intr.append(K)
        self._valid_depths.append(depth[valid].to(in_dtype))
        if conf is not None:
            self._conf.append(conf[0].detach())
        for g in self._counts.values():
            g.grow()
        # Pairs with the earlier frames in reach: the new frame as source, then as target.
        earlier = [j for j in sorted(self._depth) if self.max_gap is None or t - j <= self.max_gap]
        if earlier:
            cams, intr = torch.stack([self._cams[j] for j in earlier]), torch.stack([self._intr[j] for j in earlier])
            if points.shape[0]:
                depths = torch.stack([self._depth[j] for j in earlier])  # [J, H, W]
                for name, v in _pair_counts(points, depths, cams, intr, self.rel_tol).items():
                    self._counts[name].data[t, earlier] = v
            for j in earlier:
                if self._points[j].shape[0]:
                    for name, v in _pair_counts(self._points[j], depth, cam[None], K[None], self.rel_tol).items():
                        self._counts[name].data[j, t] = v[0]
        self._depth[t], self._points[t] = depth[0], points
        if self.max_gap is not None:  # frames no later frame will be compared with
            for j in [j for j in self._depth if t + 1 - j > self.max_gap]:
                del self._depth[j], self._points[j]
        track_part = None
        if tracks is not None:
            track_part = self._push_tracks(depth, cam, K, tracks, vis)
        score = self._score_last(track_part)
        self.scores.append(score)
        return score

    def _push_tracks(self, depth: Tensor, cam: Tensor, K: Tensor, tracks: Tensor, vis: Tensor | None) -> Tensor:
        """Add the new frame's rows and columns of the track errors; its track agreement ``[1]``."""
        device = depth.device
        tracks = tracks.detach().to(device, torch.float64)  # [1, N, 2]
        vis = (torch.ones(tracks.shape[:2], dtype=torch.bool, device=device) if vis is None
               else vis.detach().to(device).bool())
        world, ok = _lift_tracks(depth, cam[None], K[None], tracks, vis)  # [1, N, 3], [1, N]
        self._tracks.append((world[0], ok[0], tracks[0]))
        err = self._err
        err.grow()
        t = err.size - 1
        all_world = torch.stack([w for w, _, _ in self._tracks])  # [t+1, N, 3]
        all_ok = torch.stack([o for _, o, _ in self._tracks])
        all_tracks = torch.stack([tr for _, _, tr in self._tracks])
        cams, intr = torch.stack(self._cams), torch.stack(self._intr)
        same = torch.zeros(t + 1, 1, dtype=torch.bool, device=device)
        same[t] = True
        err.data[: t + 1, t] = _reproject_tracks(all_world, all_ok, cam[None], K[None], tracks, ok, same)[:, 0].cpu()
        same_row = torch.zeros(1, t + 1, dtype=torch.bool, device=device)
        same_row[0, t] = True
        err.data[t, : t + 1] = _reproject_tracks(world, ok, cams, intr, all_tracks, all_ok, same_row)[0].cpu()
        tol = _track_tol(self.track_tol, *self.size)
        return _track_agreement(err.value[:, t].reshape(1, -1), tol)

    def _scene_scale(self) -> float:
        values = torch.cat(self._valid_depths).double()
        return float(values.median()) if values.numel() else 1.0

    def _score_last(self, track_part: Tensor | None) -> float | None:
        t = self.num_frames - 1
        if t == 0:
            return None
        counts = {k: g.value for k, g in self._counts.items()}
        smooth, _ = _smoothness(torch.stack(self._cams).cpu(), self._scene_scale(), self.smooth_tol)
        _, score = _frame_scores({k: c[t].sum().reshape(1) for k, c in counts.items()},
                                 {k: c[:, t].sum().reshape(1) for k, c in counts.items()}, track_part, smooth[t:])
        value = float(score[0])
        return value if math.isfinite(value) else None

    # ------------------------------------------------------------------ output
    def report(self) -> ConsistencyReport:
        """The report of all frames pushed so far: equal to ``consistency_from_geometry`` of them.

        Raises:
            ValueError: fewer than 2 frames.
        """
        if self.num_frames < 2:
            raise ValueError(f"consistency needs at least 2 frames, got {self.num_frames}")
        counts = {k: g.value.clone() for k, g in self._counts.items()}
        conf = torch.stack(self._conf).double() if self._conf else None
        err = self._err.value.clone() if self._err is not None else None
        return _report(counts, torch.cat(self._valid_depths).double(), torch.stack(self._cams), conf, err,
                       self.settings())
