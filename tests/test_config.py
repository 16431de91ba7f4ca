"""ModelConfig: the JSON schema, presets and validation."""

import json

import pytest

from vggt3d import ModelConfig
from vggt3d.config import ConfigError, PRESETS


@pytest.mark.parametrize("name,preset", [("vggt_1b_config.json", "vggt-1b"), ("tiny_config.json", "tiny")])
def test_golden_configs_round_trip(golden_dir, name, preset):
    d = json.loads((golden_dir / name).read_text())
    cfg = ModelConfig.from_dict(d)
    assert cfg.to_dict() == d
    assert cfg == ModelConfig.preset(preset)
    assert ModelConfig.from_json(golden_dir / name) == cfg


def test_default_is_vggt_1b(golden_dir):
    assert ModelConfig().to_dict() == json.loads((golden_dir / "vggt_1b_config.json").read_text())
    assert set(PRESETS) >= {"vggt-1b", "tiny"}


def test_json_file_round_trip(tmp_path):
    cfg = ModelConfig.preset("tiny")
    cfg.heads = ["camera", "depth"]
    cfg.to_json(tmp_path / "c.json")
    assert ModelConfig.from_json(tmp_path / "c.json") == cfg


def test_unknown_keys_are_named(golden_dir):
    d = json.loads((golden_dir / "tiny_config.json").read_text())
    d["imgsize"] = 5
    with pytest.raises(ConfigError, match="imgsize"):
        ModelConfig.from_dict(d)
    d = json.loads((golden_dir / "tiny_config.json").read_text())
    d["track_head"]["corr_level"] = 3
    with pytest.raises(ConfigError, match="corr_level.*track_head"):
        ModelConfig.from_dict(d)


def test_partial_dict_takes_defaults():
    cfg = ModelConfig.from_dict({"heads": ["camera"]})
    assert cfg.encoder.embed_dim == 1024 and cfg.heads == ["camera"]


@pytest.mark.parametrize("patch,match", [
    ({"heads": ["camera", "normals"]}, "normals"),
    ({"img_size": 500}, "multiple of patch_size"),
    ({"dense_head": {"layers": [4, 11, 17, 24]}}, "out of range"),
    ({"dense_head": {"layers": [4, 11, 17]}}, "4 integers"),
    ({"aggregator": {"embed_dim": 1000, "num_heads": 16}}, "divisible"),
    ({"encoder": {"embed_dim": 512, "num_heads": 8}}, "must equal aggregator"),
    ({"camera_head": {"iterations": 0}}, "positive"),
])
def test_invalid_configs(patch, match):
    with pytest.raises(ConfigError, match=match):
        ModelConfig.from_dict(patch)


def test_bad_preset_and_bad_json(tmp_path):
    with pytest.raises(ConfigError, match="vggt-1b"):
        ModelConfig.preset("huge")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json"):
        ModelConfig.from_json(tmp_path / "bad.json")
