"""Chunked inference over a long sequence: one model pass per chunk, then alignment into one trajectory.

:func:`run_chunked` is independent of how a chunk is predicted: ``predict``
maps frame indices to that chunk's cameras, intrinsics, depth and confidence
(``vggt3d.reconstruct`` passes the model). What stays in memory between passes
is small: every chunk's cameras, a regular subsample (``stride``) of its point
maps for the alignment, and the depth and confidence of the frames it owns;
the memory of a run is therefore that of one pass plus a few bytes per pixel
of the video (``vggt3d.planner.RESULT_BYTES_PER_PIXEL``), flat in the length.

Convention: ``cam_from_world`` 4x4, OpenCV axes (x right, y down, z forward);
the world is the first chunk's first camera; intrinsics in model pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .align import AlignmentConfig, ChunkGeometry
from .chunks import Chunk
from .pipeline import LoopConfig, align_sequence
from .sim3 import AlignmentError

__all__ = ["ChunkedResult", "model_chunks", "model_predictor", "run_chunked"]

log = logging.getLogger(__name__)

#: ``predict(frames)`` -> ``{"cam_from_world": [s, 4, 4], "intrinsics": [s, 3, 3], "depth": [s, H, W],
#: "conf": [s, H, W]}`` (conf 0 where the input holds no image content), optionally ``"descriptor": [s, D]``
#: (per-frame appearance descriptors for loop candidates).
Predict = Callable[[Sequence[int]], dict]


@dataclass
class ChunkedResult:
    """Per-frame outputs in one world frame, and a report of the alignment."""

    cam_from_world: np.ndarray  # [T, 4, 4]
    intrinsics: np.ndarray  # [T, 3, 3] model pixels
    depth: np.ndarray  # [T, H, W] float32, in world units (the owner chunk's depth times its scale)
    conf: np.ndarray  # [T, H, W] float32
    report: dict = field(default_factory=dict)


def model_predictor(run: Callable[[Any], dict], source: Callable[[Sequence[int]], Any]) -> Predict:
    """A :data:`Predict` from a model call and a frame source (frames are fetched per chunk, never all at once).

    Args:
        run: images ``[s, 3, H, W]`` -> numpy ``{"pose_enc": [s, 9], "depth": [s, H, W, 1], "depth_conf": [s, H, W]}``
            (the model's keys, batch dimension dropped), optionally ``"descriptor": [s, D]`` per frame.
        source: frame indices -> their images ``[s, 3, H, W]`` (a torch tensor).
    """
    import torch

    from ..geometry import pose_encoding_to_cameras

    def predict(frames: Sequence[int]) -> dict:
        images = source(frames)
        H, W = images.shape[-2:]
        out = run(images)
        cam34, K = pose_encoding_to_cameras(torch.from_numpy(np.asarray(out["pose_enc"], np.float64)), (H, W))
        cam = np.tile(np.eye(4), (len(K), 1, 1))
        cam[:, :3] = cam34.numpy()
        pred = {"cam_from_world": cam, "intrinsics": K.numpy(), "depth": out["depth"][..., 0],
                "conf": out["depth_conf"]}
        if "descriptor" in out:
            pred["descriptor"] = out["descriptor"]
        return pred

    return predict


def _geometry(frames: Sequence[int], pred: dict, stride: int) -> ChunkGeometry:
    """Subsampled point maps of one chunk's prediction (pixels ``(stride*i, stride*j)``)."""
    from ..pointcloud import depth_points

    depth = np.asarray(pred["depth"], dtype=np.float32)[:, ::stride, ::stride]
    K = np.asarray(pred["intrinsics"], dtype=np.float64).copy()
    K[:, :2] /= stride  # pixel stride*i -> i (pixel centres at integers)
    cam = np.asarray(pred["cam_from_world"], dtype=np.float64)
    points, valid = depth_points(depth, cam, K)
    conf = np.where(valid, np.asarray(pred["conf"], dtype=np.float32)[:, ::stride, ::stride], 0.0)
    return ChunkGeometry(np.asarray(frames), cam, points.astype(np.float32), conf.astype(np.float32), K)


def run_chunked(predict: Predict, plan: list[Chunk], *, loops: LoopConfig | None = None,
                alignment: AlignmentConfig | None = None, stride: int = 4,
                progress: bool = False) -> ChunkedResult:
    """Predict every chunk of ``plan``, align them (closing loops), and merge each frame from its owner.

    Raises:
        AlignmentError: consecutive chunks do not agree (the message names them); nothing is returned.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    T = sum(len(c.owned) for c in plan)
    geometries: list[ChunkGeometry] = []
    owned: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    descriptors: dict[int, np.ndarray] = {}
    iterator = plan
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(plan, desc="chunks", unit="chunk", leave=False)
    for k, chunk in enumerate(iterator):
        pred = predict(chunk.frames)
        geometries.append(_geometry(chunk.frames, pred, stride))
        for f in chunk.owned:  # keep the full-resolution maps of the frames this chunk owns, nothing else
            i = chunk.position(f)
            owned[f] = (np.asarray(pred["cam_from_world"][i], dtype=np.float64),
                        np.asarray(pred["intrinsics"][i], dtype=np.float64),
                        np.asarray(pred["depth"][i], dtype=np.float32).copy(),
                        np.asarray(pred["conf"][i], dtype=np.float32).copy())
            if "descriptor" in pred:
                descriptors[f] = np.asarray(pred["descriptor"][i], dtype=np.float32)
        del pred
        log.debug("chunk %d/%d: frames %d-%d", k + 1, len(plan), chunk.frames[0], chunk.frames[-1])

    def predict_loop(frames: tuple[int, ...]) -> ChunkGeometry:
        return _geometry(frames, predict(frames), stride)

    try:
        desc = np.stack([descriptors[f] for f in range(T)]) if len(descriptors) == T else None
        seq = align_sequence(plan, geometries, descriptors=desc,
                             predict=predict_loop if (loops is None or loops.enabled) else None,
                             config=alignment, loops=loops)
    except AlignmentError as exc:
        raise AlignmentError(f"{exc}. The video cannot be reconstructed in chunks as planned: try a longer "
                             "--overlap, a larger --chunk, or fewer frames") from exc
    owners = {f: k for k, c in enumerate(plan) for f in c.owned}
    H, W = owned[0][2].shape
    cams, Ks = np.empty((T, 4, 4)), np.empty((T, 3, 3))
    depth, conf = np.empty((T, H, W), np.float32), np.empty((T, H, W), np.float32)
    for f in range(T):
        transform = seq.alignment.world_from_chunk[owners[f]]
        cam, K, d, c = owned.pop(f)
        cams[f], Ks[f] = transform.transform_cameras(cam), K
        depth[f], conf[f] = d * np.float32(transform.scale), c
    report = {
        "chunks": len(plan), "chunk": len(plan[0].frames), "overlap": (len(set(plan[0].frames) & set(plan[1].frames))
                                                                       if len(plan) > 1 else 0),
        "loops_closed": [[c.a, c.b] for c in seq.loops],
        "loops_rejected": [[c.a, c.b, why] for c, why in seq.rejected],
        "alignment": [{"chunks": [e.i, e.j], "inliers": round(e.fit.inlier_fraction, 3),
                       "relative_residual": round(e.fit.relative_residual, 4),
                       "rotation_error_deg": round(e.rotation_error_deg, 2)} for e in seq.alignment.edges],
    }
    return ChunkedResult(cams, Ks, depth, conf, report)


def model_chunks(model: Any, images: Any, device: Any, dtype: Any, chunk: int, overlap: int, *,
                 loop_closure: bool = True, progress: bool = False, merge_ratio: float = 0.0,
                 content: np.ndarray | None = None, sanitize: Callable[[np.ndarray], np.ndarray] | None = None
                 ) -> tuple[dict[str, np.ndarray], dict]:
    """Chunked inference with a :class:`vggt3d.VGGT3D` over images ``[S, 3, H, W]``: one pass's outputs and a report.

    Each chunk runs through the model contract (``forward_intermediates`` then
    ``forward_heads``); every frame is described for loop candidates by its mean
    layer-0 frame-attention patch token (computed before any global attention,
    so independent of its chunk). Returns ``{"pose_enc" [S, 9], "depth"
    [S, H, W, 1], "depth_conf" [S, H, W]}`` in the first chunk's frame
    (OpenCV axes) and :attr:`ChunkedResult.report`.

    Args:
        content: ``[S, H, W]`` image pixels (padding gives no correspondences).
        sanitize: applied to each chunk's ``pose_enc [s, 9]`` (e.g. clamping wild fields of view).

    Raises:
        AlignmentError: chunks that do not agree (named).
    """
    import torch

    from ..geometry import cameras_to_pose_encoding
    from .chunks import plan_chunks

    H, W = images.shape[-2:]
    content = np.ones((len(images), H, W), bool) if content is None else content
    start = 1 + model.config.aggregator.num_register_tokens
    C = model.config.aggregator.embed_dim
    layers = sorted(set(model.head_layers(track=False)) | {0})

    def run(chunk_images: Any) -> dict[str, np.ndarray]:
        hooks = None
        if merge_ratio:
            from ..merging import merge_hooks

            hooks = merge_hooks(merge_ratio, len(chunk_images), start)
        with torch.inference_mode():
            x = chunk_images.to(device)
            tokens = model.forward_intermediates(x, layers, precision=dtype, hooks=hooks)  # {i: [1, s, P, 2C]}
            out = model.forward_heads(tokens, tuple(x.shape[-2:]))
            descriptor = tokens[0][0, :, start:, :C].float().mean(dim=1)  # [s, C]
        result = {k: out[k][0].float().cpu().numpy() for k in ("pose_enc", "depth", "depth_conf")}
        if sanitize is not None:
            result["pose_enc"] = sanitize(result["pose_enc"])
        return dict(result, descriptor=descriptor.cpu().numpy())

    model_predict = model_predictor(run, lambda frames: images[list(frames)])

    def predict(frames: Sequence[int]) -> dict:  # no correspondences from padding
        pred = model_predict(frames)
        return dict(pred, conf=np.where(content[list(frames)], pred["conf"], 0.0))

    result = run_chunked(predict, plan_chunks(len(images), chunk, overlap), loops=LoopConfig(enabled=loop_closure),
                         progress=progress)
    pose_enc = cameras_to_pose_encoding(torch.from_numpy(result.cam_from_world[:, :3]),
                                        torch.from_numpy(result.intrinsics), (H, W)).numpy()
    return {"pose_enc": pose_enc, "depth": result.depth[..., None], "depth_conf": result.conf}, result.report
