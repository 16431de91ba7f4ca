"""Know the cost before paying it: a memory and time model of a forward pass, and the strategy it implies.

:func:`estimate_cost` models one forward pass of a VGGT-style model from its
config, the frame count, the input size, the dtype, the device and the
strategy; :func:`plan_inference` picks the strategy for a memory budget:

- ``exact``: one pass over every frame (what the model was trained for);
- ``merged``: one pass with token merging in the global attention
  (:mod:`vggt3d.merging`): fewer FLOPs, but the kept layers and the per-frame
  stages still hold every token, so it is a time saver, not a memory saver,
  and :func:`plan_inference` never picks it on its own (``--merge`` does);
- ``chunked``: overlapping chunks of frames, each one pass, aligned by Sim(3)
  (:mod:`vggt3d.longvideo`); memory is that of one chunk plus the per-frame
  results, flat in the video length.

Memory model (bytes beyond the weights). With S frames, P aggregator tokens per
frame (camera + registers + h*w patches), Pe encoder tokens, C / Ce widths,
``a`` the activation bytes (autocast dtype; fp32 on CPU), L the kept layers:

- kept layers: ``S P 2C (a + 4) L`` on GPU (autocast copy + fp32 copy for
  the heads), ``S P 2C 4 L`` in fp32;
- one block's working set: ``S P C a (2 mlp_ratio + 1)`` for the trunk
  (residual stream, its norm, the MLP's hidden layer before and after the
  activation), ``S Pe Ce a (2 mlp_ratio + 1)`` for the encoder (whichever is
  larger; the attention runs through SDPA's fused kernels: no ``(S P)^2`` term);
- the dense heads, decoded one frame at a time: the larger of (a) the
  reordered copy of the DPT's largest conv weight (CPU: oneDNN reorders a conv
  weight into its blocked layout on every call; VGGT-1B's 1024x1024x3x3
  down-sampling conv, 36 MiB) with the projected token pyramid alive beside
  it, and (b) the full-resolution decoding (the four levels, the fusion maps,
  the up-sampled output features with their position embedding); plus the
  outputs (depth, points, confidences); the heads run after the trunk, so the
  larger of the two phases counts;
- the inputs;
- a constant for allocator and thread-pool overhead (calibrated on CPU).

``benchmarks/memory_model.py`` checks it against the measured peak (CPU RSS)
of the VGGT-1B architecture with rule weights; the time model is FLOPs over an
assumed throughput per device and is a rough guide, not a promise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from .runtime import MemoryEstimateError

__all__ = ["CostEstimate", "InferencePlan", "PlanError", "Strategy", "estimate_cost", "max_chunk_frames",
           "plan_inference"]

log = logging.getLogger(__name__)

Strategy = Literal["exact", "merged", "chunked"]
STRATEGIES: tuple[str, ...] = ("exact", "merged", "chunked")

#: Allocator arenas, thread-pool and kernel workspaces seen on CPU beyond the tensors (calibrated at 70x98 and
#: 112x154, ``benchmarks/results/memory_model_cpu.json``).
CPU_OVERHEAD = 2 << 20
#: Sustained FLOP/s assumed by the time model: per CPU thread (fp32), and for a CUDA device (bf16/fp16).
CPU_FLOPS_PER_THREAD = 40e9
CUDA_FLOPS = 150e12
#: Host memory per pixel of every frame kept by a chunked run: the owned depth and confidence (float32) and a
#: 1-in-16 subsample of the points and confidences for the alignment (``vggt3d.longvideo.chunked``).
RESULT_BYTES_PER_PIXEL = 4 + 4 + 1
#: ``vggt3d.reconstruct``'s numpy post-processing per pixel of all frames (depth, confidence, world points,
#: masks, colours, the selected points), and its fixed slack.
POSTPROCESS_BYTES_PER_PIXEL = 4 + 4 + 12 + 3 + 3 + 14
POSTPROCESS_OVERHEAD = 64 << 20


class PlanError(MemoryEstimateError):
    """No strategy fits the memory budget, or an option contradicts the plan (raised before any work)."""


@dataclass(frozen=True)
class CostEstimate:
    """Estimated peak bytes beyond the weights, FLOPs and seconds of one run, with the memory terms."""

    memory_bytes: int
    flops: float
    seconds: float
    terms: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class InferencePlan:
    """What will run, and why (``reason`` is printed by the CLI)."""

    strategy: str
    frames: int
    chunk: int | None
    overlap: int | None
    estimate: CostEstimate
    budget: int
    reason: str


def _fmt(n: float) -> str:
    from .runtime import _format_bytes

    return _format_bytes(n)


def _tokens(config: Any, height: int, width: int) -> tuple[int, int, int]:
    p = config.patch_size
    hw = (height // p) * (width // p)
    return hw, 1 + config.aggregator.num_register_tokens + hw, 1 + config.encoder.num_register_tokens + hw


def _dense_head_bytes(config: Any, height: int, width: int, frames: int, device: torch.device) -> int:
    """Peak of one frame of DPT decoding (the heads decode one frame at a time), outputs excluded.

    The larger of the conv-weight phase (CPU: the reordered copy of the largest
    conv weight beside the projected pyramid) and the full-resolution decoding.
    """
    d = config.dense_head
    hw = (height // config.patch_size) * (width // config.patch_size)
    C2 = 2 * config.aggregator.embed_dim
    oc = d.out_channels
    scales = (16, 4, 1, 0.25)  # the four DPT levels: 4x, 2x, 1x, 0.5x the patch grid (in area)
    pyramid = hw * (C2 + sum(c * s for c, s in zip(oc, scales)))  # one level's normed tokens + the projected levels
    projections = sum(hw * (C2 + c * s) for c, s in zip(oc, scales))
    fusion = hw * 16 * d.features * 4  # refined maps up to 4x the grid, a few buffers at a time
    # the up-sampled output features, their position embedding and the sum alive together, and the last convs
    head = height * width * (5 * (d.features // 2) // 2 + 40)
    decode = 4 * (projections + fusion + head)
    if device.type != "cpu":
        return int(decode)
    weights = [oc[3] * oc[3] * 9, C2 * max(oc)] + [c * d.features * 9 for c in oc]  # DPT convs (elements)
    return int(max(4 * (max(weights) + pyramid), decode))


def _lean_block_bytes(frames: int, P: int, Pe: int, C: int, Ce: int, a: int, mlp: float, enc_mlp: float) -> int:
    """The trunk's working set in the lean pass (:meth:`vggt3d.layers.Block.forward_token_chunked`)."""
    from .aggregator import LEAN_TOKEN_CHUNK

    n, ne = (min(frames, max(1, LEAN_TOKEN_CHUNK // t)) for t in (P, Pe))  # frames per chunk (as _frames_per_chunk)
    # per-frame stages: every frame's residual stream, one chunk's MLP hidden layer (before and after the activation)
    per_frame = max(frames * P * C * a + n * P * C * a * 2 * mlp, frames * Pe * Ce * a + ne * Pe * Ce * a * 2 * enc_mlp)
    tokens = frames * P
    chunk = min(tokens, LEAN_TOKEN_CHUNK)
    # global blocks: the residual stream plus one chunk's working set as in the plain block (fitted in
    # benchmarks/memory_model.py), or the residual stream, q, k, v and the attention output during the attention
    global_block = max(5 * tokens, tokens + chunk * (2 * mlp + 1)) * C * a if tokens > chunk \
        else tokens * C * a * (2 * mlp + 1)
    return int(max(per_frame, global_block))


def estimate_cost(config: Any, frames: int, height: int, width: int, dtype: torch.dtype = torch.float32,
                  device: str | torch.device = "cpu", strategy: str = "exact", *, chunk: int | None = None,
                  overlap: int = 0, num_queries: int = 0, threads: int | None = None, merge_ratio: float = 0.5,
                  postprocess: bool = False, lean: bool = True) -> CostEstimate:
    """Memory and time of running ``frames`` images of ``height x width`` through the model.

    Args:
        config: a :class:`vggt3d.config.ModelConfig`.
        dtype: the run's dtype (autocast dtype on GPUs; fp32 on CPU).
        strategy: ``exact``, ``merged`` (``merge_ratio`` of the global-attention tokens merged:
            fewer FLOPs, the same memory bound) or ``chunked`` (``chunk`` frames per pass, ``overlap`` shared).
        num_queries: tracked points (the tracker's feature maps are added).
        postprocess: add :func:`vggt3d.reconstruct`'s post-processing of the outputs (all frames; host
            memory, so counted for CPU runs only, as are a chunked run's kept results).
        lean: the lean exact pass (:func:`vggt3d.aggregator.lean_hooks`; what inference runs, so the
            default; ``False``: the plain pass, as in training): the per-frame stages hold
            the working set of the frames that fit in ``LEAN_TOKEN_CHUNK`` tokens, the global blocks the
            residual stream (``S P C a``) plus one token chunk's working set.
    """
    if strategy not in STRATEGIES:
        raise PlanError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    dev = torch.device(device)
    if strategy == "chunked":
        if not chunk or chunk < 2:
            raise PlanError("the chunked strategy needs chunk >= 2 frames")
        per_pass = estimate_cost(config, min(chunk, frames), height, width, dtype, dev, "exact", threads=threads)
        host = dev.type == "cpu"  # results and post-processing live in host memory: count them on a CPU run only
        stored = frames * height * width * RESULT_BYTES_PER_PIXEL if host else 0
        stride = max(chunk - overlap, 1)
        passes = 1 + max(0, -(-(frames - chunk) // stride))
        terms = dict(per_pass.terms, results=stored)
        if postprocess and host:
            terms["postprocess"] = frames * height * width * POSTPROCESS_BYTES_PER_PIXEL + POSTPROCESS_OVERHEAD
        memory = per_pass.memory_bytes + stored + terms.get("postprocess", 0)
        return CostEstimate(memory, per_pass.flops * passes, per_pass.seconds * passes, terms)

    hw, P, Pe = _tokens(config, height, width)
    agg, enc = config.aggregator, config.encoder
    a = torch.finfo(dtype).bits // 8  # the autocast dtype (bf16 also on the CPU, on request)
    C, Ce = agg.embed_dim, enc.embed_dim
    layers = set(config.dense_head.layers) | {agg.depth - 1}
    if num_queries:
        layers |= set(config.track_head.layers)
    kept_bytes = (a + 4) if a != 4 else 4
    pixels = frames * height * width
    terms = {
        "inputs": pixels * 3 * 4,
        "kept_layers": frames * P * 2 * C * kept_bytes * len(layers),
        # residual stream, its norm, the MLP's hidden layer before and after the activation
        "block": _lean_block_bytes(frames, P, Pe, C, Ce, a, agg.mlp_ratio, enc.mlp_ratio) if lean
        else max(frames * P * C * a * (2 * agg.mlp_ratio + 1), frames * Pe * Ce * a * (2 * enc.mlp_ratio + 1)),
        "dense_heads": _dense_head_bytes(config, height, width, frames, dev) if {"depth", "point"} & set(config.heads)
        else 0,
        "outputs": 2 * pixels * 4 * (2 * ("depth" in config.heads) + 4 * ("point" in config.heads)),
        "tracker": pixels // 4 * config.track_head.features * 4 * 3 if num_queries else 0,
        "overhead": CPU_OVERHEAD if dev.type == "cpu" else 0,
    }
    if postprocess and dev.type == "cpu":  # host memory; on a GPU the budget is the device's
        terms["postprocess"] = pixels * POSTPROCESS_BYTES_PER_PIXEL + POSTPROCESS_OVERHEAD
    terms = {k: int(v) for k, v in terms.items()}
    # The trunk's working set and the heads' are never alive together: the peak is the larger phase.
    heads_phase = terms["dense_heads"] + terms["outputs"] + terms["tracker"]
    memory = sum(terms.values()) - terms["block"] - heads_phase + max(terms["block"], heads_phase)
    # FLOPs: 2 per multiply-add of every linear layer, plus attention (QK^T and AV: 4 N^2 C per layer).
    block_params = (4 + 2 * agg.mlp_ratio) * C * C
    enc_params = (4 + 2 * enc.mlp_ratio) * Ce * Ce
    flops = frames * Pe * enc.depth * (2 * enc_params + 4 * Pe * Ce)
    N = frames * P  # tokens of one global attention
    K = N - int(merge_ratio * N) if strategy == "merged" else N  # after token merging (vggt3d.merging)
    flops += agg.depth * (2 * (N + K) * block_params + 4 * frames * P * P * C + 4 * K * K * C)
    flops += pixels * 2 * 3 * 3 * config.dense_head.features * 64 * len(layers)  # dense heads, roughly
    if dev.type == "cuda":
        rate = CUDA_FLOPS
    else:
        rate = CPU_FLOPS_PER_THREAD * (threads or torch.get_num_threads())
    return CostEstimate(memory, float(flops), float(flops / rate), terms)


def max_chunk_frames(config: Any, height: int, width: int, dtype: torch.dtype, device: str | torch.device,
                     budget: int, frames: int, overlap: int = 0, postprocess: bool = True) -> int:
    """The most frames per chunk whose chunked run over ``frames`` fits ``budget`` (0 if not even 2 fit)."""
    lo, hi = 1, max(frames, 2)
    while lo < hi:  # memory grows with the chunk: binary search for the largest that fits
        mid = (lo + hi + 1) // 2
        cost = estimate_cost(config, frames, height, width, dtype, device, "chunked", chunk=mid,
                             overlap=min(overlap, mid - 1), postprocess=postprocess)
        lo, hi = (mid, hi) if cost.memory_bytes <= budget else (lo, mid - 1)
    return lo if lo >= 2 else 0


def plan_inference(config: Any, frames: int, height: int, width: int, dtype: torch.dtype,
                   device: str | torch.device, budget: int, *, budget_source: str = "the memory budget",
                   chunk: int | None = None, overlap: int | None = None, loop_closure: bool = False,
                   num_queries: int = 0, max_auto_chunk: int = 64) -> InferencePlan:
    """Choose ``exact`` or ``chunked`` for ``frames`` under ``budget`` bytes, and say why.

    Estimates include :func:`vggt3d.reconstruct`'s post-processing. ``chunk``
    forces chunking with that many frames per pass (checked against the
    budget); otherwise the exact pass runs when it fits, else the largest chunk
    that fits (at most ``max_auto_chunk``) with ``overlap`` (default a quarter of it, >= 4).

    Raises:
        PlanError: nothing fits, or the options contradict each other (the message says what to change).
        vggt3d.longvideo.ChunkPlanError: a bad chunk/overlap combination.
    """
    from .longvideo.chunks import check_chunking

    exact = estimate_cost(config, frames, height, width, dtype, device, "exact", num_queries=num_queries,
                          postprocess=True)
    size = f"{frames} frames at {width}x{height}"
    if chunk is None and exact.memory_bytes <= budget:
        return InferencePlan("exact", frames, None, None, exact, budget,
                             f"exact: one pass; {size} need about {_fmt(exact.memory_bytes)} of "
                             f"{_fmt(budget)} ({budget_source})")
    if num_queries and chunk is not None:
        raise PlanError("--tracks follows points from the first frame through one pass over all frames; it cannot "
                        "run in chunks: drop --chunk or --tracks")
    if num_queries:
        raise PlanError(f"{size} with tracks need about {_fmt(exact.memory_bytes)}, more than {_fmt(budget)} "
                        f"({budget_source}), and tracking needs one pass over all frames; track fewer frames "
                        "(--max-frames, --stride) or raise --max-memory")
    ov = overlap if overlap is not None else None
    limit = max_chunk_frames(config, height, width, dtype, device, budget, frames, ov or 0)
    if chunk is not None:
        ov = ov if ov is not None else max(4, chunk // 4) if chunk > 4 else chunk - 1
        if limit < 2:
            raise PlanError(f"even chunks of 2 frames at {width}x{height} do not fit in {_fmt(budget)} "
                            f"({budget_source}); raise --max-memory or use another device")
        check_chunking(chunk, ov, loop_closure=loop_closure, max_chunk=limit)
        if chunk >= frames:
            return InferencePlan("exact", frames, None, None, exact, budget,
                                 f"exact: --chunk {chunk} covers all {frames} frames in one pass")
        cost = estimate_cost(config, frames, height, width, dtype, device, "chunked", chunk=chunk, overlap=ov,
                             postprocess=True)
        return InferencePlan("chunked", frames, chunk, ov, cost, budget,
                             f"chunked as asked: {chunk} frames per pass, {ov} shared; about "
                             f"{_fmt(cost.memory_bytes)} of {_fmt(budget)} ({budget_source})")
    if limit < 8:
        raise PlanError(f"{size} need about {_fmt(exact.memory_bytes)} in one pass, and even chunks of 8 frames do "
                        f"not fit in {_fmt(budget)} ({budget_source}); use a smaller --max-frames/--stride or "
                        "raise --max-memory")
    auto = min(limit, max_auto_chunk)
    ov = ov if ov is not None else max(4, auto // 4)
    check_chunking(auto, ov, loop_closure=loop_closure)
    cost = estimate_cost(config, frames, height, width, dtype, device, "chunked", chunk=auto, overlap=ov,
                         postprocess=True)
    return InferencePlan("chunked", frames, auto, ov, cost, budget,
                         f"chunked: {size} need about {_fmt(exact.memory_bytes)} in one pass, more than "
                         f"{_fmt(budget)} ({budget_source}); {auto} frames per pass ({ov} shared) need about "
                         f"{_fmt(cost.memory_bytes)}")
