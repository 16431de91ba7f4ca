"""The VGGT-1B architecture: checkpoint layout and one real forward pass (slow)."""

from __future__ import annotations

import pytest
import torch

from testutils import read_manifest
from vggt3d import ModelConfig, VGGT3D
from vggt3d.testing import rule_state_dict


def test_state_dict_matches_checkpoint_manifest(golden_dir):
    expected = read_manifest(golden_dir / "vggt_1b_state_dict.tsv")
    with torch.device("meta"):
        model = VGGT3D()
    found = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert len(expected) == 1797
    assert found == expected
    assert sum(v.numel() for v in model.state_dict().values()) == 1_256_537_516


def test_tiny_state_dict_matches_manifest(golden_dir):
    expected = read_manifest(golden_dir / "tiny_state_dict.tsv")
    found = {k: tuple(v.shape) for k, v in VGGT3D(ModelConfig.preset("tiny")).state_dict().items()}
    assert found == expected


@pytest.mark.slow
def test_vggt_1b_forward_with_rule_weights():
    """Load rule weights strictly (as a real checkpoint would load) and run every head once."""
    with torch.device("meta"):
        model = VGGT3D()
    model.load_state_dict(rule_state_dict(model), strict=True, assign=True)
    model.eval()
    images = torch.rand(1, 2, 3, 154, 140, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(images, query_points=torch.tensor([[[30.0, 40.0], [100.0, 70.0]]]))
    assert out["pose_enc"].shape == (1, 2, 9) and len(out["pose_enc_list"]) == 4
    assert out["depth"].shape == (1, 2, 154, 140, 1) and out["world_points"].shape == (1, 2, 154, 140, 3)
    assert out["track"].shape == (1, 2, 2, 2) and out["vis"].shape == (1, 2, 2)
    for key, value in out.items():
        if isinstance(value, torch.Tensor):
            assert torch.isfinite(value).all(), key
