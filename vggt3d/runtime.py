"""Where and how a model runs: device and dtype resolution, memory estimates and peaks.

Shared by :mod:`vggt3d.reconstruct`, the geometry prior and the model's
precision policy (:func:`precision_context`). ``auto`` means: CUDA, then Apple
MPS, then CPU; bf16 on GPUs that support it, fp16 on older GPUs and on MPS,
fp32 on the CPU (as VGGT runs); bf16 on the CPU on request.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch

_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
           "fp16": torch.float16, "float16": torch.float16}


class ReconstructionError(RuntimeError):
    """The reconstruction cannot run as asked (device, memory, model heads, degenerate predictions)."""


class MemoryEstimateError(ReconstructionError):
    """The frames are estimated not to fit in the device's memory; nothing was run."""


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced precision ``auto`` autocasts to on ``device``.

    CUDA: bf16 where the GPU supports it, else fp16; MPS: fp16; CPU: ``None`` (fp32).
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return None


def precision_dtype(precision: str | torch.dtype | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a precision policy on ``device`` (``None``: no autocast, float32).

    ``auto``: :func:`autocast_dtype`; ``fp32``/``bf16``/``fp16`` (or the torch
    dtypes): that precision, also on the CPU (bf16 on request).
    """
    if precision == "auto":
        return autocast_dtype(device)
    if isinstance(precision, str):
        if precision not in _DTYPES:
            raise ValueError(f"unknown precision {precision!r}; use auto, fp32, bf16 or fp16")
        precision = _DTYPES[precision]
    if precision not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"precision must be auto, fp32, bf16, fp16 or None, got {precision!r}")
    return None if precision == torch.float32 else precision


def precision_context(precision: str | torch.dtype | None, device: torch.device) -> contextlib.AbstractContextManager:
    """Context manager running the encoder and aggregator at ``precision`` on ``device``.

    ``None`` leaves the caller's autocast state alone (e.g. accelerate's mixed
    precision); otherwise autocast is switched on at the policy's dtype, or off
    for float32. Autocast keeps LayerNorm and softmax statistics in float32.
    Where autocast does not support the device or dtype the run stays in float32.
    """
    if precision is None:
        return contextlib.nullcontext()
    dtype = precision_dtype(precision, device)
    if dtype is None:
        return torch.autocast(device.type, enabled=False) if device.type in ("cuda", "cpu", "mps") \
            else contextlib.nullcontext()
    try:
        return torch.autocast(device.type, dtype=dtype)
    except (RuntimeError, ValueError):  # a device type without autocast
        return contextlib.nullcontext()


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: cuda, then mps, then cpu; an explicit device must exist."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ReconstructionError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ReconstructionError(f"device {device!r} asked for, but CUDA is not available here; use auto or cpu")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ReconstructionError(f"device {device!r} asked for, but MPS is not available here; use auto or cpu")
    return dev


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on GPUs that support it, fp16 on older GPUs, fp32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return autocast_dtype(device) or torch.float32
    if dtype not in _DTYPES:
        raise ReconstructionError(f"unknown dtype {dtype!r}; use auto, fp32, bf16 or fp16")
    return _DTYPES[dtype]


def available_memory(device: torch.device) -> tuple[int, str]:
    """Bytes that a run may still allocate on ``device``, and what was measured.

    CUDA: free memory from ``torch.cuda.mem_get_info``. Otherwise ``MemAvailable``
    of ``/proc/meminfo``, capped by a cgroup (v2) memory limit when there is one.
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free), f"free memory on {torch.cuda.get_device_name(device)}"
    available = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    if available is None:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    with contextlib.suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            available = min(available, int(limit) - used)
    return int(available), "available system memory"


def estimate_memory(config: Any, frames: int, height: int, width: int, dtype: torch.dtype,
                    num_queries: int = 0) -> int:
    """Bytes a forward pass over ``frames`` images of ``height x width`` needs beyond the weights (estimate).

    The memory model of :func:`vggt3d.planner.estimate_cost` (exact strategy,
    with :func:`vggt3d.reconstruct`'s post-processing; a reduced ``dtype`` means a GPU autocast run):
    for VGGT-1B about 0.11 GB (bf16) per 518x518 frame.
    """
    from .planner import estimate_cost

    device = "cpu" if dtype == torch.float32 else "cuda"
    return estimate_cost(config, frames, height, width, dtype, device, num_queries=num_queries,
                         postprocess=True).memory_bytes


def _format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def peak_memory(device: torch.device) -> tuple[int, str]:
    """Peak bytes used so far: CUDA allocator peak, else the process's peak resident set size."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "GPU"
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "CPU RSS"
