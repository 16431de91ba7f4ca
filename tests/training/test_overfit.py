"""The overfit check (issue #9): the real trainer, loss and data path must memorise a fixed scene.

If this fails after a change to the model, the losses, the pose encoding or the
data path, learning is broken; ``benchmarks/overfit.py`` prints the curve.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vggt3d.training.overfit import overfit

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "variants" / "joint_l1.yaml"
#: the check is about cameras and depth: the shipped recipe without its point and track heads
CAMERA_DEPTH = ["model.arch.heads=[camera, depth]", "optim.train_heads=[camera, depth]"]
STEPS = 300  # about 70 s on one free CPU thread (AbsRel 0.0485 at 200 steps: too close)


@pytest.mark.slow
def test_overfits_one_fixed_scene():
    history = overfit(CONFIG, steps=STEPS, scenes=1, frames=4, seed=3, every=STEPS, overrides=CAMERA_DEPTH)
    last = history[-1]
    assert last["rot_err_mean"] < 1.0, last
    assert last["trans_err_mean"] < 2.0, last
    assert last["abs_rel"] < 0.05, last
