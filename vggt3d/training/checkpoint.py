"""Atomic training checkpoints: keep the last K and the best, resume exactly.

Layout of a run's ``checkpoints/`` folder::

    step-00000500/            one complete checkpoint (also a from_pretrained directory)
        config.json           model architecture (vggt3d schema)
        model.safetensors     model weights
        training_state.pt     optimizer, schedule, grad scaler, step, counters, best value
        rank-0.pt ...         per-process RNG states and data-loader position
        train_config.yaml     the resolved training config
    best.json                 {"step": ..., "value": ...}: the best checkpoint (kept besides the last K)

A checkpoint is written into ``.tmp-step-XXXXXXXX/`` and renamed to its final
name only once every file is complete and flushed, so a process killed while
writing leaves at most a ``.tmp-*`` folder, which is ignored and removed by
the next save: every ``step-*`` folder is loadable.

A checkpoint folder is untrusted input (it may come from anywhere): the
``.pt`` files are loaded with ``torch.load(weights_only=True)``, which builds
only tensors, numbers, strings and containers and never runs code from the
file. The RNG states are therefore stored as plain lists and tensors (see
:func:`rng_state`); checkpoints of older versions, which held NumPy arrays,
still load (NumPy array reconstruction is the one extra type allowed).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

log = logging.getLogger(__name__)

_STEP_DIR = re.compile(r"^step-(\d{8})$")
TRAINING_STATE = "training_state.pt"


class CheckpointNotFound(FileNotFoundError):
    """No complete checkpoint where one was asked for."""


class CheckpointLoadError(ValueError):
    """A checkpoint file cannot be loaded safely (corrupt, or holding objects other than plain data)."""


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states of this process, as plain data (``weights_only``-safe).

    ``numpy`` is ``[name, keys (int64 tensor), pos, has_gauss, cached_gaussian]``
    (NumPy's legacy ``get_state`` tuple with the key array as a tensor).
    """
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": [str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                       float(gauss)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    np.random.set_state((name, keys.astype(np.uint32), int(pos), int(has_gauss), float(gauss)))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for f in path.iterdir():
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(path)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def save_torch(obj: Any, path: Path) -> None:
    """``torch.save`` (a separate function so tests can interrupt a write)."""
    torch.save(obj, path)


