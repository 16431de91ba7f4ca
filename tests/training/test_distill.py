"""Causal distillation with the ordinary trainer: the teacher's terms, learning from a teacher, exact resume, errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from toydata import ToyLoader, make_batch

from vggt3d import VGGT3D
from vggt3d.config import ConfigError
from vggt3d.training.batch import prepare_batch
from vggt3d.training.config import load_config
from vggt3d.training.distill import teacher_targets
from vggt3d.training.trainer import Trainer
from vggt3d.training.optim import init_vit_weights


def _causal_supported() -> bool:
    import inspect

    return "causal" in inspect.signature(VGGT3D.forward).parameters


@pytest.fixture
def teacher_dir(tmp_path, make_config):
    """A random tiny 28x28 camera + depth model saved as a pretrained directory (the teacher)."""
    torch.manual_seed(1)
    model = init_vit_weights(VGGT3D(make_config().model.model_config()))
    model.save_pretrained(tmp_path / "teacher")
    return tmp_path / "teacher"


def distill_config(make_config, teacher_dir, causal: bool, **distill):
    return make_config(distill={"enabled": True, "teacher": str(teacher_dir), "student_causal": causal, **distill},
                       run={"max_steps": 4, "ckpt_every": 2, "keep_last": 3})


def test_teacher_targets_are_a_pseudo_batch():
    out = {"pose_enc": torch.randn(2, 3, 9), "depth": torch.rand(2, 3, 14, 14, 1) + 0.1}
    out["depth"][0, 1, 2, 3] = float("nan")
    t = teacher_targets(out)
    assert t["gt_pose_enc"].shape == (2, 3, 9) and t["depths"].shape == (2, 3, 14, 14)
    assert t["point_masks"].sum() == 2 * 3 * 14 * 14 - 1 and not t["point_masks"][0, 1, 2, 3]


def test_distillation_learns_the_teacher_and_logs_both_terms(make_config, teacher_dir):
    """Teacher only (gt_weight 0), a fixed batch: the student moves towards the teacher's outputs."""
    cfg = distill_config(make_config, teacher_dir, causal=_causal_supported(), gt_weight=0.0)
    cfg.run.max_steps = 6
    trainer = Trainer(cfg, train_loader=ToyLoader(fixed=True))
    trainer.fit()
    losses = [h["objective"] for h in trainer.history]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.8 * losses[0], losses
    assert "teacher/loss_camera" in trainer.history[0] and "loss_camera" not in trainer.history[0]
    both = Trainer(distill_config(make_config, teacher_dir, causal=False), train_loader=ToyLoader())
    values = both.train_step(make_batch(0))
    assert {"loss_camera", "teacher/loss_camera", "teacher/loss_reg_depth"} <= set(values)
    # objective = gt_weight * ground-truth objective + teacher_weight * teacher objective
    batch = prepare_batch(make_batch(5), "cpu")
    losses, _ = both._forward_loss(batch)
    gt = both.loss_fn(both.unwrapped(batch["images"]), batch)["objective"]
    assert float(losses["objective"].detach()) == pytest.approx(float(gt.detach() + losses["teacher/objective"]),
                                                                rel=1e-5)


def test_distillation_resumes_exactly(make_config, teacher_dir, tmp_path):
    causal = _causal_supported()
    full = Trainer(distill_config(make_config, teacher_dir, causal), train_loader=ToyLoader(length=3))
    full.fit()
    reference = [h["objective"] for h in full.history]
    cfg = distill_config(make_config, teacher_dir, causal)
    cfg.run.name, cfg.run.seed = "resumed", 7
    resumed = Trainer(cfg, train_loader=ToyLoader(length=3))
    resumed.fit(resume=tmp_path / "run" / "checkpoints" / "step-00000002")
    assert [h["objective"] for h in resumed.history] == reference[2:]
    # checkpoints hold the student only
    ckpt = VGGT3D.from_pretrained(tmp_path / "run" / "checkpoints" / "step-00000004")
    teacher = VGGT3D.from_pretrained(teacher_dir)
    assert not all(torch.equal(a, b) for a, b in zip(ckpt.state_dict().values(), teacher.state_dict().values()))


@pytest.mark.skipif(not _causal_supported(), reason="needs model(images, causal=True)")
def test_student_runs_causally(make_config, teacher_dir):
    """The student's predictions are the causal pass; the teacher's targets the bidirectional one."""
    trainer = Trainer(distill_config(make_config, teacher_dir, causal=True), train_loader=ToyLoader())
    batch = prepare_batch(make_batch(3, S=4), "cpu")
    _, pred = trainer._forward_loss(batch)
    model = trainer.unwrapped
    with torch.no_grad():
        causal = model(batch["images"], causal=True)
        full = model(batch["images"])
    torch.testing.assert_close(pred["pose_enc"].detach(), causal["pose_enc"])
    assert not torch.allclose(causal["pose_enc"][:, 1:-1], full["pose_enc"][:, 1:-1], atol=1e-6)
    targets = trainer.distill.targets(batch["images"])
    with torch.no_grad():
        torch.testing.assert_close(targets["gt_pose_enc"], trainer.distill.teacher(batch["images"])["pose_enc"])


def test_distillation_config_errors(make_config, tmp_path):
    with pytest.raises(ConfigError, match="distill.teacher is not set"):
        Trainer(make_config(distill={"enabled": True}), train_loader=ToyLoader())
    with pytest.raises(ConfigError, match="both 0"):
        make_config(distill={"enabled": True, "teacher_weight": 0.0, "gt_weight": 0.0})
    with pytest.raises(ConfigError, match="teacher_weight"):
        make_config(distill={"teacher_weight": -1.0})
    camera_only = make_config(model={"preset": "tiny", "arch": {"img_size": 28, "heads": ["camera"]}})
    VGGT3D(camera_only.model.model_config()).save_pretrained(tmp_path / "cam")
    with pytest.raises(ConfigError, match="no depth head"):
        Trainer(make_config(distill={"enabled": True, "teacher": str(tmp_path / "cam")}), train_loader=ToyLoader())


def test_shipped_distillation_config_loads():
    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "distill_causal.yaml")
    assert cfg.distill.enabled and cfg.distill.student_causal and cfg.model.pretrained == "tiny-synthetic"
