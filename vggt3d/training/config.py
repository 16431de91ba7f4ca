"""Typed training configuration: a dataclass tree loaded from YAML, with ``key=value`` overrides.

Layout (every section optional in YAML; defaults are the released VGGT
fine-tuning setup of ``shared/spec/TRAINING.md`` section 5 where one exists)::

    run:    name, output_dir, seed, max_steps, log_every, image_every, val_every, ckpt_every, keep_last, ...
    model:  preset, arch (ModelConfig dict merged over the preset), pretrained, init, grad_checkpointing
    data:   train / val (lists of {name, weight, kwargs}), images_per_batch, num_frames, image_size, ...
    optim:  lr, weight_decay, betas, eps, warmup, final_lr, accum_steps, grad_clip, freeze, train_heads
    loss:   see :class:`vggt3d.training.losses.LossConfig`
    accel:  precision, distributed (ddp / fsdp), tf32
    distill: enabled, teacher, student_causal, teacher_weight, gt_weight

``load_config(path, overrides)`` reads a YAML file and applies dotted
overrides such as ``optim.lr=1e-4`` or ``data.num_frames=[2,8]`` (values are
parsed as YAML). Unknown keys are errors that name the key and the allowed
ones. ``TrainConfig.to_dict()`` gives the resolved tree that every run saves.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import yaml

from vggt3d.config import HEAD_NAMES, ConfigError, ModelConfig

from .distill import DistillConfig
from .losses import LossConfig

Precision = Literal["auto", "fp32", "bf16", "fp16"]
Distributed = Literal["auto", "ddp", "fsdp"]


@dataclass
class RunConfig:
    """Where and how long a run goes, and how often it logs, validates and checkpoints (in optimizer steps)."""

    name: str = "run"
    #: the run directory is ``output_dir/name``
    output_dir: str = "runs"
    seed: int = 0
    max_steps: int = 16000
    log_every: int = 10
    #: TensorBoard depth / confidence panels every N steps (0: never)
    image_every: int = 200
    #: validation every N steps and at the end (0: only at the end; no val data: never)
    val_every: int = 800
    #: validation batches per validation
    val_batches: int = 50
    ckpt_every: int = 500
    #: recent checkpoints kept besides the best one
    keep_last: int = 2
    #: validation value that picks the best checkpoint, and whether lower is better
    best_metric: str = "loss"
    best_mode: Literal["min", "max"] = "min"
    #: show a tqdm progress bar (main process only)
    progress: bool = True
    #: write ``final/`` with ``save_pretrained`` when training ends
    export_final: bool = True

    def __post_init__(self) -> None:
        for name in ("max_steps", "log_every", "ckpt_every"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"run.{name} must be positive, got {getattr(self, name)}")
        for name in ("image_every", "val_every", "val_batches", "keep_last"):
            if getattr(self, name) < 0:
                raise ConfigError(f"run.{name} must be >= 0, got {getattr(self, name)}")
        if self.best_mode not in ("min", "max"):
            raise ConfigError(f"run.best_mode must be min or max, got {self.best_mode!r}")


@dataclass
class ModelSection:
    """The architecture and where its weights come from."""

    #: a :data:`vggt3d.config.PRESETS` name; ignored for the architecture when ``pretrained`` has its own config
    preset: str = "vggt-1b"
    #: a partial :class:`vggt3d.ModelConfig` dict merged over the preset (nested sections merge key by key)
    arch: dict = field(default_factory=dict)
    #: any ``VGGT3D.from_pretrained`` source (hub id, directory, file, shipped name); None = from scratch
    pretrained: str | None = None
    #: initialisation when training from scratch: ``vit`` (truncated normal 0.02, as DINOv2/VGGT) or ``torch``
    init: Literal["vit", "torch"] = "vit"
    #: ``vit`` init only: initial LayerScale value of every block (None = the architecture's, 0.01 for VGGT)
    init_layer_scale: float | None = None
    #: ``vit`` init only: std of the camera / register / class tokens (frame 0's slot vs. the others')
    init_token_std: float = 1e-6
    #: from scratch only: a ``from_pretrained`` source whose weights are loaded over the initialised model;
    #: heads it lacks keep their initialisation (e.g. add point and track heads to a camera + depth model)
    init_from: str | None = None
    grad_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.init not in ("vit", "torch"):
            raise ConfigError(f"model.init must be vit or torch, got {self.init!r}")
        if self.init_layer_scale is not None and not 0.0 < float(self.init_layer_scale) <= 10.0:
            raise ConfigError(f"model.init_layer_scale must be in (0, 10] or null, got {self.init_layer_scale}")
        if not 0.0 <= float(self.init_token_std) <= 1.0:
            raise ConfigError(f"model.init_token_std must be in [0, 1], got {self.init_token_std}")
        if self.init_from is not None and self.pretrained is not None:
            raise ConfigError("model.init_from and model.pretrained exclude each other: init_from adds heads to a "
                              "from-scratch architecture, pretrained takes the checkpoint's own")
        if not isinstance(self.arch, Mapping):
            raise ConfigError("model.arch must be a mapping (a partial ModelConfig)")

    def model_config(self) -> ModelConfig:
        """The :class:`ModelConfig` of the preset with ``arch`` merged over it."""
        base = ModelConfig.preset(self.preset).to_dict()
        return ModelConfig.from_dict(_deep_merge(base, self.arch))


@dataclass
class DatasetEntry:
    """One dataset of :func:`vggt3d.data.build_dataset` and its mixing weight."""

    name: str = "synthetic"
    weight: float = 1.0
    kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.weight > 0:
            raise ConfigError(f"dataset {self.name!r}: weight must be positive, got {self.weight}")


@dataclass
class DataSection:
    """Datasets by name, mixed by weight, and the batch shape."""

    train: list[DatasetEntry] = field(default_factory=lambda: [DatasetEntry()])
    val: list[DatasetEntry] = field(default_factory=list)
    #: images per batch (per process): B = max(1, images_per_batch // S)
    images_per_batch: int = 48
    #: frames per sequence, drawn uniformly in [lo, hi] once per batch
    num_frames: list[int] = field(default_factory=lambda: [2, 24])
    val_num_frames: list[int] = field(default_factory=lambda: [2, 12])
    #: (H, W) of the network input, multiples of the model's patch size (14 VGGT, 16 Omega); or one width W: training batches then draw a random
    #: aspect (height 0.33 W .. W, TRAINING.md 2.2) and validation is square
    image_size: int | list[int] = field(default_factory=lambda: [518, 518])
    #: samples per pass of the mixed training set (one "epoch"; indices past it wrap to a new epoch)
    epoch_length: int = 100000
    num_workers: int = 0
    #: query points per sequence for the track loss
    track_queries: int = 64
    #: training augmentation: fields of :class:`vggt3d.data.AugmentConfig` (e.g. ``aspect_range``,
    #: ``brightness``) over TRAINING.md's defaults; validation never augments
    augment: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.train = [_build(DatasetEntry, e, f"data.train[{i}]") if isinstance(e, Mapping) else e
                      for i, e in enumerate(self.train)]
        self.val = [_build(DatasetEntry, e, f"data.val[{i}]") if isinstance(e, Mapping) else e
                    for i, e in enumerate(self.val)]
        if not self.train:
            raise ConfigError("data.train lists no dataset")
        if not isinstance(self.augment, Mapping):
            raise ConfigError("data.augment must be a mapping of AugmentConfig fields")
        from vggt3d.data.augment import AugmentConfig  # validate the fields now, not at the first batch

        known = set(AugmentConfig.__dataclass_fields__) - {"train"}
        unknown = sorted(set(self.augment) - known)
        if unknown:
            raise ConfigError(f"data.augment has unknown fields {unknown}; known: {sorted(known)}")
        try:
            AugmentConfig(**self.augment)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"data.augment: {e}") from None
        if isinstance(self.image_size, int) and self.image_size <= 0:
            raise ConfigError(f"data.image_size {self.image_size} must be positive")
        for name in ("num_frames", "val_num_frames") + (() if isinstance(self.image_size, int) else ("image_size",)):
            value = getattr(self, name)
            if isinstance(value, int):
                value = [value, value]
            value = list(value)
            if len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
                raise ConfigError(f"data.{name} must be two positive integers, got {value!r}")
            setattr(self, name, value)
        for name in ("num_frames", "val_num_frames"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ConfigError(f"data.{name} must be [lo, hi] with lo <= hi, got {[lo, hi]}")
        if self.images_per_batch <= 0 or self.epoch_length <= 0 or self.num_workers < 0:
            raise ConfigError("data.images_per_batch and data.epoch_length must be positive, num_workers >= 0")

    def check_patch_size(self, patch_size: int) -> None:
        """Raise :class:`ConfigError` unless ``image_size`` is made of multiples of the model's ``patch_size``."""
        sizes = [self.image_size] if isinstance(self.image_size, int) else list(self.image_size)
        if any(s % patch_size for s in sizes):
            raise ConfigError(f"data.image_size {self.image_size} must be multiples of the patch size {patch_size} "
                              "(the model's config.patch_size)")


