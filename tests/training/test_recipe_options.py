"""Recipe options of the training config: init_from (adding heads), init overrides, data.augment."""

from __future__ import annotations

import pytest
import torch

from vggt3d.config import ConfigError
from vggt3d.training.config import TrainConfig
from vggt3d.training.setup import build_loader, build_model

ARCH = {"img_size": 28, "encoder": {"embed_dim": 32, "depth": 1, "num_heads": 2},
        "aggregator": {"embed_dim": 32, "depth": 2, "num_heads": 2},
        "camera_head": {"trunk_depth": 1, "num_heads": 2},
        "dense_head": {"features": 8, "out_channels": [8, 8, 8, 8], "layers": [0, 1, 1, 1]},
        "track_head": {"features": 8, "out_channels": [4, 4, 4, 4], "layers": [0, 1, 1, 1], "hidden_size": 8,
                       "transformer_depth": 1, "corr_levels": 2, "corr_radius": 1}}


def _cfg(heads, **model) -> TrainConfig:
    return TrainConfig.from_dict({"model": {"preset": "tiny", "arch": {**ARCH, "heads": heads}, **model}})


def test_init_from_adds_heads_and_keeps_the_trained_weights(tmp_path):
    torch.manual_seed(0)
    first = build_model(_cfg(["camera", "depth"]))
    first.save_pretrained(tmp_path / "stage1")
    model = build_model(_cfg(["camera", "depth", "point", "track"], init_from=str(tmp_path / "stage1")))
    own = model.state_dict()
    for k, v in first.state_dict().items():
        assert torch.equal(own[k], v), k
    assert model.point_head is not None and model.track_head is not None


def test_init_from_rejects_another_architecture(tmp_path):
    build_model(_cfg(["camera", "depth"])).save_pretrained(tmp_path / "stage1")
    wider = {**ARCH, "camera_head": {"trunk_depth": 2, "num_heads": 2}, "heads": ["camera", "depth"]}
    cfg = TrainConfig.from_dict({"model": {"preset": "tiny", "arch": wider, "init_from": str(tmp_path / "stage1")}})
    with pytest.raises(ValueError, match="init_from"):
        build_model(cfg)
    # a checkpoint with heads the new model lacks is refused too
    build_model(_cfg(["camera", "depth", "point"])).save_pretrained(tmp_path / "with-point")
    with pytest.raises(ValueError, match="init_from"):
        build_model(_cfg(["camera", "depth"], init_from=str(tmp_path / "with-point")))


def test_init_from_and_pretrained_exclude_each_other():
    with pytest.raises(ConfigError, match="init_from"):
        TrainConfig.from_dict({"model": {"pretrained": "tiny-synthetic", "init_from": "x"}})


def test_init_overrides_set_layer_scale_and_tokens():
    model = build_model(_cfg(["camera", "depth"], init_layer_scale=0.5, init_token_std=0.02))
    gammas = [p for n, p in model.named_parameters() if n.endswith(("ls1.gamma", "ls2.gamma"))]
    assert gammas and all(torch.all(g == 0.5) for g in gammas)
    assert 0.005 < float(model.aggregator.camera_token.detach().std()) < 0.1
    with pytest.raises(ConfigError, match="init_layer_scale"):
        _cfg(["camera"], init_layer_scale=-1.0)


def test_data_augment_reaches_the_loader_and_is_validated():
    cfg = TrainConfig.from_dict({"data": {
        "train": [{"name": "synthetic", "kwargs": {"num_scenes": 4, "num_frames": 2, "image_size": [28, 28]}}],
        "images_per_batch": 2, "num_frames": [2, 2], "image_size": 56,
        "augment": {"aspect_range": [0.5, 0.5], "color_jitter_prob": 0.0}}})
    loader = build_loader(cfg, "train", seed=0)
    batch = next(iter(loader))
    assert tuple(batch["images"].shape[-2:]) == (28, 56)  # H = 0.5 W, rounded to the patch size
    for bad in ({"aspect_range": [1.0, 0.5]}, {"sharpness": 1.0}):
        with pytest.raises(ConfigError, match="data.augment"):
            TrainConfig.from_dict({"data": {"augment": bad}})
