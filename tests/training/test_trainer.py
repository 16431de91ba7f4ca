"""The trainer on the tiny preset, CPU: learning, exact resume, skipped steps, freezing, panels."""

from __future__ import annotations

import math

import pytest
import torch
from toydata import ToyLoader

from vggt3d import VGGT3D
from vggt3d.training.checkpoint import CheckpointManager, load_training_state
from vggt3d.training.trainer import Trainer


def test_loss_decreases_on_a_fixed_batch(make_config):
    cfg = make_config(run={"max_steps": 12, "ckpt_every": 100})
    trainer = Trainer(cfg, train_loader=ToyLoader(fixed=True))
    trainer.fit()
    losses = [h["objective"] for h in trainer.history]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.6 * losses[0], losses


def test_resume_gives_the_same_next_losses(make_config, tmp_path):
    full = Trainer(make_config(run={"name": "full", "max_steps": 4, "ckpt_every": 2, "keep_last": 3}),
                   train_loader=ToyLoader(length=3))  # 3 batches per epoch: the resume crosses an epoch
    full.fit()
    reference = [h["objective"] for h in full.history]
    resumed = Trainer(make_config(run={"name": "resumed", "max_steps": 4, "seed": 123}),
                      train_loader=ToyLoader(length=3))
    resumed.fit(resume=tmp_path / "full" / "checkpoints" / "step-00000002")
    assert [h["step"] for h in resumed.history] == [3, 4]
    assert [h["objective"] for h in resumed.history] == reference[2:]  # bit-exact on CPU
    for a, b in zip(full.unwrapped.parameters(), resumed.unwrapped.parameters()):
        assert torch.equal(a, b)


def test_resume_latest_from_the_same_run(make_config):
    cfg = make_config(run={"max_steps": 2})
    Trainer(cfg, train_loader=ToyLoader()).fit()
    cfg.run.max_steps = 3
    again = Trainer(cfg, train_loader=ToyLoader())
    again.fit(resume="latest")
    assert [h["step"] for h in again.history] == [3]
    assert CheckpointManager(cfg.run_dir / "checkpoints").steps() == [2, 3]


def test_checkpoint_is_a_pretrained_directory(make_config):
    cfg = make_config(run={"max_steps": 2, "export_final": True})
    trainer = Trainer(cfg, train_loader=ToyLoader())
    trainer.fit()
    for folder in (cfg.run_dir / "checkpoints" / "step-00000002", cfg.run_dir / "final"):
        model = VGGT3D.from_pretrained(folder)
        for (name, a), b in zip(model.state_dict().items(), trainer.unwrapped.state_dict().values()):
            assert torch.equal(a, b), name
    assert (cfg.run_dir / "config.yaml").is_file()
    state, rank = load_training_state(cfg.run_dir / "checkpoints" / "step-00000002")
    assert state["step"] == 2 and rank["data"]["index"] == 2


def test_non_finite_loss_skips_the_step(make_config):
    trainer = Trainer(make_config(run={"max_steps": 3, "ckpt_every": 100}), train_loader=ToyLoader())
    real = trainer.loss_fn
    calls = {"n": 0}

    def flaky(predictions, batch):
        calls["n"] += 1
        out = real(predictions, batch)
        if calls["n"] == 2:
            out["objective"] = out["objective"] * float("nan")
        return out

    trainer.loss_fn = flaky
    trainer.fit()
    assert trainer.skipped_steps == 1
    assert [h["skipped"] for h in trainer.history] == [0.0, 1.0, 0.0]
    assert calls["n"] == 3


def test_skipped_step_leaves_weights_untouched(make_config):
    trainer = Trainer(make_config(run={"max_steps": 1, "ckpt_every": 100}), train_loader=ToyLoader())
    real = trainer.loss_fn
    trainer.loss_fn = lambda p, b: {**real(p, b), "objective": real(p, b)["objective"] * float("inf")}
    before = {k: v.clone() for k, v in trainer.unwrapped.state_dict().items()}
    trainer.fit()
    after = trainer.unwrapped.state_dict()
    assert trainer.skipped_steps == 1
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not trainer.optimizer.state_dict()["state"]  # AdamW never stepped


def test_freezing_and_trained_heads(make_config):
    cfg = make_config(run={"max_steps": 2, "ckpt_every": 100}, optim={"lr": 1e-3, "warmup": 0.0,
                                                                     "freeze": ["aggregator.*"],
                                                                     "train_heads": ["depth"]})
    trainer = Trainer(cfg, train_loader=ToyLoader())
    before = {k: v.clone() for k, v in trainer.unwrapped.state_dict().items()}
    trainer.fit()
    after = trainer.unwrapped.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("depth_head.") for k in changed)
    assert "loss_camera" not in trainer.history[0]
    assert not trainer.unwrapped.aggregator.training  # frozen modules stay in eval()


def test_bad_freeze_pattern_is_an_error(make_config):
    with pytest.raises(ValueError, match="matches no parameter"):
        Trainer(make_config(optim={"freeze": ["agregator.*"]}), train_loader=ToyLoader())