@dataclass
class OptimSection:
    """AdamW with linear warmup and cosine decay, gradient accumulation, clipping and freezing."""

    lr: float = 5e-5
    weight_decay: float = 0.05
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    #: exclude biases, norms and 1-d parameters from weight decay (the original decays everything)
    no_decay_1d: bool = False
    #: fraction of ``run.max_steps`` spent warming up linearly from ``start_lr``
    warmup: float = 0.05
    start_lr: float = 1e-8
    final_lr: float = 1e-8
    #: micro-batches per step: the batch is split along B into this many chunks (leftover samples dropped)
    accum_steps: int = 1
    #: max grad norm per module group (aggregator, camera, depth, point, track); null or 0 = not clipped
    grad_clip: dict = field(default_factory=lambda: {g: 1.0 for g in ("aggregator", "camera", "depth", "point",
                                                                       "track")})
    #: fnmatch patterns of parameter names to freeze, e.g. ``["aggregator.*"]``
    freeze: list[str] = field(default_factory=list)
    #: heads whose parameters train and whose losses count; others are frozen
    train_heads: list[str] = field(default_factory=lambda: ["camera", "depth"])

    def __post_init__(self) -> None:
        if not self.lr > 0 or self.weight_decay < 0 or self.eps <= 0:
            raise ConfigError("optim.lr and optim.eps must be positive, optim.weight_decay >= 0")
        if len(self.betas) != 2:
            raise ConfigError(f"optim.betas must be two numbers, got {self.betas!r}")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"optim.warmup is a fraction of run.max_steps in [0, 1), got {self.warmup}")
        if self.accum_steps < 1:
            raise ConfigError(f"optim.accum_steps must be >= 1, got {self.accum_steps}")
        bad = [h for h in self.train_heads if h not in HEAD_NAMES]
        if bad:
            raise ConfigError(f"optim.train_heads: unknown heads {bad}; choose from {list(HEAD_NAMES)}")
        unknown = sorted(set(self.grad_clip) - {"aggregator", *HEAD_NAMES})
        if unknown:
            raise ConfigError(f"optim.grad_clip: unknown groups {unknown}; groups are aggregator, "
                              f"{', '.join(HEAD_NAMES)}")


