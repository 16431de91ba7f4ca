"""Named model architectures (:meth:`vggt3d.ModelConfig.preset`).

``vggt-1b`` is ``ModelConfig()`` (``facebook/VGGT-1B``); ``vggt-omega-1b-512``
and ``vggt-omega-1b-256-text`` match ``vggt_omega_1b_512.pt`` and
``vggt_omega_1b_256_text.pt`` of ``facebook/VGGT-Omega``; ``tiny``,
``tiny-omega`` and ``tiny-omega-text`` are the golden test architectures
(``tests/fixtures/golden/``).
"""

from __future__ import annotations

from collections.abc import Callable

from .config import (
    AggregatorConfig,
    CameraHeadConfig,
    DenseHeadConfig,
    EncoderConfig,
    ModelConfig,
    TextHeadConfig,
    TrackHeadConfig,
)

__all__ = ["PRESETS"]


def _tiny() -> ModelConfig:
    return ModelConfig(
        encoder=EncoderConfig(embed_dim=64, depth=2, num_heads=4),
        aggregator=AggregatorConfig(embed_dim=64, depth=6, num_heads=4),
        camera_head=CameraHeadConfig(trunk_depth=2, num_heads=8),
        dense_head=DenseHeadConfig(features=16, out_channels=[8, 16, 32, 32], layers=[1, 2, 4, 5]),
        track_head=TrackHeadConfig(features=16, out_channels=[8, 16, 32, 32], layers=[1, 2, 4, 5],
                                   hidden_size=32, transformer_depth=2, corr_levels=3, corr_radius=2),
    )


def _omega(text: bool = False) -> ModelConfig:
    """VGGT-Omega-1B (``VGGTOmega()``), with the text-alignment head when ``text``."""
    return ModelConfig(
        img_size=224, patch_size=16,
        encoder=EncoderConfig(kind="dinov3", norm_eps=1e-5, rope_base=100.0),
        aggregator=AggregatorConfig(kind="omega", num_register_tokens=16, register_attention_layers=[2, 6, 9, 14, 20],
                                    output_layers=[4, 11, 17, 23]),
        camera_head=CameraHeadConfig(kind="trunk"),
        dense_head=DenseHeadConfig(kind="dpt_shuffle"),
        heads=["camera", "depth"] + (["text_alignment"] if text else []),
        text_head=TextHeadConfig() if text else None,
    )


def _tiny_omega(text: bool = False) -> ModelConfig:
    """A tiny VGGT-Omega (width 64, 8 registers; ``tests/fixtures/golden/omega/tiny_omega*_config.json``)."""
    return ModelConfig(
        img_size=224, patch_size=16,
        encoder=EncoderConfig(kind="dinov3", embed_dim=64, depth=2, num_heads=4, norm_eps=1e-5, rope_base=100.0),
        aggregator=AggregatorConfig(kind="omega", embed_dim=64, depth=4, num_heads=4, num_register_tokens=8,
                                    register_attention_layers=[1, 2], output_layers=[0, 1, 2, 3]),
        camera_head=CameraHeadConfig(kind="trunk", trunk_depth=2, num_heads=4),
        dense_head=DenseHeadConfig(kind="dpt_shuffle", features=16, out_channels=[8, 16, 32, 32], layers=[0, 1, 2, 3]),
        heads=["camera", "depth"] + (["text_alignment"] if text else []),
        text_head=TextHeadConfig(depth=2, num_heads=4) if text else None,
    )


#: Named architectures. ``vggt-1b`` matches the public ``facebook/VGGT-1B`` weights, ``vggt-omega-1b-512`` and
#: ``vggt-omega-1b-256-text`` the ``vggt_omega_1b_512.pt`` / ``vggt_omega_1b_256_text.pt`` files of
#: ``facebook/VGGT-Omega``.
PRESETS: dict[str, Callable[[], ModelConfig]] = {
    "vggt-1b": ModelConfig,
    "tiny": _tiny,
    "vggt-omega-1b-512": _omega,
    "vggt-omega-1b-256-text": lambda: _omega(text=True),
    "tiny-omega": _tiny_omega,
    "tiny-omega-text": lambda: _tiny_omega(text=True),
}
