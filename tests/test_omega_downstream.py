"""Everything downstream of the model with a tiny VGGT-Omega: reconstruct, prior/features, score, evaluate, train."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from vggt3d import VGGT3D, GeometryPrior, ModelConfig
from vggt3d.cli import main
from vggt3d.commands.reconstruct import main as reconstruct_main
from vggt3d.testing import load_rule_weights


@pytest.fixture(scope="module")
def omega_dir(tmp_path_factory):
    """A tiny VGGT-Omega checkpoint (rule weights; the camera branch damped to sane fields of view)."""
    model = load_rule_weights(VGGT3D(ModelConfig.preset("tiny-omega"))).eval()
    last = model.camera_head.camera_branch[2]
    with torch.no_grad():
        last.weight.mul_(0.02)
        last.bias.copy_(torch.tensor([0, 0, 0, 0, 0, 0, 1.0, 1.0, 1.2]))
    return model.save_pretrained(tmp_path_factory.mktemp("omega") / "tiny-omega")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for k, (w, h) in enumerate([(64, 48), (64, 48), (48, 64)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / f"{k}.png")
    return root


def test_reconstruct_points_from_depth(omega_dir, photos, tmp_path):
    from vggt3d.reconstruct import reconstruct

    rec = reconstruct(photos, model=str(omega_dir), device="cpu", max_points=300)
    assert rec.info["mode"] == "balanced" and rec.info["model_size"][0] % 16 == 0
    assert rec.cam_from_world.shape == (3, 4, 4) and rec.depth.shape[0] == 3 and len(rec.points) == 300
    assert np.isfinite(rec.points).all() and rec.world_points is None
    # balanced at 512: 4:3 -> 37 x 28 patches (592 x 448), 3:4 -> 448 x 592, padded with white to 592 x 592
    assert rec.info["model_size"] == [592, 592]


@pytest.mark.parametrize("extra,head", [(["--tracks", "grid:2"], "track"), (["--points-from", "pointmap"], "point")])
def test_reconstruct_refuses_missing_heads_by_name(omega_dir, photos, tmp_path, capsys, extra, head):
    code = reconstruct_main([str(photos), "--out", str(tmp_path / "out"), "--weights", str(omega_dir),
                             "--no-progress", *extra])
    err = capsys.readouterr().err
    assert code != 0 and f"no {head} head" in err and len(err.strip().splitlines()) <= 2
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_geometry_prior_layers_and_special_tokens(omega_dir):
    prior = GeometryPrior.from_pretrained(str(omega_dir), layers=[1, -1], resolution=64)
    frames = torch.rand(1, 3, 3, 40, 60)
    feats = prior(frames, heads=True)
    R = prior.model.config.aggregator.num_register_tokens
    assert feats.patch_tokens[3].shape == (1, 3, 3, 4, 128)  # 40x60 -> 48x64 (longer side 64, patch 16)
    assert feats.register_tokens[3].shape == (1, 3, R, 128) and feats.camera_tokens[1].shape == (1, 3, 128)
    assert feats.heads["depth"].shape[:2] == (1, 3) and feats.heads["pose_enc"].shape == (1, 3, 9)
    with torch.no_grad():
        tokens = prior.model.forward_intermediates(prior.resize(frames), [3])
    torch.testing.assert_close(feats.register_tokens[3], tokens[3][:, :, 1:1 + R])
    with pytest.raises(ValueError, match="track head"):
        prior(frames, query_points=torch.tensor([[3.0, 4.0]]))


def test_features_command_saves_all_special_tokens(omega_dir, photos, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "feats"
    assert main(["features", str(photos), "--out", str(out), "--model", str(omega_dir), "--layers", "3",
                 "--resolution", "64", "--no-progress", "--save-dtype", "float32"]) == 0
    files = sorted(out.glob("*.safetensors"))
    assert files
    data = load_file(files[0])
    registers = [v for k, v in data.items() if "register" in k]
    assert registers and registers[0].shape[-2:] == (8, 128)  # 1 camera + 8 registers = 9 special tokens


def test_score_command(omega_dir, photos, tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert main(["score", str(photos), "--model", str(omega_dir), "--resolution", "64", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert 0 <= data["clips"][0]["score"] <= 1


def test_evaluate_command(omega_dir, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["evaluate", "--data", "synthetic", "--data-arg", "num_scenes=2", "--data-arg", "num_frames=3",
                 "--data-arg", "image_size=[32,48]", "--data-arg", "seed=7", "--weights", str(omega_dir),
                 "--out", str(out), "--threads", "1"]) == 0
    report = json.loads((out / "results.json").read_text())
    assert len(report["scenes"]) == 2 and "AUC@30" in report["mean"]["model"]
    capsys.readouterr()
    assert main(["evaluate", "--data", "synthetic", "--data-arg", "num_scenes=1", "--data-arg", "image_size=[32,32]",
                 "--weights", str(omega_dir), "--out", str(tmp_path / "r2"), "--points-from", "pointmap"]) != 0
    assert "no point head" in capsys.readouterr().err


SYNTHETIC = "{name: synthetic, kwargs: {num_scenes: 4, num_frames: 3, image_size: [32, 32], seed: %d}}"


def _train_overrides(tmp_path, name, model):
    return [f"run.output_dir={tmp_path}", f"run.name={name}", "run.max_steps=2", "run.ckpt_every=2",
            "run.val_every=0", "run.progress=false", "run.export_final=false", *model,
            f"data.train=[{SYNTHETIC % 0}]", "data.images_per_batch=4", "data.num_frames=[2, 2]",
            "data.image_size=[32, 32]", "optim.warmup=0.0", "optim.lr=1e-3", "accel.num_threads=1"]


def test_train_from_scratch_and_fine_tune_with_frozen_encoder(omega_dir, tmp_path, capsys):
    from vggt3d.training.config import load_config
    from vggt3d.training.trainer import Trainer

    assert main(["train", *_train_overrides(tmp_path, "scratch", ["model.preset=tiny-omega"])]) == 0  # the CLI
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 2 and summary["skipped_steps"] == 0
    scratch = VGGT3D.from_pretrained(tmp_path / "scratch" / "checkpoints" / "step-00000002")
    assert scratch.config.family == "omega" and scratch.config == ModelConfig.preset("tiny-omega")
    before = VGGT3D.from_pretrained(omega_dir)
    tune = Trainer(load_config(None, _train_overrides(
        tmp_path, "tune", [f"model.pretrained={omega_dir}", "optim.freeze=[aggregator.patch_embed.*]"])))
    tune.fit()
    after = tune.unwrapped.state_dict()
    assert all(torch.equal(v, after[k].cpu()) for k, v in before.state_dict().items()
               if k.startswith("aggregator.patch_embed."))
    assert any(not torch.equal(v, after[k].cpu()) for k, v in before.state_dict().items()
               if k.startswith("dense_head."))
    with pytest.raises(Exception, match="patch size 16"):
        load_config(None, _train_overrides(tmp_path, "bad", ["model.preset=tiny-omega"]) + ["data.image_size=[28, 28]"])