def test_accumulation_and_tracks(make_config):
    cfg = make_config(run={"max_steps": 2, "ckpt_every": 100, "image_every": 1},
                      model={"preset": "tiny", "arch": {"img_size": 28}},
                      optim={"accum_steps": 2, "train_heads": ["camera", "depth", "point", "track"], "warmup": 0.0},
                      data={"image_size": [28, 28], "track_queries": 8})
    trainer = Trainer(cfg, train_loader=ToyLoader(num_tracks=8))
    trainer.fit()
    for h in trainer.history:
        assert h["skipped"] == 0.0
        for key in ("loss_track", "loss_vis", "loss_conf_point", "loss_camera", "loss_reg_depth"):
            assert math.isfinite(h[key]), key
        assert set(k for k in h if k.startswith("grad_norm/")) == {f"grad_norm/{g}" for g in
                                                                   ("aggregator", "camera", "depth", "point", "track")}
    assert any((cfg.run_dir / "tensorboard").iterdir())


KILLED_WRITER = r'''
import sys, time
sys.path.insert(0, {toy!r})
from toydata import ToyLoader
from vggt3d.training import checkpoint
from vggt3d.training.config import TrainConfig
from vggt3d.training.trainer import Trainer

real_save = checkpoint.save_torch

def hanging_save(obj, path):
    if "step-00000004" in str(path) and path.name == "training_state.pt":
        with open(path, "wb") as f:
            f.write(b"half a checkpoint")  # a partial file, then the process is killed
            f.flush()
        print("WRITING", flush=True)
        time.sleep(600)
    real_save(obj, path)

checkpoint.save_torch = hanging_save
import yaml
cfg = TrainConfig.from_dict(yaml.safe_load(open({config!r})))
Trainer(cfg, train_loader=ToyLoader()).fit()
'''


def test_killed_during_checkpoint_write_keeps_previous_checkpoint(make_config, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    cfg = make_config(run={"max_steps": 6, "ckpt_every": 2}, accel={"num_threads": 1})
    config_file = tmp_path / "config.yaml"
    cfg.to_yaml(config_file)
    script = tmp_path / "writer.py"
    script.write_text(KILLED_WRITER.format(toy=str(Path(__file__).parent), config=str(config_file)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "WRITING", proc.stderr.read()
    finally:
        proc.kill()  # SIGKILL in the middle of writing step 4
        proc.wait(timeout=30)
    manager = CheckpointManager(cfg.run_dir / "checkpoints")
    assert manager.steps() == [2]
    assert (manager.directory / ".tmp-step-00000004").is_dir()
    VGGT3D.from_pretrained(manager.latest())  # loadable
    state, _ = load_training_state(manager.latest())
    assert state["step"] == 2
    resumed = Trainer(cfg, train_loader=ToyLoader())
    resumed.fit(resume="latest")
    assert [h["step"] for h in resumed.history] == [3, 4, 5, 6]
    assert manager.steps() == [4, 6] and not list(manager.directory.glob(".tmp-*"))


def test_grad_checkpointing_gives_the_same_steps(make_config, tmp_path):
    plain = Trainer(make_config(run={"name": "plain", "max_steps": 2, "ckpt_every": 100}), train_loader=ToyLoader())
    plain.fit()
    cfg = make_config(run={"name": "ckpt", "max_steps": 2, "ckpt_every": 100},
                      model={"preset": "tiny", "arch": {"img_size": 28, "heads": ["camera", "depth"]},
                             "grad_checkpointing": True})
    checkpointed = Trainer(cfg, train_loader=ToyLoader())
    assert checkpointed.unwrapped.aggregator.grad_checkpointing
    checkpointed.fit()
    for a, b in zip(plain.history, checkpointed.history):
        assert a["objective"] == pytest.approx(b["objective"], rel=1e-6, abs=1e-7)


def test_fine_tune_from_a_pretrained_directory_dropping_heads(make_config, tmp_path):
    from vggt3d import ModelConfig

    cfg = ModelConfig.preset("tiny")
    cfg.img_size = 28
    source = VGGT3D(ModelConfig.from_dict(cfg.to_dict()))  # all four heads
    source.save_pretrained(tmp_path / "pretrained")
    run = make_config(run={"max_steps": 1, "ckpt_every": 100, "export_final": True},
                      model={"pretrained": str(tmp_path / "pretrained"), "arch": {"heads": ["camera", "depth"]}},
                      optim={"lr": 1e-3, "warmup": 0.0, "freeze": ["aggregator.*"]})
    trainer = Trainer(run, train_loader=ToyLoader())
    assert trainer.unwrapped.point_head is None and trainer.unwrapped.track_head is None
    for name, value in trainer.unwrapped.aggregator.state_dict().items():
        assert torch.equal(value, source.aggregator.state_dict()[name]), name
    trainer.fit()
    assert VGGT3D.from_pretrained(run.run_dir / "final").config.heads == ["camera", "depth"]
    with pytest.raises(ValueError, match="may only set 'heads'"):
        bad = make_config(model={"pretrained": str(tmp_path / "pretrained"), "arch": {"img_size": 56}})
        Trainer(bad, train_loader=ToyLoader())