@dataclass
class AccelSection:
    """Devices and numerics (through ``accelerate``)."""

    #: ``auto`` = bf16 autocast on CUDA (fp16 where bf16 is unsupported), fp32 on CPU; heads always run in fp32
    precision: Precision = "auto"
    #: multi-process strategy under ``accelerate launch``: ``auto``/``ddp`` or ``fsdp`` (full sharding)
    distributed: Distributed = "auto"
    #: run on the CPU even when a GPU is present
    cpu: bool = False
    allow_tf32: bool = True
    #: DDP ``find_unused_parameters`` (needed when some trainable parameters get no gradient)
    find_unused_parameters: bool = False
    #: CPU threads for torch (``torch.set_num_threads``); null = torch's default. On a small shared CPU, 1 is
    #: often fastest for small models (no waiting on busy cores at every operation).
    num_threads: int | None = None

    def __post_init__(self) -> None:
        if self.precision not in typing.get_args(Precision):
            raise ConfigError(f"accel.precision must be one of {typing.get_args(Precision)}, got {self.precision!r}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError(f"accel.num_threads must be >= 1 or null, got {self.num_threads}")
        if self.distributed not in typing.get_args(Distributed):
            raise ConfigError(f"accel.distributed must be one of {typing.get_args(Distributed)}, "
                              f"got {self.distributed!r}")


@dataclass
class TrainConfig:
    """The whole training configuration (see the module docstring)."""

    run: RunConfig = field(default_factory=RunConfig)
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    loss: LossConfig = field(default_factory=LossConfig)
    accel: AccelSection = field(default_factory=AccelSection)
    #: causal distillation from a bidirectional teacher (:mod:`vggt3d.training.distill`)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def __post_init__(self) -> None:
        if self.model.pretrained is None:  # a checkpoint's own patch size is checked when the loaders are built
            self.data.check_patch_size(self.model.model_config().patch_size)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        return _build(cls, d, "config")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | os.PathLike) -> None:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        Path(path).write_text(text, encoding="utf-8")

    @property
    def run_dir(self) -> Path:
        return Path(self.run.output_dir) / self.run.name


