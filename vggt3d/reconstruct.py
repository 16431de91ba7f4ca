"""Reconstruction from images or a video: cameras, depth, confidence, points, colours and tracks.

``reconstruct(inputs, model=...)`` runs the model once over all frames and
returns a :class:`Reconstruction` whose cameras are expressed at each input's
*original* resolution (the resize, crop and padding of the loader are undone
exactly in the intrinsics); ``Reconstruction.save(dir)`` writes the standard
files (see :mod:`vggt3d.export`). ``vggt3d reconstruct`` is a thin layer over both.

Convention: ``cam_from_world`` 4x4 with OpenCV axes (x right, y down, z
forward), the world frame is the camera of the first frame; intrinsics in
pixels with pixel centres at integer coordinates (``(0, 0)`` is the centre of
the top-left pixel); depth is the camera z. Units are the model's (VGGT
normalises scenes; there is no metric scale).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import types
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .io.images import ImageTransform, PreprocessedImages
from .io.inputs import load_frames
from .result import Reconstruction, Tracks
from .pointcloud import content_mask, depth_points, point_cloud, select_points
from .runtime import (MemoryEstimateError, ReconstructionError, _format_bytes, available_memory, estimate_memory,
                      peak_memory, resolve_device, resolve_dtype)

__all__ = ["MemoryEstimateError", "Reconstruction", "ReconstructionError", "Tracks", "reconstruct"]

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = "facebook/VGGT-1B"
DEFAULT_GRID = 16
MIN_FOV, MAX_FOV = np.deg2rad(1.0), np.deg2rad(170.0)


# ------------------------------------------------------------------ tracks
def _query_points(spec: Any, transform: ImageTransform) -> np.ndarray:
    """Query pixels ``[N, 2]`` in frame 0 at original resolution from ``"grid"``, ``"grid:N"``, a file or an array."""
    if isinstance(spec, str) and (spec == "grid" or spec.startswith("grid:")):
        n = DEFAULT_GRID if spec == "grid" else int(spec.split(":", 1)[1])
        if n < 1:
            raise ValueError(f"tracks grid size must be >= 1, got {spec!r}")
        xs = (np.arange(n) + 0.5) * transform.original_width / n - 0.5
        ys = (np.arange(n) + 0.5) * transform.original_height / n - 0.5
        return np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    if isinstance(spec, str | os.PathLike):
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"tracks must be 'grid', 'grid:N' or a file of x y pixels; {spec} does not exist")
        try:
            delimiter = "," if path.suffix == ".csv" else None
            points = np.load(path) if path.suffix == ".npy" else np.loadtxt(path, delimiter=delimiter, ndmin=2)
        except ValueError as exc:
            raise ValueError(f"cannot read query points from {path} (one 'x y' pair per line): {exc}") from exc
    else:
        points = np.asarray(spec, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"query points must be [N, 2] pixels (x, y), got shape {list(points.shape)}")
    return points


# --------------------------------------------------------------- inference
@contextlib.contextmanager
def _inference_progress(model: Any, enabled: bool, tracking: bool):
    if not enabled:
        yield
        return
    from tqdm.auto import tqdm

    last = max(model.head_layers())  # the aggregator runs up to the last layer any head reads
    agg = model.aggregator
    modules = [m for i in range(last + 1) for m in (agg.frame_blocks[i], agg.global_blocks[i])]
    modules += [h for h in (model.camera_head, model.depth_head, model.point_head) if h is not None]
    if tracking:
        modules.append(model.track_head)
    with tqdm(total=len(modules), desc="inference", unit="step", leave=False) as bar:
        def step(*_: Any) -> None:  # a forward hook must return None (a value would replace the output)
            bar.update(1)

        handles = [m.register_forward_hook(step) for m in modules]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()


def _run_model(model: Any, images: torch.Tensor, device: torch.device, dtype: torch.dtype,
               queries: torch.Tensor | None, progress: bool) -> dict[str, np.ndarray]:
    saved = model.autocast
    model.autocast = False  # the autocast below decides the aggregator's dtype
    ctx = (torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext())
    try:
        with torch.inference_mode(), ctx, _inference_progress(model, progress, queries is not None):
            out = model(images.to(device), query_points=None if queries is None else queries.to(device))
    finally:
        model.autocast = saved
    keys = ("pose_enc", "depth", "depth_conf", "world_points", "world_points_conf", "track", "vis", "conf")
    return {k: out[k][0].float().cpu().numpy() for k in keys if k in out}


def _guess_img_size(model: Any, config: Any) -> int:
    """The model's input size, read without loading weights where possible (else VGGT-1B's)."""
    from .config import ModelConfig
    from .hub import config_from_json_dict, shipped_models

    if hasattr(model, "config"):
        return int(model.config.img_size)
    if config is not None:
        return int((ModelConfig.preset(config) if isinstance(config, str) else config).img_size)
    path = Path(os.path.expanduser(str(model)))
    root = path if path.is_dir() else shipped_models().get(str(model))
    if root is not None and (root / "config.json").is_file():
        with contextlib.suppress(Exception):
            return int(config_from_json_dict(json.loads((root / "config.json").read_text())).img_size)
    return ModelConfig().img_size


def _load_model(model: Any, device: torch.device, config: Any = None) -> Any:
    from .model import VGGT3D

    if isinstance(model, VGGT3D):
        return model.to(device).eval()
    return VGGT3D.from_pretrained(model, config=config, device=device)


def _sane_pose_encoding(pose_enc: np.ndarray) -> np.ndarray:
    """Clamp fields of view to [1, 170] degrees and replace zero quaternions, with a warning.

    A trained model never needs this; untrained or test weights can predict a zero
    field of view (infinite focal length), which would make every output non-finite.
    """
    pose = pose_enc.astype(np.float64).copy()  # [S, 9]
    if not np.isfinite(pose).all():
        raise ReconstructionError("the model predicted non-finite cameras; are the weights a VGGT checkpoint?")
    fov = pose[:, 7:9]
    wild = (fov < MIN_FOV) | (fov > MAX_FOV)
    if wild.any():
        log.warning("the model predicted fields of view outside [1, 170] degrees for %d of %d frames (untrained "
                    "weights?); clamped", int(wild.any(axis=1).sum()), len(pose))
        pose[:, 7:9] = np.clip(fov, MIN_FOV, MAX_FOV)
    null = np.linalg.norm(pose[:, 3:7], axis=1) < 1e-12
    if null.any():
        log.warning("the model predicted a zero rotation quaternion for %d frames; using the identity", null.sum())
        pose[null, 3:7] = [0.0, 0.0, 0.0, 1.0]
    return pose


def _cameras(out: dict[str, np.ndarray], batch: PreprocessedImages, shared: bool) -> tuple[np.ndarray, ...]:
    """``cam_from_world [S, 4, 4]``, intrinsics in model pixels and in original pixels ``[S, 3, 3]`` (float64)."""
    from .geometry import pose_encoding_to_cameras

    H, W = batch.images.shape[-2:]
    cam34, K = pose_encoding_to_cameras(torch.from_numpy(_sane_pose_encoding(out["pose_enc"])), (H, W))
    cam_from_world = np.tile(np.eye(4), (len(K), 1, 1))
    cam_from_world[:, :3] = cam34.numpy()
    K = K.numpy()
    if shared:  # the mean camera, used for unprojection too, so points and observations stay consistent
        K = np.broadcast_to(K.mean(axis=0), K.shape).copy()
    K_orig = np.stack([t.intrinsics_to_original(k) for t, k in zip(batch.transforms, K)])
    return cam_from_world, K, K_orig


def reconstruct(
    inputs: Any,
    model: Any = DEFAULT_WEIGHTS,
    *,
    config: Any = None,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    mode: Literal["crop", "pad"] = "crop",
    points_from: Literal["depth", "pointmap"] = "depth",
    conf_threshold: float = 50.0,
    conf_absolute: bool = False,
    max_points: int | None = 1_000_000,
    tracks: Any = None,
    shared_camera: bool = False,
    fps: float | None = None,
    stride: int = 1,
    max_frames: int | None = None,
    skip_bad: bool = False,
    max_memory: int | None = None,
    progress: bool = False,
    seed: int = 0,
) -> Reconstruction:
    """Reconstruct cameras, depth and a coloured point cloud from images or a video.

    Args:
        inputs: a folder, glob, image file, ``.txt`` list, video, a list of image
            files (see :func:`vggt3d.io.inputs.discover_inputs`), PIL images or
            ``[H, W, 3]`` arrays, or :class:`~vggt3d.io.video.VideoFrames`.
        model: a :class:`vggt3d.VGGT3D`, or what ``VGGT3D.from_pretrained`` takes
            (hub id, directory, file, shipped model name); ``config`` overrides its architecture.
        device, dtype: ``auto`` picks cuda/mps/cpu and bf16/fp16/fp32.
        mode: the loader's ``crop`` or ``pad`` (outputs are at original resolution either way).
        points_from: world points from ``depth`` and cameras (default), or the point-map head.
        conf_threshold: keep points whose confidence is at least this percentile
            (0-100) of all confidences, or this value with ``conf_absolute``.
        max_points: random subset (``seed``) of at most this many points; ``None`` keeps all.
        tracks: ``None``, ``"grid"`` (16 x 16), ``"grid:N"``, a ``.npy``/text file or
            an ``[N, 2]`` array of query pixels in the first image (original resolution).
        shared_camera: one intrinsics matrix for all frames (the mean; images must share a size).
        fps, stride, max_frames: frame sampling (``fps`` for videos only).
        skip_bad: leave out unreadable images (with a warning) instead of failing.
        max_memory: bytes the run may use (default: measured free memory); the
            estimate is checked before inference.
        progress: show tqdm progress bars.

    Raises:
        vggt3d.io.inputs.InputError, ImageLoadError, VideoReadError: bad input.
        vggt3d.hub.CheckpointError: missing or mismatched weights.
        MemoryEstimateError: the frames are estimated not to fit.
        ReconstructionError, ValueError: impossible options.
    """
    if points_from not in ("depth", "pointmap"):
        raise ValueError(f"points_from must be 'depth' or 'pointmap', got {points_from!r}")
    if stride < 1 or (max_frames is not None and max_frames < 1):
        raise ValueError(f"stride and max_frames must be >= 1, got {stride} and {max_frames}")
    if max_points is not None and max_points < 0:
        raise ValueError(f"max_points must be >= 0, got {max_points}")
    dev = resolve_device(device)
    run_dtype = resolve_dtype(dtype, dev)
    timings: dict[str, float] = {}
    start = time.perf_counter()

    # Frames first (bad input fails before gigabytes of weights load), at the input size the model will want.
    size = _guess_img_size(model, config)
    frames = load_frames(inputs, mode, size, fps, stride, max_frames, skip_bad, progress)
    timings["load"] = time.perf_counter() - start
    distinct_sizes = sorted({(t.original_width, t.original_height) for t in frames.batch.transforms})
    if shared_camera and len(distinct_sizes) > 1:
        raise ReconstructionError(f"shared_camera needs images of one size, got {len(distinct_sizes)} sizes "
                                  f"({distinct_sizes[:4]}); drop --shared-camera or resize the images")
    queries = None if tracks is None else _query_points(tracks, frames.batch.transforms[0])  # original pixels
    t0 = time.perf_counter()
    net = _load_model(model, dev, config)
    timings["model"] = time.perf_counter() - t0
    if net.config.img_size != size:
        log.debug("the model takes %d-pixel inputs, not %d: loading the frames again", net.config.img_size, size)
        t0 = time.perf_counter()
        frames = load_frames(inputs, mode, net.config.img_size, fps, stride, max_frames, skip_bad, False)
        timings["load"] += time.perf_counter() - t0
    heads = set(net.config.heads)
    need = {"camera", "depth"} if points_from == "depth" else {"camera", "point"}
    if tracks is not None:
        need.add("track")
    if need - heads:
        raise ReconstructionError(f"this model has no {', '.join(sorted(need - heads))} head (config.heads = "
                                  f"{sorted(heads)}), which this reconstruction needs")
    batch = frames.batch
    S, _, H, W = batch.images.shape
    query_model = None
    if queries is not None:
        query_model = torch.from_numpy(batch.transforms[0].original_to_model_points(queries)).float()

    need_bytes = estimate_memory(net.config, S, H, W, run_dtype, 0 if queries is None else len(queries))
    budget, what = (max_memory, "the memory limit") if max_memory is not None else available_memory(dev)
    if need_bytes > budget:
        raise MemoryEstimateError(
            f"{S} frames at {W}x{H} need about {_format_bytes(need_bytes)} for inference, but {what} is "
            f"{_format_bytes(budget)} ({dev}). Use fewer frames (--max-frames N, --stride N or --fps for videos), "
            "or split the input into chunks of frames and reconstruct each; --max-memory overrides the limit.")
    log.debug("memory estimate %s of %s (%s)", _format_bytes(need_bytes), _format_bytes(budget), what)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    t0 = time.perf_counter()
    try:
        out = _run_model(net, batch.images, dev, run_dtype, query_model, progress)
    except (MemoryError, RuntimeError) as exc:  # torch.cuda.OutOfMemoryError is a RuntimeError
        text = str(exc).lower()
        if isinstance(exc, RuntimeError) and "out of memory" not in text and "can't allocate" not in text:
            raise
        raise MemoryEstimateError(f"ran out of memory during inference on {dev} with {S} frames ({exc}); "
                                  "use fewer frames (--max-frames, --stride) or split the input") from exc
    timings["inference"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cam_from_world, K_model, K_orig = _cameras(out, batch, shared_camera)
    content = content_mask(batch.transforms, H, W)
    depth = np.where(content, out["depth"][..., 0], 0.0).astype(np.float32)
    depth_conf = np.where(content, out["depth_conf"], 0.0).astype(np.float32)
    if points_from == "depth":
        world, valid = depth_points(depth, cam_from_world, K_model)
        valid &= content
        conf = depth_conf
    else:
        world = out["world_points"]
        z = np.einsum("sj,shwj->shw", cam_from_world[:, 2, :3], world) + cam_from_world[:, 2, 3, None, None]
        valid, conf = content & (z > 0), np.where(content, out["world_points_conf"], 0.0)
    keep, cut, n_selected = select_points(world, conf, valid, conf_threshold, conf_absolute,
                                           None if max_points is None else int(max_points), seed)
    cloud = point_cloud(world, valid, keep, cam_from_world, K_model, K_orig, batch.transforms)
    thinning = np.sqrt(max(n_selected, 1) / max(keep.size, 1))  # random thinning widens the spacing
    cloud["spacing"] = (cloud["spacing"] * thinning).astype(np.float32)
    colors = np.round(batch.images.permute(0, 2, 3, 1).numpy() * 255.0).clip(0, 255).astype(np.uint8)
    keep = cloud.pop("keep")
    sizes = np.array([[t.original_width, t.original_height] for t in batch.transforms])

    track_result = None
    if queries is not None:
        uv_tracks = np.stack([t.model_to_original_points(out["track"][i]) for i, t in enumerate(batch.transforms)])
        track_result = Tracks(queries, uv_tracks, out["vis"], out["conf"])
    timings["points"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - start
    peak, peak_kind = peak_memory(dev)
    if keep.size == 0:
        log.warning("no point passed the confidence filter (threshold %.4g); the point outputs are empty", cut)
    info = {
        "weights": str(model) if not hasattr(model, "config") else "<model object>", "device": str(dev),
        "dtype": str(run_dtype).replace("torch.", ""), "mode": mode, "points_from": points_from,
        "model_size": [int(W), int(H)], "shared_camera": bool(shared_camera), "input": frames.description,
        "conf_threshold": float(conf_threshold), "conf_absolute": bool(conf_absolute), "conf_cut": cut,
        "points_candidates": n_selected, "max_points": max_points, "skipped_bad": frames.bad,
        "skipped_other": frames.skipped, "timings": timings, "peak_memory_bytes": peak,
        "peak_memory_kind": peak_kind, "memory_estimate_bytes": need_bytes,
    }
    return Reconstruction(
        image_names=frames.names, sources=frames.sources, image_sizes=sizes, intrinsics=K_orig,
        cam_from_world=cam_from_world, transforms=list(batch.transforms), model_intrinsics=K_model, depth=depth,
        depth_conf=depth_conf, model_colors=colors, points=cloud["points"], colors=colors.reshape(-1, 3)[keep],
        point_conf=conf.reshape(-1)[keep].astype(np.float32), point_normals=cloud["normals"],
        point_spacing=cloud["spacing"], point_frame=cloud["frame"], point_uv=cloud["uv"], tracks=track_result,
        world_points=out.get("world_points") if points_from == "pointmap" else None,
        timestamps=frames.timestamps, frame_indices=frames.indices, info=info, image_data=frames.data)


class _CallableModule(types.ModuleType):
    """Lets ``vggt3d.reconstruct(...)`` work even when this module was imported first.

    ``vggt3d.reconstruct`` names both this module and its main function (a lazy
    export); once ``import vggt3d.reconstruct`` has run, the package attribute is
    the module, so calling the module calls :func:`reconstruct`.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Reconstruction:
        return reconstruct(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
