"""Learning-rate schedule, clip groups, checkpoint pruning."""

from __future__ import annotations

import math

import pytest
import torch

from vggt3d import ModelConfig, VGGT3D
from vggt3d.training.checkpoint import CheckpointManager
from vggt3d.training.optim import apply_freezing, clip_gradients, clip_groups, warmup_cosine_lr


def test_warmup_cosine_values():
    lr = lambda step: warmup_cosine_lr(step, 1000, 5e-5, warmup=0.05, start_lr=1e-8, final_lr=1e-8)  # noqa: E731
    assert lr(0) == pytest.approx(1e-8)
    assert lr(25) == pytest.approx(1e-8 + (5e-5 - 1e-8) * 0.5)  # half-way through the warmup
    assert lr(50) == pytest.approx(5e-5)  # the peak
    mid = 50 + 950 / 2  # half-way through the cosine
    assert warmup_cosine_lr(int(mid), 1000, 5e-5) == pytest.approx(1e-8 + 0.5 * (5e-5 - 1e-8), rel=1e-3)
    assert lr(1000) == pytest.approx(1e-8)
    values = [lr(s) for s in range(50, 1001)]
    assert all(a >= b for a, b in zip(values, values[1:]))  # monotone decay
    expected = 0.5 * (1 + math.cos(math.pi * 0.1))
    assert warmup_cosine_lr(10, 100, 1.0, warmup=0.0, final_lr=0.0) == pytest.approx(expected)


def tiny_model():
    cfg = ModelConfig.preset("tiny")
    cfg.img_size = 28
    return VGGT3D(ModelConfig.from_dict(cfg.to_dict()))


def test_clip_groups_are_separate():
    model = tiny_model()
    apply_freezing(model, [], ["camera", "depth", "point", "track"])
    groups = clip_groups(model, {"aggregator": 1.0, "camera": 0.5, "depth": None, "point": 1.0, "track": 1.0})
    for params, _ in groups.values():
        for p in params:
            p.grad = torch.full_like(p, 10.0)
    norms = clip_gradients(groups)
    assert set(norms) == {"aggregator", "camera", "depth", "point", "track"}
    after = {g: torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in ps])).item()
             for g, (ps, _) in groups.items()}
    assert after["aggregator"] == pytest.approx(1.0, rel=1e-4) and after["camera"] == pytest.approx(0.5, rel=1e-4)
    assert after["depth"] == pytest.approx(norms["depth"], rel=1e-5)  # not clipped
    with pytest.raises(ValueError, match="outside the gradient clipping groups"):
        clip_groups(model, {"aggregator": 1.0, "camera": 1.0})


def test_prune_keeps_last_k_and_best(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=2)
    for step in (1, 2, 3):
        tmp = manager.begin(step)
        (tmp / "training_state.pt").write_bytes(b"x")
        manager.commit(step, tmp)
        if step == 1:
            manager.record_best(1, 0.5)
    tmp = manager.begin(4)
    (tmp / "training_state.pt").write_bytes(b"x")
    manager.commit(4, tmp)
    assert manager.steps() == [1, 3, 4]  # the best (1) survives
    assert manager.best() == {"step": 1, "value": 0.5}
    assert manager.resolve("best") == manager.path(1) and manager.resolve(None) == manager.path(4)
    assert manager.resolve(tmp_path) == manager.path(4)
    assert manager.is_better(0.4, 0.5) and not CheckpointManager(tmp_path, best_mode="max").is_better(0.4, 0.5)
