"""Where and how a model runs: device and dtype resolution, memory estimates and peaks.

Shared by :mod:`vggt3d.reconstruct`, the geometry prior and the model's own
autocast choice. ``auto`` means: CUDA, then Apple MPS, then CPU; bf16 on GPUs
that support it, fp16 on older GPUs, fp32 on the CPU (as VGGT runs).
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
    """The reduced precision to autocast to on ``device``: bf16 where the GPU supports it, else fp16; ``None`` off CUDA."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


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

    Counts the kept aggregator layers (fp32), one block's working set, the dense
    heads' chunked decoding, the outputs, the tracker's feature maps and the
    numpy post-processing: for VGGT-1B about 0.13 GB (bf16) or 0.18 GB (fp32) per 518x518 frame.
    """
    p = config.patch_size
    tokens = frames * ((height // p) * (width // p) + 1 + config.aggregator.num_register_tokens)
    C = config.aggregator.embed_dim
    act = torch.finfo(dtype).bits // 8
    layers = set(config.dense_head.layers) | {config.aggregator.depth - 1}
    if num_queries:
        layers |= set(config.track_head.layers)
    kept = tokens * 2 * C * (4 + act) * len(layers)  # autocast output + its fp32 copy
    block = tokens * C * act * (config.aggregator.mlp_ratio + 6)
    pixels = frames * height * width
    chunk = min(frames, 8) * height * width
    dense = chunk * 4 * (config.dense_head.features // 2 + 32 + 8) * 2
    outputs = pixels * 4 * (3 + 2 + 4 + 12)  # input, depth+conf, points+conf, post-processing
    tracker = pixels // 4 * config.track_head.features * 4 * 3 if num_queries else 0
    return int(kept + block + dense + outputs + tracker + (256 << 20))


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
