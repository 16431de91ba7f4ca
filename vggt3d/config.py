"""Typed model configuration: one dataclass per component, named presets.

The JSON layout is the project's model config schema (``tests/fixtures/golden/
README.md``)::

    img_size, patch_size
    encoder:     embed_dim, depth, num_heads, mlp_ratio, num_register_tokens
    aggregator:  embed_dim, depth, num_heads, mlp_ratio, num_register_tokens
    camera_head: trunk_depth, num_heads, mlp_ratio, iterations
    dense_head:  features, out_channels[4], layers[4]
    track_head:  features, out_channels[4], layers[4], hidden_size,
                 transformer_depth, corr_levels, corr_radius, stride, iterations
    heads:       which of camera, depth, point, track to build

Constants that the VGGT-1B weights fix and that are therefore not part of the
schema (aggregator QK-norm, RoPE base 100, layer-scale inits, the tracker's 64
virtual tracks and 8 heads) live in the modules that use them.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Mapping

HeadName = Literal["camera", "depth", "point", "track"]
HEAD_NAMES: tuple[str, ...] = ("camera", "depth", "point", "track")


class ConfigError(ValueError):
    """A configuration dictionary or file does not match the schema."""


def _check_positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ConfigError(f"{owner}.{name} must be positive, got {value!r}")


def _check_heads(owner: str, embed_dim: int, num_heads: int) -> None:
    if embed_dim % num_heads:
        raise ConfigError(f"{owner}.embed_dim={embed_dim} is not divisible by num_heads={num_heads}")


@dataclass
class _TransformerConfig:
    """Width, depth and heads of a ViT-style stack."""

    _NAME: ClassVar[str] = "transformer"

    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_register_tokens: int = 4

    def __post_init__(self) -> None:
        _check_positive(self._NAME, embed_dim=self.embed_dim, depth=self.depth, num_heads=self.num_heads,
                        mlp_ratio=self.mlp_ratio)
        _check_heads(self._NAME, self.embed_dim, self.num_heads)
        if self.num_register_tokens < 0:
            raise ConfigError(f"{self._NAME}.num_register_tokens must be >= 0")


@dataclass
class EncoderConfig(_TransformerConfig):
    """DINOv2-style ViT with registers (Oquab et al. 2023; Darcet et al. 2024)."""

    _NAME: ClassVar[str] = "encoder"


@dataclass
class AggregatorConfig(_TransformerConfig):
    """Alternating frame / global attention trunk (VGGT Sec. 3.3)."""

    _NAME: ClassVar[str] = "aggregator"

    def __post_init__(self) -> None:
        super().__post_init__()
        head_dim = self.embed_dim // self.num_heads
        if head_dim % 4:
            raise ConfigError(f"aggregator head dim {head_dim} must be a multiple of 4 for 2D RoPE")


@dataclass
class CameraHeadConfig:
    """Iterative camera refinement head (VGGT Sec. 3.3, "camera predictions")."""

    trunk_depth: int = 4
    num_heads: int = 16
    mlp_ratio: float = 4.0
    iterations: int = 4

    def __post_init__(self) -> None:
        _check_positive("camera_head", trunk_depth=self.trunk_depth, num_heads=self.num_heads,
                        mlp_ratio=self.mlp_ratio, iterations=self.iterations)


def _four_ints(owner: str, name: str, value: Any) -> list[int]:
    value = list(value)
    if len(value) != 4 or not all(isinstance(v, int) for v in value):
        raise ConfigError(f"{owner}.{name} must be a list of 4 integers, got {value!r}")
    return value


@dataclass
class DenseHeadConfig:
    """DPT decoder (Ranftl et al. 2021) shared by the depth and point heads."""

    features: int = 256
    out_channels: list[int] = field(default_factory=lambda: [256, 512, 1024, 1024])
    layers: list[int] = field(default_factory=lambda: [4, 11, 17, 23])

    def __post_init__(self) -> None:
        self.out_channels = _four_ints("dense_head", "out_channels", self.out_channels)
        self.layers = _four_ints("dense_head", "layers", self.layers)
        _check_positive("dense_head", features=self.features)
        if self.features % 2:
            raise ConfigError("dense_head.features must be even")


@dataclass
class TrackHeadConfig:
    """DPT feature extractor + CoTracker-style tracker (Karaev et al. 2024)."""

    features: int = 128
    out_channels: list[int] = field(default_factory=lambda: [256, 512, 1024, 1024])
    layers: list[int] = field(default_factory=lambda: [4, 11, 17, 23])
    hidden_size: int = 384
    transformer_depth: int = 6
    corr_levels: int = 7
    corr_radius: int = 4
    stride: int = 2
    iterations: int = 4

    def __post_init__(self) -> None:
        self.out_channels = _four_ints("track_head", "out_channels", self.out_channels)
        self.layers = _four_ints("track_head", "layers", self.layers)
        _check_positive("track_head", features=self.features, hidden_size=self.hidden_size,
                        transformer_depth=self.transformer_depth, corr_levels=self.corr_levels,
                        corr_radius=self.corr_radius, stride=self.stride, iterations=self.iterations)
        if self.features % 4:
            raise ConfigError("track_head.features must be a multiple of 4")


@dataclass
class ModelConfig:
    """Complete architecture of a :class:`vggt3d.VGGT3D` model.

    ``ModelConfig()`` is VGGT-1B. ``ModelConfig.preset("tiny")`` is the small
    architecture used by the tests. ``from_dict`` accepts exactly the schema
    (unknown keys are an error that names them); ``to_dict`` writes it back.
    """

    img_size: int = 518
    patch_size: int = 14
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    aggregator: AggregatorConfig = field(default_factory=AggregatorConfig)
    camera_head: CameraHeadConfig = field(default_factory=CameraHeadConfig)
    dense_head: DenseHeadConfig = field(default_factory=DenseHeadConfig)
    track_head: TrackHeadConfig = field(default_factory=TrackHeadConfig)
    heads: list[str] = field(default_factory=lambda: list(HEAD_NAMES))

    _SECTIONS: ClassVar[dict[str, type]] = {
        "encoder": EncoderConfig,
        "aggregator": AggregatorConfig,
        "camera_head": CameraHeadConfig,
        "dense_head": DenseHeadConfig,
        "track_head": TrackHeadConfig,
    }

    def __post_init__(self) -> None:
        _check_positive("config", img_size=self.img_size, patch_size=self.patch_size)
        if self.img_size % self.patch_size:
            raise ConfigError(f"img_size={self.img_size} is not a multiple of patch_size={self.patch_size}")
        unknown = [h for h in self.heads if h not in HEAD_NAMES]
        if unknown:
            raise ConfigError(f"unknown heads {unknown}; choose from {list(HEAD_NAMES)}")
        if len(set(self.heads)) != len(self.heads):
            raise ConfigError(f"heads lists a head twice: {self.heads}")
        if self.encoder.embed_dim != self.aggregator.embed_dim:
            raise ConfigError(
                f"encoder.embed_dim={self.encoder.embed_dim} must equal aggregator.embed_dim="
                f"{self.aggregator.embed_dim} (the encoder's patch tokens enter the aggregator directly)"
            )
        depth = self.aggregator.depth
        for section in ("dense_head", "track_head"):
            bad = [i for i in getattr(self, section).layers if not 0 <= i < depth]
            if bad:
                raise ConfigError(f"{section}.layers {bad} out of range for aggregator.depth={depth}")

    # ------------------------------------------------------------------ schema
    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelConfig":
        """Build from a schema dictionary; missing keys take VGGT-1B defaults."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"model config must be a mapping, got {type(d).__name__}")
        top = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - top)
        if unknown:
            raise ConfigError(f"unknown model config keys {unknown}; allowed: {sorted(top)}")
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            section = cls._SECTIONS.get(key)
            if section is None:
                kwargs[key] = copy.deepcopy(value)
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(f"model config section {key!r} must be a mapping")
            allowed = {f.name for f in dataclasses.fields(section)}
            bad = sorted(set(value) - allowed)
            if bad:
                raise ConfigError(f"unknown keys {bad} in model config section {key!r}; allowed: {sorted(allowed)}")
            kwargs[key] = section(**copy.deepcopy(dict(value)))
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "ModelConfig":
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from e
        try:
            return cls.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from e

    def to_json(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")

    # ----------------------------------------------------------------- presets
    @classmethod
    def preset(cls, name: str) -> "ModelConfig":
        """A named architecture: one of :data:`PRESETS`."""
        try:
            factory = PRESETS[name]
        except KeyError:
            raise ConfigError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}") from None
        return factory()

    def patch_start_idx(self) -> int:
        """Index of the first patch token in an aggregator frame: 1 camera + R registers."""
        return 1 + self.aggregator.num_register_tokens


def _tiny() -> ModelConfig:
    return ModelConfig(
        encoder=EncoderConfig(embed_dim=64, depth=2, num_heads=4),
        aggregator=AggregatorConfig(embed_dim=64, depth=6, num_heads=4),
        camera_head=CameraHeadConfig(trunk_depth=2, num_heads=8),
        dense_head=DenseHeadConfig(features=16, out_channels=[8, 16, 32, 32], layers=[1, 2, 4, 5]),
        track_head=TrackHeadConfig(features=16, out_channels=[8, 16, 32, 32], layers=[1, 2, 4, 5],
                                   hidden_size=32, transformer_depth=2, corr_levels=3, corr_radius=2),
    )


#: Named architectures. ``vggt-1b`` matches the public ``facebook/VGGT-1B`` weights.
PRESETS = {
    "vggt-1b": ModelConfig,
    "tiny": _tiny,
}
