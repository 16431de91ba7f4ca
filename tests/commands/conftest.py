"""Fixtures of the command tests."""

import pytest

from vggt3d import ModelConfig, VGGT3D
from vggt3d.testing import load_rule_weights


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A tiny checkpoint with rule weights (a ``from_pretrained`` directory)."""
    model = load_rule_weights(VGGT3D(ModelConfig.preset("tiny")))
    return str(model.save_pretrained(tmp_path_factory.mktemp("tiny-model")))
