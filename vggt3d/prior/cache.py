"""A feature cache on disk: one safetensors file per clip, a manifest, and a torch ``Dataset`` to read it back.

Layout of a cache directory::

    cache.json                      settings shared by every file (model, layers, sizes, dtype, sampling)
    manifest.jsonl                  one JSON line per finished clip, appended after its file is in place
    <stem>-<hash>.safetensors       one clip

A clip file holds, for every cached layer ``i``, ``layer{i}.patch_tokens``
``[T, h, w, C']``, ``layer{i}.camera_tokens`` ``[T, C']`` and
``layer{i}.register_tokens`` ``[T, R, C']``; ``frame_indices`` ``[T]`` (int64,
index in the video or position in the folder), ``timestamps`` ``[T]``
(float64 seconds, NaN for image folders), ``frame_window`` ``[T]`` (int64, the
window each frame's features come from), and with cameras ``pose_enc``
``[T, 9]``. Its string metadata repeats the settings (model id and weight
hash, layers, grid, sizes, dtype, ...) and the clip's source.

Writes are atomic: a clip is written to ``.<name>.tmp-<pid>`` in the same directory,
flushed to disk and renamed into place, then recorded in the manifest. A clip
whose file exists with the current settings is finished and never redone, so
an interrupted run restarted with the same arguments continues where it
stopped (a killed write leaves only a temporary file, removed by the next
``vggt3d features`` run on the cache once its process is gone). Several
processes may fill one cache with disjoint clips (``vggt3d features --shard K/N``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import Dataset

from .. import __version__
from ..io.atomic import atomic_write, atomic_write_text
from .clips import Clip
from .features import GeometryFeatures
from .prior import GeometryPrior
from .windows import Window

__all__ = ["CacheError", "FORMAT", "FeatureCache", "FeatureCacheWriter", "clip_id", "read_manifest", "read_metadata"]

log = logging.getLogger(__name__)

FORMAT = "vggt3d-features/1"
MANIFEST = "manifest.jsonl"
SETTINGS = "cache.json"
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class CacheError(RuntimeError):
    """A cache directory holds features made with other settings, or a file is unreadable."""


def clip_id(source: str | os.PathLike) -> str:
    """File stem of a clip's features: its name (sanitized) and a hash of its absolute path."""
    path = Path(os.path.abspath(os.fspath(source)))
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem if path.suffix else path.name).strip("._") or "clip"
    return f"{stem[:80]}-{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file (its header only)."""
    from safetensors import safe_open

    try:
        with safe_open(os.fspath(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as e:  # noqa: BLE001 - any reader error means an unusable file
        raise CacheError(f"cannot read {path}: {e}") from e


class FeatureCacheWriter:
    """Write :class:`GeometryPrior` features of clips into ``root`` (see the module docstring).

    Args:
        root: the cache directory (created).
        prior: the prior (its layers, resolution and windows are the settings).
        save_dtype: dtype of the stored features (``bfloat16`` halves the size
            of float32 with its range; ``float16`` can overflow on large tokens).
        sampling: how frames were sampled (``fps``, ``stride``, ``max_frames``),
            part of the settings.
        cameras: also store the camera head's ``pose_enc`` per frame.
        overwrite: accept a cache made with other settings and redo its clips.

    Raises:
        CacheError: ``root`` holds features made with other settings and
            ``overwrite`` is false.
    """

    def __init__(self, root: str | os.PathLike, prior: GeometryPrior, *, save_dtype: torch.dtype = torch.bfloat16,
                 sampling: dict[str, Any] | None = None, cameras: bool = False, overwrite: bool = False) -> None:
        if save_dtype not in _DTYPES.values():
            raise ValueError(f"save_dtype must be one of {list(_DTYPES)}, got {save_dtype}")
        self.root = Path(root)
        self.prior = prior
        self.save_dtype = save_dtype
        self.cameras = cameras
        self.overwrite = overwrite
        self.settings = {
            "format": FORMAT,
            "model_id": prior.model_id,
            "model_hash": prior.fingerprint(),
            "layers": list(prior.layers),
            "resolution": list(prior.resolution) if isinstance(prior.resolution, tuple) else prior.resolution,
            "window": prior.window,
            "overlap": prior.overlap,
            "dtype": str(save_dtype).removeprefix("torch."),
            "cameras": cameras,
            "sampling": dict(sampling or {}),
        }
        if getattr(prior, "causal", False):  # only then, so caches made before causal priors keep their key
            cfg = prior.stream_config
            self.settings["causal"] = True
            self.settings["stream"] = None if cfg is None else {
                "max_frames": cfg.max_frames, "max_memory_mb": cfg.max_memory_mb, "recent": cfg.recent,
                "keyframe_interval": cfg.keyframe_interval}
        self.settings_key = hashlib.sha1(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()[:16]
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_settings()
        self._recorded = {k for k, e in read_manifest(self.root).items() if e.get("settings_key") == self.settings_key}

    def _check_settings(self) -> None:
        path = self.root / SETTINGS
        record = dict(self.settings, settings_key=self.settings_key)
        if path.is_file():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as e:
                raise CacheError(f"cannot read {path}: {e}") from e
            if old.get("settings_key") != self.settings_key and not self.overwrite:
                diff = sorted(k for k in set(old) | set(record) if old.get(k) != record.get(k) and k != "settings_key")
                raise CacheError(
                    f"{self.root} holds features made with other settings (differing: {', '.join(diff)}); "
                    f"use another output directory, or overwrite to redo its clips with the new settings"
                )
        atomic_write_text(path, json.dumps(record, indent=2) + "\n")

    def path_for(self, source: str | os.PathLike) -> Path:
        return self.root / f"{clip_id(source)}.safetensors"

    def is_done(self, source: str | os.PathLike) -> bool:
        """Whether the clip's file exists and was written with the current settings."""
        path = self.path_for(source)
        if not path.is_file():
            return False
        try:
            meta = read_metadata(path)
        except CacheError as e:
            log.warning("%s; it will be rewritten", e)
            return False
        if meta.get("settings_key") == self.settings_key:
            return True
        if not self.overwrite:
            raise CacheError(f"{path} was written with other settings; pass overwrite to redo it")
        return False

    def ensure_recorded(self, source: str | os.PathLike) -> bool:
        """Add a finished clip missing from the manifest (killed between rename and record); True if added."""
        path = self.path_for(source)
        if path.stem in self._recorded:
            return False
        meta = read_metadata(path)
        self._append(path, meta.get("source", os.fspath(source)), int(meta["num_frames"]),
                     json.loads(meta["grid"]))
        log.info("recorded %s, finished before an interruption, in the manifest", path.name)
        return True

    def record(self, path: Path, clip: Clip, grid: tuple[int, int]) -> None:
        """Append the clip's line to the manifest (one ``write`` of one line, flushed to disk)."""
        self._append(path, clip.source, len(clip.indices), list(grid))

    def _append(self, path: Path, source: str, num_frames: int, grid: list[int]) -> None:
        entry = {"clip": path.stem, "file": path.name, "source": source, "num_frames": num_frames,
                 "grid": list(grid), "settings_key": self.settings_key, "bytes": path.stat().st_size,
                 "written": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self._recorded.add(path.stem)
        line = json.dumps(entry) + "\n"
        fd = os.open(self.root / MANIFEST, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = "\n" + line  # a torn last line (killed mid-append) stays on a line of its own
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def write(self, clip: Clip, progress: Callable[[int], None] | None = None) -> Path:
        """Extract the features of ``clip`` and write them atomically; returns the file's path."""
        from safetensors.torch import save_file

        feats = self.prior(clip.frames.unsqueeze(0), heads=self.cameras, progress=progress)
        tensors = self._tensors(feats, clip)
        path = self.path_for(clip.source)
        meta = self._metadata(feats, clip)
        # pid-tagged temporary name: shards share the folder, and a killed run's file is recognisable as stale
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta), fsync=True, pid_tag=True)
        path.with_name(f".{path.name}.tmp").unlink(missing_ok=True)  # left by an older version
        self.record(path, clip, feats.grid)
        return path

    def _tensors(self, feats: GeometryFeatures, clip: Clip) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for i in feats.layers:
            for name, group in (("patch_tokens", feats.patch_tokens), ("camera_tokens", feats.camera_tokens),
                                ("register_tokens", feats.register_tokens)):
                out[f"layer{i}.{name}"] = group[i][0].detach().to("cpu", self.save_dtype).contiguous()
        out["frame_indices"] = torch.tensor(clip.indices, dtype=torch.int64)
        out["timestamps"] = torch.tensor(clip.timestamps, dtype=torch.float64)
        out["frame_window"] = feats.frame_window.clone()
        if self.cameras and feats.heads is not None:
            out["pose_enc"] = feats.heads["pose_enc"][0].detach().to("cpu", torch.float32).contiguous()
        return out

    def _metadata(self, feats: GeometryFeatures, clip: Clip) -> dict[str, str]:
        meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in self.settings.items()}
        meta.update(
            settings_key=self.settings_key,
            vggt3d_version=__version__,
            source=clip.source,
            clip=clip_id(clip.source),
            num_frames=str(len(clip.indices)),
            grid=json.dumps(list(feats.grid)),
            image_size=json.dumps(list(feats.image_size)),
            input_size=json.dumps(list(feats.input_size)),
            windows=json.dumps([[list(w.frames), list(w.owned)] for w in feats.windows]),
            names=json.dumps(clip.names),
        )
        return meta


def read_manifest(root: str | os.PathLike) -> dict[str, dict]:
    """Records of ``root/manifest.jsonl`` by clip id (the last line of a clip wins; a torn last line is skipped)."""
    path = Path(root) / MANIFEST
    entries: dict[str, dict] = {}
    if not path.is_file():
        return entries
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            entries[entry["clip"]] = entry
        except (json.JSONDecodeError, KeyError, TypeError):
            log.warning("%s line %d is not a complete record; skipped", path, n)
    return entries


class FeatureCache(Dataset):
    """Read a feature cache back: one item per finished clip, in manifest order.

    ``cache[i]`` is a dict: ``patch_tokens`` / ``camera_tokens`` /
    ``register_tokens`` (``{layer: tensor}``, shapes as in the module
    docstring, ``T`` frames), ``frame_indices``, ``timestamps``,
    ``frame_window`` (and ``pose_enc`` when cached), ``source`` and ``meta``
    (the file's metadata). Clips differ in length: use ``batch_size=1``, or
    ``num_frames`` to cut every item to ``num_frames`` consecutive frames from
    a random start (``torch`` RNG; clips shorter than that are returned whole).

    Args:
        root: the cache directory.
        layers: layers to read (default: all cached).
        tokens: which token groups to read.
        num_frames: see above.
        dtype: cast the features to this dtype (default: as stored).
    """

    def __init__(self, root: str | os.PathLike, layers: list[int] | None = None,
                 tokens: tuple[str, ...] = ("patch_tokens", "camera_tokens", "register_tokens"),
                 num_frames: int | None = None, dtype: torch.dtype | None = None) -> None:
        self.root = Path(root)
        if not (self.root / SETTINGS).is_file():
            raise CacheError(f"{self.root} is not a feature cache (no {SETTINGS}); write one with `vggt3d features`")
        self.settings = json.loads((self.root / SETTINGS).read_text(encoding="utf-8"))
        entries = read_manifest(self.root)
        self.entries = [e for e in entries.values()
                        if e.get("settings_key") == self.settings.get("settings_key") and (self.root / e["file"]).is_file()]
        cached = list(self.settings["layers"])
        self.layers = cached if layers is None else [int(i) for i in layers]
        missing = [i for i in self.layers if i not in cached]
        if missing:
            raise ValueError(f"layers {missing} are not cached in {self.root} (cached: {cached})")
        bad = [t for t in tokens if t not in ("patch_tokens", "camera_tokens", "register_tokens")]
        if bad:
            raise ValueError(f"unknown token groups {bad}")
        self.tokens, self.num_frames, self.dtype = tuple(tokens), num_frames, dtype

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from safetensors import safe_open

        entry = self.entries[index]
        path = self.root / entry["file"]
        with safe_open(os.fspath(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            T = int(meta["num_frames"])
            frames = slice(None)
            if self.num_frames is not None and T > self.num_frames:
                start = int(torch.randint(0, T - self.num_frames + 1, ()).item())
                frames = slice(start, start + self.num_frames)
            item: dict[str, Any] = {group: {} for group in self.tokens}
            for i in self.layers:
                for group in self.tokens:
                    x = f.get_slice(f"layer{i}.{group}")[frames]
                    item[group][i] = x if self.dtype is None else x.to(self.dtype)
            keys = set(f.keys())
            for name in ("frame_indices", "timestamps", "frame_window", "pose_enc"):
                if name in keys:
                    item[name] = f.get_slice(name)[frames]
        item["source"] = meta.get("source", "")
        item["meta"] = meta
        return item

    def features(self, index: int) -> GeometryFeatures:
        """Item ``index`` as :class:`GeometryFeatures` (batch of 1), all three token groups required."""
        if set(self.tokens) != {"patch_tokens", "camera_tokens", "register_tokens"}:
            raise ValueError("features() needs all three token groups")
        item = self[index]
        meta = item["meta"]
        windows = [Window(tuple(a), tuple(b)) for a, b in json.loads(meta["windows"])]
        return GeometryFeatures(
            patch_tokens={i: t.unsqueeze(0) for i, t in item["patch_tokens"].items()},
            camera_tokens={i: t.unsqueeze(0) for i, t in item["camera_tokens"].items()},
            register_tokens={i: t.unsqueeze(0) for i, t in item["register_tokens"].items()},
            grid=tuple(json.loads(meta["grid"])), image_size=tuple(json.loads(meta["image_size"])),
            input_size=tuple(json.loads(meta["input_size"])), frame_window=item["frame_window"], windows=windows,
        )