# ------------------------------------------------------------------------------------------ building
def _deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Coerce YAML values to the annotated field type where it is unambiguous (ints to floats, tuples to lists)."""
    origin = typing.get_origin(tp)
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return _build(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None and len(args) < len(typing.get_args(tp)):
            return None
        for arg in args[:-1]:  # the first type the value converts to
            try:
                return _convert(arg, value, where)
            except ConfigError:
                pass
        return _convert(args[-1], value, where)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where} must be a number, got {value!r}") from None
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if tp in (int, str) and not isinstance(value, tp) or tp is int and isinstance(value, bool):
        raise ConfigError(f"{where} must be {tp.__name__}, got {value!r}")
    if origin is Literal and value not in typing.get_args(tp):
        raise ConfigError(f"{where} must be one of {list(typing.get_args(tp))}, got {value!r}")
    if origin is list or tp is list:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        (item,) = typing.get_args(tp) or (Any,)
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if (origin is dict or tp is dict) and not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {value!r}")
    return copy.deepcopy(value)


def _build(cls: type, d: Mapping[str, Any], where: str):
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - fields)
    if unknown:
        raise ConfigError(f"unknown keys {unknown} in {where}; allowed: {sorted(fields)}")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in d.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from e


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=1e-4"`` -> ``(["optim", "lr"], 1e-4)``; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.path=value")
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".")]
    if not all(path):
        raise ConfigError(f"override {text!r}: empty key in {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({e})") from e
    if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
        try:
            value = float(value) if any(c in value for c in "eE.") and not value.isalpha() else value
        except ValueError:
            pass
    return path, value


def apply_overrides(d: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides to a config dict (creating nested mappings as needed)."""
    out = copy.deepcopy(dict(d))
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {'.'.join(path[:i + 1])} is not a mapping")
            node = child
        node[path[-1]] = value
    return out


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML training config (or the defaults when ``path`` is None) and apply overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as e:
            raise ConfigError(f"cannot read training config {path}: {e}") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})") from e
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
    data = apply_overrides(data, overrides)
    try:
        return TrainConfig.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path or 'config'}: {e}") if path is not None else e from None
