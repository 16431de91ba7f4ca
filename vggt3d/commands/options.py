"""Option checks shared by every ``vggt3d`` sub-command: argparse ``type=`` functions and output-folder checks.

Everything a user types is validated before any work starts, so a bad value
costs one line (argparse prints ``error: argument --fps: ...`` and exits 2)
instead of a traceback or an hour of inference. Use them as
``parser.add_argument("--fps", type=positive_float)``; the ``check_*``
functions raise :class:`OptionError` (a ``ValueError``) with one line naming
the option and what to do.

This module imports nothing heavy (no torch): building the parser stays fast.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["DTYPES", "OptionError", "validate_out", "dtype_name", "finite_float", "nonnegative_int",
           "percentile", "positive_float", "positive_int", "torch_dtype", "tracks_spec"]


class OptionError(ValueError):
    """An option value that cannot work (checked before any work starts)."""


def _number(text: str, kind: type) -> float | int:
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"not {'an integer' if kind is int else 'a number'}: {text!r}") from None


def finite_float(text: str) -> float:
    """A finite float (refuses ``inf``, ``nan``)."""
    value = _number(text, float)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0 (``--fps``)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def percentile(text: str) -> float:
    """A finite float in [0, 100]."""
    value = finite_float(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be a percentile between 0 and 100, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (``--stride``, ``--max-frames``: 0 and negative values are refused, not 'no limit')."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    """An integer >= 0 (where 0 has a documented meaning, e.g. ``--max-points 0`` keeps all)."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


#: canonical dtype names of every command, and the long (torch) spellings accepted as aliases.
DTYPES = ("auto", "fp32", "bf16", "fp16")
_DTYPE_ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float": "fp32"}


def dtype_name(text: str) -> str:
    """``auto|fp32|bf16|fp16``; ``float32``, ``bfloat16``, ``float16`` are accepted as aliases."""
    name = _DTYPE_ALIASES.get(text.strip().lower(), text.strip().lower())
    if name not in DTYPES:
        raise argparse.ArgumentTypeError(f"unknown dtype {text!r}; use one of {', '.join(DTYPES)}")
    return name


def torch_dtype(name: str):
    """The torch dtype of a canonical name (``fp32``, ``bf16``, ``fp16``; imports torch)."""
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name(name)]


_GRID = re.compile(r"^grid(?::(\d+))?$")


def tracks_spec(text: str) -> str:
    """``grid``, ``grid:N`` (N >= 1) or an existing file of query pixels."""
    if text.startswith("grid"):
        match = _GRID.match(text)
        if not match or (match.group(1) is not None and int(match.group(1)) < 1):
            if not Path(text).is_file():
                raise argparse.ArgumentTypeError(f"must be 'grid', 'grid:N' with N >= 1, or a file; got {text!r}")
        return text
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'grid', 'grid:N' nor an existing file of 'x y' pixels")
    return text


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path)))).resolve()


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def validate_out(out: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), option: str = "--out") -> Path:
    """Refuse an output folder that is an input, inside one, or holds one; or that cannot be written.

    ``inputs`` may hold glob patterns (their fixed leading folders are compared).
    Returns ``out`` as given. Writability is probed on the nearest existing
    folder (a real file is created and removed there: permission bits say
    nothing for root or a read-only mount).

    Raises:
        OptionError: one line naming ``option`` and the conflict.
    """
    target = _resolved(out)
    for item in inputs:
        text = os.fspath(item)
        if re.search(r"[*?\[]", text):  # a glob: compare its fixed part
            fixed = []
            for part in Path(text).parts:
                if re.search(r"[*?\[]", part):
                    break
                fixed.append(part)
            text = os.path.join(*fixed) if fixed else "."
        source = _resolved(text)
        if _inside(target, source) or _inside(source, target):
            relation = ("is the input" if target == source else "is inside the input" if _inside(target, source)
                        else "contains the input")
            raise OptionError(f"{option} {out} {relation} {item}; choose an output folder apart from the inputs")
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        where = "" if existing == target else f" ({existing} is a file)"
        raise OptionError(f"{option} {out} cannot be created{where}; choose another folder")
    # the output is written beside its final place, then renamed: probe the parent (and the folder itself)
    for probe_dir in ([target.parent, target] if existing == target else [existing]):
        try:
            fd, probe = _probe(probe_dir)
        except OSError as exc:
            raise OptionError(f"{option} {out}: cannot write in {probe_dir} ({exc.strerror or exc}); "
                              "choose a writable folder") from None
        os.close(fd)
        os.unlink(probe)
    return Path(out)


def _probe(folder: Path) -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(prefix=f".vggt3d-write-probe-{os.getpid()}-", dir=folder)
