"""Typed model configuration: one dataclass per component, named presets.

The JSON layout is the project's model config schema (``tests/fixtures/golden/
README.md``, extended for VGGT-Omega in ``tests/fixtures/golden/omega/README.md``)::

    img_size, patch_size
    encoder:     kind, embed_dim, depth, num_heads, mlp_ratio, num_register_tokens, norm_eps, rope_base
    aggregator:  kind, embed_dim, depth, num_heads, mlp_ratio, num_register_tokens, rope_base,
                 register_attention_layers, output_layers
    camera_head: kind, trunk_depth, num_heads, mlp_ratio, iterations
    dense_head:  kind, features, out_channels[4], layers[4]
    text_head:   depth, num_heads, mlp_ratio          (read only when heads has text_alignment)
    track_head:  features, out_channels[4], layers[4], hidden_size,
                 transformer_depth, corr_levels, corr_radius, stride, iterations
    heads:       which of camera, depth, point, track, text_alignment to build

Every key added for VGGT-Omega defaults to its VGGT-1B value, so the VGGT-1B
configs stay valid, and ``to_dict`` leaves those keys out while a section has
its VGGT-1B ``kind``: both families' JSON files round-trip exactly.

``aggregator.kind`` names the model family (:mod:`vggt3d.models`): ``vggt``
(VGGT-1B) or ``omega`` (VGGT-Omega). Constants the released weights fix and
that are therefore not part of the schema (VGGT's QK-norm and layer-scale
inits, the tracker's 64 virtual tracks and 8 heads, Omega's LayerNorm eps
1e-5) live in the modules that use them.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Mapping

HeadName = Literal["camera", "depth", "point", "track", "text_alignment"]
HEAD_NAMES: tuple[str, ...] = ("camera", "depth", "point", "track", "text_alignment")


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


def _check_kind(owner: str, kind: str, kinds: tuple[str, ...]) -> None:
    if kind not in kinds:
        raise ConfigError(f"{owner}.kind {kind!r} is unknown; choose from {list(kinds)}")


def _int_list(owner: str, name: str, value: Any) -> list[int]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ConfigError(f"{owner}.{name} must be a list of integers, got {value!r}")
    value = list(value)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{owner}.{name} must be a list of integers, got {value!r}")
    return value


class _Section:
    """``to_dict`` of a schema section: keys added for newer families are left out at their VGGT-1B defaults."""

    _LEGACY_KIND: ClassVar[str] = ""
    _NEW_KEYS: ClassVar[tuple[str, ...]] = ()

    def section_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)  # type: ignore[call-overload]
        if getattr(self, "kind", self._LEGACY_KIND) == self._LEGACY_KIND:
            defaults = {f.name: (f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
                        for f in dataclasses.fields(self)}  # type: ignore[arg-type]
            for key in self._NEW_KEYS:
                if d[key] == defaults[key]:
                    del d[key]
        return {k: v for k, v in d.items() if v is not None}


#: Encoder kinds (:data:`vggt3d.encoder.ENCODERS`): DINOv2-style (VGGT-1B) and DINOv3-style (VGGT-Omega).
ENCODER_KINDS: tuple[str, ...] = ("dinov2", "dinov3")
#: Model families (:data:`vggt3d.models.FAMILIES`, named by ``aggregator.kind``): the heads each can build and
#: the head kinds it uses (``camera_head.kind``, ``dense_head.kind``). A new family is one line in each.
FAMILY_HEADS: dict[str, tuple[str, ...]] = {
    "vggt": ("camera", "depth", "point", "track"),
    "omega": ("camera", "depth", "text_alignment"),
}
FAMILY_HEAD_KINDS: dict[str, tuple[str, str]] = {"vggt": ("iterative", "dpt"), "omega": ("trunk", "dpt_shuffle")}
FAMILY_KINDS: tuple[str, ...] = tuple(FAMILY_HEADS)


@dataclass
class EncoderConfig(_Section, _TransformerConfig):
    """Per-frame ViT encoder.

    ``kind``: ``dinov2`` (ViT with registers and an absolute position
    embedding, Oquab et al. 2023; Darcet et al. 2024) or ``dinov3`` (no
    absolute position embedding, RoPE on the patch tokens with base
    ``rope_base``, ``num_register_tokens`` storage tokens, no bias on keys;
    Simeoni et al. 2025). ``norm_eps`` is the LayerNorm epsilon.
    """

    _NAME: ClassVar[str] = "encoder"
    _LEGACY_KIND: ClassVar[str] = "dinov2"
    _NEW_KEYS: ClassVar[tuple[str, ...]] = ("kind", "norm_eps", "rope_base")

    kind: str = "dinov2"
    norm_eps: float = 1e-6
    rope_base: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_kind("encoder", self.kind, ENCODER_KINDS)
        _check_positive("encoder", norm_eps=self.norm_eps)
        if self.kind == "dinov3":
            if self.rope_base is None:
                raise ConfigError("encoder.rope_base is required for kind dinov3 (VGGT-Omega uses 100)")
            _check_positive("encoder", rope_base=self.rope_base)
            if (self.embed_dim // self.num_heads) % 4:
                raise ConfigError(f"encoder head dim {self.embed_dim // self.num_heads} must be a multiple of 4 "
                                  "for 2D RoPE")
        elif self.rope_base is not None:
            raise ConfigError(f"encoder.rope_base is only used by kind dinov3 (kind is {self.kind!r}); remove it")


@dataclass
class AggregatorConfig(_Section, _TransformerConfig):
    """Alternating frame / inter-frame attention trunk (VGGT Sec. 3.3).

    ``kind`` names the model family: ``vggt`` (RoPE in frame and global
    attention) or ``omega`` (DINOv3-style RoPE in frame attention only, no key
    bias, register attention at ``register_attention_layers``: the inter-frame
    block sees only the camera and register tokens of every frame).
    ``output_layers``: the layers a plain ``forward_intermediates`` keeps
    (``None``: every layer); it affects memory only.
    """

    _NAME: ClassVar[str] = "aggregator"
    _LEGACY_KIND: ClassVar[str] = "vggt"
    _NEW_KEYS: ClassVar[tuple[str, ...]] = ("kind", "rope_base", "register_attention_layers", "output_layers")

    kind: str = "vggt"
    rope_base: float = 100.0
    register_attention_layers: list[int] = field(default_factory=list)
    output_layers: list[int] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_kind("aggregator", self.kind, FAMILY_KINDS)
        _check_positive("aggregator", rope_base=self.rope_base)
        head_dim = self.embed_dim // self.num_heads
        if head_dim % 4:
            raise ConfigError(f"aggregator head dim {head_dim} must be a multiple of 4 for 2D RoPE")
        self.register_attention_layers = _int_list("aggregator", "register_attention_layers",
                                                   self.register_attention_layers)
        if self.output_layers is not None:
            self.output_layers = _int_list("aggregator", "output_layers", self.output_layers)
        for name in ("register_attention_layers", "output_layers"):
            bad = [i for i in getattr(self, name) or [] if not 0 <= i < self.depth]
            if bad:
                raise ConfigError(f"aggregator.{name} {bad} out of range for aggregator.depth={self.depth}")
        if self.register_attention_layers and self.kind == "vggt":
            raise ConfigError("aggregator.register_attention_layers needs kind omega (VGGT has no register attention)")


@dataclass
class CameraHeadConfig(_Section):
    """Camera head: ``iterative`` refinement (VGGT Sec. 3.3, uses ``iterations``) or one-pass ``trunk`` (VGGT-Omega).

    ``iterations`` defaults to 4 for ``iterative`` and must be absent for ``trunk``.
    """

    _LEGACY_KIND: ClassVar[str] = "iterative"
    _NEW_KEYS: ClassVar[tuple[str, ...]] = ("kind",)

    kind: str = "iterative"
    trunk_depth: int = 4
    num_heads: int = 16
    mlp_ratio: float = 4.0
    iterations: int | None = None

    def __post_init__(self) -> None:
        _check_kind("camera_head", self.kind, ("iterative", "trunk"))
        if self.kind == "iterative" and self.iterations is None:
            self.iterations = 4
        if self.kind == "trunk" and self.iterations is not None:
            raise ConfigError("camera_head.iterations is only used by kind iterative (a trunk head runs once); "
                              "remove it")
        _check_positive("camera_head", trunk_depth=self.trunk_depth, num_heads=self.num_heads,
                        mlp_ratio=self.mlp_ratio, **({"iterations": self.iterations} if self.iterations is not None
                                                     else {}))


def _four_ints(owner: str, name: str, value: Any) -> list[int]:
    value = list(value)
    if len(value) != 4 or not all(isinstance(v, int) for v in value):
        raise ConfigError(f"{owner}.{name} must be a list of 4 integers, got {value!r}")
    return value


@dataclass
class DenseHeadConfig(_Section):
    """DPT decoder (Ranftl et al. 2021) shared by the depth and point heads.

    ``kind``: ``dpt`` (VGGT-1B: upsampling output convolutions) or
    ``dpt_shuffle`` (VGGT-Omega: depth only, 1x1 convs and a pixel shuffle).
    """

    _LEGACY_KIND: ClassVar[str] = "dpt"
    _NEW_KEYS: ClassVar[tuple[str, ...]] = ("kind",)

    kind: str = "dpt"
    features: int = 256
    out_channels: list[int] = field(default_factory=lambda: [256, 512, 1024, 1024])
    layers: list[int] = field(default_factory=lambda: [4, 11, 17, 23])

    def __post_init__(self) -> None:
        _check_kind("dense_head", self.kind, ("dpt", "dpt_shuffle"))
        self.out_channels = _four_ints("dense_head", "out_channels", self.out_channels)
        self.layers = _four_ints("dense_head", "layers", self.layers)
        _check_positive("dense_head", features=self.features)
        if self.features % 2:
            raise ConfigError("dense_head.features must be even")


@dataclass
class TextHeadConfig:
    """VGGT-Omega's text-alignment readout: ``depth`` blocks of ``num_heads`` over the special tokens."""

    depth: int = 4
    num_heads: int = 16
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        _check_positive("text_head", depth=self.depth, num_heads=self.num_heads, mlp_ratio=self.mlp_ratio)

    def section_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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

    def section_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
    heads: list[str] = field(default_factory=lambda: ["camera", "depth", "point", "track"])
    text_head: TextHeadConfig | None = None

    _SECTIONS: ClassVar[dict[str, type]] = {
        "encoder": EncoderConfig,
        "aggregator": AggregatorConfig,
        "camera_head": CameraHeadConfig,
        "dense_head": DenseHeadConfig,
        "track_head": TrackHeadConfig,
        "text_head": TextHeadConfig,
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
        family = self.family
        other = [h for h in self.heads if h not in FAMILY_HEADS[family]]
        if other:
            raise ConfigError(f"heads {other} do not exist in the {family!r} family (aggregator.kind); "
                              f"it has {list(FAMILY_HEADS[family])}")
        camera_kind, dense_kind = FAMILY_HEAD_KINDS[family]
        if self.camera_head.kind != camera_kind or self.dense_head.kind != dense_kind:
            raise ConfigError(f"the {family!r} family (aggregator.kind) uses camera_head.kind {camera_kind!r} and "
                              f"dense_head.kind {dense_kind!r}, got {self.camera_head.kind!r} and "
                              f"{self.dense_head.kind!r}")
        if "text_alignment" in self.heads and self.text_head is None:
            self.text_head = TextHeadConfig()
        if self.encoder.embed_dim != self.aggregator.embed_dim:
            raise ConfigError(
                f"encoder.embed_dim={self.encoder.embed_dim} must equal aggregator.embed_dim="
                f"{self.aggregator.embed_dim} (the encoder's patch tokens enter the aggregator directly)"
            )
        depth = self.aggregator.depth
        for section in ("dense_head", "track_head")[:2 if "track" in FAMILY_HEADS[family] else 1]:
            bad = [i for i in getattr(self, section).layers if not 0 <= i < depth]
            if bad:
                raise ConfigError(f"{section}.layers {bad} out of range for aggregator.depth={depth}")
        kept = self.aggregator.output_layers
        if kept is not None:
            need = set(self.dense_head.layers) | {depth - 1}
            if "track" in self.heads:
                need |= set(self.track_head.layers)
            if need - set(kept):
                raise ConfigError(f"aggregator.output_layers {kept} must include the layers the heads read "
                                  f"{sorted(need)} (dense_head.layers and the last layer)")

    @property
    def family(self) -> str:
        """The model family (:data:`vggt3d.models.FAMILIES`): ``aggregator.kind``."""
        return self.aggregator.kind

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
            if section is not None and value is None and key == "text_head":
                continue
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
        """The schema dictionary; keys at their VGGT-1B defaults are left out of sections of VGGT-1B kind."""
        d: dict[str, Any] = {"img_size": self.img_size, "patch_size": self.patch_size}
        for key in self._SECTIONS:
            section = getattr(self, key)
            if section is None or (key == "track_head" and "track" not in FAMILY_HEADS[self.family]):
                continue
            d[key] = section.section_dict()
        d["heads"] = list(self.heads)
        return d

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
        from .presets import PRESETS

        try:
            factory = PRESETS[name]
        except KeyError:
            raise ConfigError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}") from None
        return factory()

    def patch_start_idx(self) -> int:
        """Index of the first patch token in an aggregator frame: 1 camera + R registers."""
        return 1 + self.aggregator.num_register_tokens

    def default_resolution(self) -> int:
        """The input size the loaders use: ``img_size`` (518) for a DINOv2 encoder; for a DINOv3 encoder (no
        position grid, ``img_size`` unused) VGGT-Omega's resolutions: 256 with the text head, else 512."""
        if self.encoder.kind == "dinov2":
            return self.img_size
        return 256 if "text_alignment" in self.heads else 512

    def default_mode(self) -> str:
        """The loader mode of the family: ``crop`` (VGGT-1B) or ``balanced`` (VGGT-Omega)."""
        return "crop" if self.encoder.kind == "dinov2" else "balanced"


def __getattr__(name: str) -> Any:
    if name == "PRESETS":  # defined in vggt3d.presets (which imports this module)
        from .presets import PRESETS

        return PRESETS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
