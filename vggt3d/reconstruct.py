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
from .planner import plan_inference
from .runtime import (MemoryEstimateError, ReconstructionError, available_memory, estimate_memory,  # noqa: F401
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
def _inference_progress(enabled: bool):
    """A ``progress(stage, done, total)`` callback for :meth:`VGGT3D.forward` drawing one tqdm bar (or ``None``)."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(total=None, desc="inference", unit="layer", leave=False) as bar:
        def step(stage: str, done: int, total: int) -> None:
            if stage == "aggregator":
                bar.total = total + 1  # the layers, then the heads
            bar.n = done if stage == "aggregator" else bar.total
            bar.refresh()

        yield step


def _run_model(model: Any, images: torch.Tensor, device: torch.device, dtype: torch.dtype,
               queries: torch.Tensor | None, progress: bool, causal: bool = False,
               merge_ratio: float = 0.0) -> dict[str, np.ndarray]:
    hooks = None
    if merge_ratio:  # token merging in the global attention (vggt3d.merging)
        from .merging import merge_hooks

        hooks = merge_hooks(merge_ratio, len(images), 1 + model.config.aggregator.num_register_tokens)
    with torch.inference_mode(), _inference_progress(progress) as step:
        out = model(images.to(device), query_points=None if queries is None else queries.to(device),
                    precision=dtype, progress=step, causal=causal, hooks=hooks)
    keys = ("pose_enc", "depth", "depth_conf", "world_points", "world_points_conf", "track", "vis", "conf")
    return {k: out[k][0].float().cpu().numpy() for k in keys if k in out}


def _input_geometry(cfg: Any, mode: str | None = None) -> tuple[int, int, str]:
    """``(size, patch_size, mode)`` the loader uses for a model config (518/14/crop for VGGT-1B, 512/16/balanced
    for VGGT-Omega); an explicit ``mode`` wins."""
    return int(cfg.default_resolution()), int(cfg.patch_size), mode or cfg.default_mode()


def _run_chunks(model: Any, images: torch.Tensor, device: torch.device, dtype: torch.dtype, plan: Any,
                loop_closure: bool, progress: bool, merge_ratio: float = 0.0,
                content: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Chunked inference (:func:`vggt3d.longvideo.chunked.model_chunks`) -> the outputs of one pass and a report."""
    from .longvideo import AlignmentError
    from .longvideo.chunked import model_chunks

    try:
        return model_chunks(model, images, device, dtype, plan.chunk, plan.overlap, loop_closure=loop_closure,
                            progress=progress, merge_ratio=merge_ratio, content=content,
                            sanitize=_sane_pose_encoding)
    except AlignmentError as exc:
        raise ReconstructionError(str(exc)) from exc


def _guess_input_geometry(model: Any, config: Any, mode: str | None = None) -> tuple[int, int, str]:
    """The model's :func:`_input_geometry`, read without loading weights where possible (else VGGT-1B's)."""
    from .config import ModelConfig
    from .hub import config_from_json_dict, shipped_models

    if hasattr(model, "config"):
        return _input_geometry(model.config, mode)
    if config is not None:
        return _input_geometry(ModelConfig.preset(config) if isinstance(config, str) else config, mode)
    path = Path(os.path.expanduser(str(model)))
    root = path if path.is_dir() else shipped_models().get(str(model))
    if root is not None and (root / "config.json").is_file():
        with contextlib.suppress(Exception):
            return _input_geometry(config_from_json_dict(json.loads((root / "config.json").read_text())), mode)
    return _input_geometry(ModelConfig(), mode)


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
    mode: Literal["crop", "pad", "balanced", "max_size"] | None = None,
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
    chunk: int | None = None,
    overlap: int | None = None,
    loop_closure: bool = True,
    merge_ratio: float | None = None,
    tracks_from: Literal["head", "features", "both"] | None = None,
    refine: Literal["ba"] | None = None,
    intrinsics: Any = None,
    poses: Any = None,
    fix_poses: bool = False,
    scale: Any = None,
    refine_config: Any = None,
    causal: bool = False,
) -> Reconstruction:
    """Reconstruct cameras, depth and a coloured point cloud from images or a video.

    Args:
        inputs: a folder, glob, image file, ``.txt`` list, video, a list of image
            files (see :func:`vggt3d.io.inputs.discover_inputs`), PIL images or
            ``[H, W, 3]`` arrays, or :class:`~vggt3d.io.video.VideoFrames`.
        model: a :class:`vggt3d.VGGT3D`, or what ``VGGT3D.from_pretrained`` takes
            (hub id, directory, file, shipped model name); ``config`` overrides its architecture.
        device, dtype: ``auto`` picks cuda/mps/cpu and bf16/fp16/fp32.
        mode: the loader's ``crop`` or ``pad`` (VGGT-1B's), ``balanced`` or ``max_size``
            (VGGT-Omega's); default: the model's (outputs are at original resolution either way).
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
        chunk, overlap, loop_closure: predict overlapping chunks of ``chunk`` frames
            sharing ``overlap`` (default a quarter, >= 4), aligned by Sim(3) with loop
            closure (:mod:`vggt3d.longvideo`). Without ``chunk`` the memory planner
            (:mod:`vggt3d.planner`) runs one exact pass when it fits ``max_memory``,
            else chunks; ``info["strategy"]`` and ``info["strategy_reason"]`` say which and why.
        merge_ratio: merge away this fraction (0-0.95) of the global-attention tokens
            (:mod:`vggt3d.merging`; faster for many frames, approximate); ``None``/0: exact.
        tracks_from: multi-view tracks for the COLMAP export and refinement: ``head``
            (the track head, queries in several frames), ``features`` (SIFT) or ``both``.
        refine: ``"ba"``: bundle adjustment of cameras and tracks (tracks default to ``both``).
        intrinsics: known intrinsics at original resolution (a JSON or COLMAP file, or
            ``[S, 3, 3]``); poses are re-solved with them and BA keeps them fixed.
        poses: known poses (our cameras.json, a COLMAP model, nerfstudio transforms.json,
            or ``[S, 4, 4]`` cam_from_world): the output moves into their frame and units;
            ``fix_poses`` keeps them exactly (and fixed in BA).
        scale: a known distance, ``"F:X,Y F:X,Y DIST"`` or ``"camera-height=H"``.
        refine_config: a :class:`vggt3d.refine.RefineConfig` (tracks, filters, BA settings).
        causal: frame t's cameras and depth from frames ``0..t`` only
            (``model(..., causal=True)``, ``docs/world_models.md``); one pass, no chunks.
        See :mod:`vggt3d.refine`; ``info["refine"]`` reports the reprojection error before
        and after, tracks and observations (or why refinement failed: the unrefined result is kept).

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
    if causal and chunk is not None:
        raise ValueError("causal=True runs one causal pass; chunked inference aligns chunks afterwards, which is "
                         "not causal: drop --chunk or --causal")
    if merge_ratio is not None:
        from .merging import MergeConfig

        MergeConfig(ratio=merge_ratio)  # validates: a number in [0, 0.95]
        if causal and merge_ratio:
            raise ValueError("token merging cannot run with causal=True (a masked global attention): drop --merge")
    if chunk is not None:  # chunk options that cannot work fail before anything loads
        from .longvideo import check_chunking

        check_chunking(chunk, overlap if overlap is not None else max(4, chunk // 4) if chunk > 4 else chunk - 1,
                       loop_closure=loop_closure)
        if tracks is not None:
            raise ReconstructionError("tracks follow points from the first frame through one pass over all frames; "
                                      "they cannot run in chunks: drop --chunk or --tracks")
    dev = resolve_device(device)
    run_dtype = resolve_dtype(dtype, dev)
    timings: dict[str, float] = {}
    start = time.perf_counter()

    # Frames first (bad input fails before gigabytes of weights load), at the input size the model will want.
    requested_mode = mode
    size, patch, mode = _guess_input_geometry(model, config, requested_mode)
    frames = load_frames(inputs, mode, size, fps, stride, max_frames, skip_bad, progress, patch_size=patch)
    timings["load"] = time.perf_counter() - start
    distinct_sizes = sorted({(t.original_width, t.original_height) for t in frames.batch.transforms})
    if shared_camera and len(distinct_sizes) > 1:
        raise ReconstructionError(f"shared_camera needs images of one size, got {len(distinct_sizes)} sizes "
                                  f"({distinct_sizes[:4]}); drop --shared-camera or resize the images")
    queries = None if tracks is None else _query_points(tracks, frames.batch.transforms[0])  # original pixels
    known = _known_cameras(frames, intrinsics, poses, fix_poses, scale, tracks_from, refine)  # checked before inference
    t0 = time.perf_counter()
    net = _load_model(model, dev, config)
    timings["model"] = time.perf_counter() - t0
    if _input_geometry(net.config, requested_mode) != (size, patch, mode):
        size, patch, mode = _input_geometry(net.config, requested_mode)
        log.debug("the model takes %d-pixel inputs in %d-pixel patches: loading the frames again", size, patch)
        t0 = time.perf_counter()
        frames = load_frames(inputs, mode, size, fps, stride, max_frames, skip_bad, False, patch_size=patch)
        timings["load"] += time.perf_counter() - t0
    if causal:
        net.check_causal()  # an unsupported family fails before inference
    heads = set(net.config.heads)
    need = {"camera", "depth"} if points_from == "depth" else {"camera", "point"}
    if tracks is not None or tracks_from == "head":
        need.add("track")
    if need - heads:
        raise ReconstructionError(f"this model has no {', '.join(sorted(need - heads))} head (config.heads = "
                                  f"{sorted(heads)}), which this reconstruction needs")
    batch = frames.batch
    S, _, H, W = batch.images.shape
    query_model = None
    if queries is not None:
        query_model = torch.from_numpy(batch.transforms[0].original_to_model_points(queries)).float()

    budget, what = (max_memory, "the memory limit") if max_memory is not None else available_memory(dev)
    plan = plan_inference(net.config, S, H, W, run_dtype, dev, budget, budget_source=f"{what}, {dev}", chunk=chunk,
                          overlap=overlap, loop_closure=loop_closure,
                          num_queries=0 if queries is None else len(queries))
    need_bytes = plan.estimate.memory_bytes
    if plan.strategy == "chunked" and causal:
        raise ReconstructionError(f"{plan.reason}; a causal reconstruction needs one pass: use fewer frames or a "
                                  f"larger --max-memory")
    if plan.strategy == "chunked" and (points_from != "depth" or known):
        raise ReconstructionError(f"{plan.reason}; chunks give points from depth only and no refinement: drop "
                                  "--points-from pointmap and the refinement options, or use fewer frames")
    log.debug("%s", plan.reason)  # the CLI summary prints it once
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    t0 = time.perf_counter()
    try:
        if plan.strategy == "chunked":
            out, chunk_report = _run_chunks(net, batch.images, dev, run_dtype, plan, loop_closure, progress,
                                            merge_ratio=merge_ratio or 0.0,
                                            content=content_mask(batch.transforms, H, W))
        else:
            out, chunk_report = _run_model(net, batch.images, dev, run_dtype, query_model, progress, causal,
                                           merge_ratio=merge_ratio or 0.0), None
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
        "conf_threshold": float(conf_threshold), "conf_absolute": bool(conf_absolute), "conf_cut": cut, "seed": seed,
        "points_candidates": n_selected, "max_points": max_points, "skipped_bad": frames.bad,
        "skipped_other": frames.skipped, "timings": timings, "peak_memory_bytes": peak,
        "peak_memory_kind": peak_kind, "memory_estimate_bytes": need_bytes, "strategy": plan.strategy, "causal": causal,
        "strategy_reason": plan.reason, "chunks": chunk_report, "merge_ratio": float(merge_ratio or 0.0),
    }
    rec = Reconstruction(
        image_names=frames.names, sources=frames.sources, image_sizes=sizes, intrinsics=K_orig,
        cam_from_world=cam_from_world, transforms=list(batch.transforms), model_intrinsics=K_model, depth=depth,
        depth_conf=depth_conf, model_colors=colors, points=cloud["points"], colors=colors.reshape(-1, 3)[keep],
        point_conf=conf.reshape(-1)[keep].astype(np.float32), point_normals=cloud["normals"],
        point_spacing=cloud["spacing"], point_frame=cloud["frame"], point_uv=cloud["uv"], tracks=track_result,
        world_points=out.get("world_points") if points_from == "pointmap" else None,
        timestamps=frames.timestamps, frame_indices=frames.indices, info=info, image_data=frames.data)
    if known:
        from .refine import refine_reconstruction

        t0 = time.perf_counter()
        rec = refine_reconstruction(rec, tracks_from=tracks_from, refine=refine, config=refine_config,
                                    model=net, model_images=batch.images, **known)
        rec.info["timings"]["refine"] = time.perf_counter() - t0
        rec.info["timings"]["total"] += rec.info["timings"]["refine"]
    return rec


def _known_cameras(frames: Any, intrinsics: Any, poses: Any, fix_poses: bool, scale: Any, tracks_from: Any,
                   refine: Any) -> dict[str, Any] | None:
    """Read and check the known-camera options against the loaded frames (``None``: no refinement asked)."""
    if intrinsics is None and poses is None and scale is None and tracks_from is None and refine is None:
        if fix_poses:
            raise ValueError("fix_poses needs poses")
        return None
    from .refine.files import read_intrinsics, read_poses
    from .refine.known import parse_scale

    if refine not in (None, "ba"):
        raise ValueError(f"refine must be None or 'ba', got {refine!r}")
    if tracks_from not in (None, "head", "features", "both"):
        raise ValueError(f"tracks_from must be head, features or both, got {tracks_from!r}")
    sizes = np.array([[t.original_width, t.original_height] for t in frames.batch.transforms])
    if intrinsics is not None and not isinstance(intrinsics, np.ndarray):
        intrinsics = read_intrinsics(intrinsics, frames.names, sizes)
    if poses is not None and not isinstance(poses, np.ndarray):
        poses = read_poses(poses, frames.names)
    return {"intrinsics": intrinsics, "poses": poses, "fix_poses": fix_poses,
            "scale": None if scale is None else parse_scale(scale)}


class _CallableModule(types.ModuleType):
    """Lets ``vggt3d.reconstruct(...)`` work even when this module was imported first.

    ``vggt3d.reconstruct`` names both this module and its main function (a lazy
    export); once ``import vggt3d.reconstruct`` has run, the package attribute is
    the module, so calling the module calls :func:`reconstruct`.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Reconstruction:
        return reconstruct(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