class CheckpointManager:
    """Saves, lists, prunes and loads the checkpoints of one run.

    Args:
        directory: the run's ``checkpoints/`` folder.
        keep_last: complete checkpoints kept besides the best one (at least 1 is always kept).
        best_mode: ``"min"`` or ``"max"``: whether a lower or higher value is better.
    """

    def __init__(self, directory: str | os.PathLike, keep_last: int = 2, best_mode: str = "min") -> None:
        self.directory = Path(directory)
        self.keep_last = max(int(keep_last), 1)
        self.best_mode = best_mode

    # ------------------------------------------------------------------ listing
    def steps(self) -> list[int]:
        """Steps of the complete checkpoints, ascending."""
        if not self.directory.is_dir():
            return []
        found = []
        for p in self.directory.iterdir():
            m = _STEP_DIR.match(p.name)
            if m and p.is_dir() and (p / TRAINING_STATE).is_file():
                found.append(int(m.group(1)))
        return sorted(found)

    def path(self, step: int) -> Path:
        return self.directory / step_dir_name(step)

    def latest(self) -> Path | None:
        steps = self.steps()
        return self.path(steps[-1]) if steps else None

    def best(self) -> dict | None:
        """``{"step", "value"}`` of the best checkpoint, if one was recorded and still exists."""
        f = self.directory / "best.json"
        if not f.is_file():
            return None
        try:
            best = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return best if self.path(int(best["step"])).is_dir() else None

    def is_better(self, value: float, than: float | None) -> bool:
        if than is None:
            return True
        return value < than if self.best_mode == "min" else value > than

    # ------------------------------------------------------------------- saving
    def begin(self, step: int) -> Path:
        """Create (empty) the temporary folder of checkpoint ``step`` and return it. Main process only."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob(".tmp-step-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = self.directory / f".tmp-{step_dir_name(step)}"
        tmp.mkdir()
        return tmp

    def commit(self, step: int, tmp: Path) -> Path:
        """Flush the temporary folder and rename it to ``step-XXXXXXXX``; then prune. Main process only."""
        final = self.path(step)
        _fsync_tree(tmp)
        if final.exists():  # a re-run that reached the same step replaces the old checkpoint
            trash = self.directory / f".trash-{final.name}"
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(tmp, final)
        _fsync_dir(self.directory)
        self.prune()
        return final

    def record_best(self, step: int, value: float) -> None:
        write_json_atomic(self.directory / "best.json", {"step": int(step), "value": float(value)})

    def prune(self) -> None:
        """Delete complete checkpoints beyond the last ``keep_last``, never the best one."""
        best = self.best()
        keep = set(self.steps()[-self.keep_last:])
        if best is not None:
            keep.add(int(best["step"]))
        for step in self.steps():
            if step in keep:
                continue
            victim = self.path(step)
            trash = self.directory / f".trash-{victim.name}"
            os.replace(victim, trash)  # out of the step-* namespace first: a half-deleted folder is never listed
            shutil.rmtree(trash, ignore_errors=True)

    # ------------------------------------------------------------------ loading
    def resolve(self, source: str | os.PathLike | None) -> Path:
        """A checkpoint folder from ``"latest"``/``None`` (this run's newest), ``"best"``, or a path."""
        if source in (None, "latest", "auto"):
            latest = self.latest()
            if latest is None:
                raise CheckpointNotFound(f"no complete checkpoint in {self.directory}")
            return latest
        if source == "best":
            best = self.best()
            if best is None:
                raise CheckpointNotFound(f"no best checkpoint recorded in {self.directory}")
            return self.path(int(best["step"]))
        path = Path(source)
        if path.is_dir() and (path / TRAINING_STATE).is_file():
            return path
        if path.is_dir():  # a run directory or its checkpoints/ folder
            for candidate in (path / "checkpoints", path):
                steps = CheckpointManager(candidate).steps()
                if steps:
                    return candidate / step_dir_name(steps[-1])
        raise CheckpointNotFound(f"{source} is not a checkpoint folder (with {TRAINING_STATE}) nor a run with one")


def _numpy_array_globals() -> list:
    """What a NumPy array in an older checkpoint needs to unpickle (array reconstruction, no code)."""
    core = getattr(np, "_core", None) or np.core
    return [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def load_torch(path: Path) -> Any:
    """``torch.load(weights_only=True)`` of an untrusted file: plain data only, no code execution.

    Raises:
        CheckpointLoadError: one line naming the file (corrupt, or holding other objects).
    """
    import pickle
    import zipfile

    try:
        with torch.serialization.safe_globals(_numpy_array_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        detail = f"it references {found.group(1)}" if found else f"{type(exc).__name__}"
        raise CheckpointLoadError(f"cannot load {path} safely ({detail}): it is corrupt or holds objects other than "
                                  "tensors and plain data, which vggt3d never unpickles; use a checkpoint written "
                                  "by vggt3d") from None
    if not isinstance(state, dict):
        raise CheckpointLoadError(f"{path}: expected a dict of training state, got {type(state).__name__}")
    return state


def load_training_state(path: Path, rank: int = 0) -> tuple[dict, dict | None]:
    """``(training_state, rank_state)`` of a checkpoint folder; ``rank_state`` is None if that rank has none.

    Both are loaded with ``weights_only=True`` (:func:`load_torch`): a checkpoint cannot run code.
    """
    state = load_torch(path / TRAINING_STATE)
    rank_file = path / f"rank-{rank}.pt"
    rank_state = load_torch(rank_file) if rank_file.is_file() else None
    return state, rank_state
