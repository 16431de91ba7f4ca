"""The training config: YAML round trip, overrides, validation, the shipped configs, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vggt3d.config import ConfigError
from vggt3d.training.config import TrainConfig, apply_overrides, load_config, parse_override

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_shipped_configs_round_trip(name, tmp_path):
    cfg = load_config(CONFIGS / name)
    cfg.to_yaml(tmp_path / "resolved.yaml")
    again = load_config(tmp_path / "resolved.yaml")
    assert again == cfg
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    if cfg.model.pretrained is None:
        cfg.model.model_config()  # the architecture resolves


def test_defaults_are_the_released_finetuning_setup():
    cfg = TrainConfig()
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.warmup) == (5e-5, 0.05, 0.05)
    assert (cfg.loss.camera_weight, cfg.loss.depth_weight, cfg.loss.camera_gamma) == (5.0, 1.0, 0.6)
    assert (cfg.loss.conf_alpha, cfg.loss.valid_range, cfg.loss.track_weight) == (0.2, 0.98, 0.05)
    assert cfg.data.num_frames == [2, 24] and cfg.data.images_per_batch == 48


def test_overrides_parse_yaml_values():
    assert parse_override("optim.lr=1e-4") == (["optim", "lr"], 1e-4)
    assert parse_override("data.num_frames=[2, 8]") == (["data", "num_frames"], [2, 8])
    assert parse_override("model.pretrained=null") == (["model", "pretrained"], None)
    assert parse_override("run.name=best-run") == (["run", "name"], "best-run")
    cfg = load_config(CONFIGS / "tiny_synthetic.yaml",
                      ["optim.lr=1e-4", "run.max_steps=7", "model.arch.aggregator.depth=5", "optim.freeze=[]",
                       "data.train=[{name: synthetic, weight: 2, kwargs: {seed: 3}}]"])
    assert cfg.optim.lr == 1e-4 and cfg.run.max_steps == 7 and cfg.model.model_config().aggregator.depth == 5
    assert cfg.data.train[0].weight == 2.0 and cfg.data.train[0].kwargs == {"seed": 3}


def test_nested_override_creates_sections():
    assert apply_overrides({}, ["a.b.c=1"]) == {"a": {"b": {"c": 1}}}
    with pytest.raises(ConfigError, match="not a mapping"):
        apply_overrides({"a": 1}, ["a.b=2"])


@pytest.mark.parametrize("override, message", [
    ("optim.lr=abc", "optim.lr must be a number"),
    ("optim.lrr=1", "unknown keys \\['lrr'\\] in config.optim"),
    ("run.max_steps=0", "run.max_steps must be positive"),
    ("data.image_size=[100, 112]", "multiples of the patch size"),
    ("optim.train_heads=[camera, dept]", "unknown heads"),
    ("accel.precision=fp64", "accel.precision"),
    ("loss.camera_loss_type=l3", "camera_loss_type"),
    ("optim.grad_clip={encoder: 1.0}", "unknown groups"),
    ("run.progress=maybe", "run.progress must be true or false"),
])
def test_validation_errors_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS / "tiny_synthetic.yaml", [override])


def test_bad_yaml_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(bad)


def test_cli_print_config(capsys):
    from vggt3d.cli import main

    assert main(["train", "--config", str(CONFIGS / "tiny_synthetic.yaml"), "optim.lr=2e-4", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["optim"]["lr"] == 2e-4 and printed["run"]["name"] == "tiny-synthetic"
    assert main(["train", "--config", str(CONFIGS / "tiny_synthetic.yaml"), "optim.nope=1", "--print-config"]) == 2


def test_inference_imports_no_training_code():
    import subprocess
    import sys

    code = ("import sys, vggt3d; vggt3d.VGGT3D; vggt3d.ModelConfig; import vggt3d.metrics; "
            "bad = [m for m in sys.modules if m.startswith('vggt3d.training') or m.split('.')[0] in "
            "('accelerate', 'tensorboard')]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
