"""The name-derived weight rule against the check values of the golden README."""

import numpy as np
import pytest
import torch

from vggt3d.testing import load_rule_weights, rule_state_dict, rule_tensor

# name, shape, salt, first values (golden README table)
CHECK_VALUES = [
    ("aggregator.camera_token", (1, 2, 1, 4), 0, [0.095493436, 0.81118333, 0.77957016, -0.29954192]),
    ("aggregator.frame_blocks.0.attn.qkv.weight", (6, 4), 0, [0.40076602, 0.19285053, -0.16709982, 0.3845548]),
    ("aggregator.frame_blocks.0.norm1.weight", (4,), 0, [1.0139613, 0.9589603, 1.0768584, 0.97109175]),
    ("aggregator.frame_blocks.0.ls1.gamma", (4,), 0, [0.09772576, 0.128962, 0.128791, 0.10609014]),
    ("depth_head.projects.0.bias", (4,), 0, [-0.03282652, 0.003952316, 0.033360448, -0.01163269]),
    ("track_head.tracker.updateformer.flow_head.weight", (3, 4), 0,
     [-0.012911314, 0.003854458, -0.028660277, -0.015315294]),
    ("aggregator.frame_blocks.0.norm1.weight", (4,), 12345, [0.94169986, 0.8942147, 0.9623093, 0.9012436]),
]


@pytest.mark.parametrize("name,shape,salt,expected", CHECK_VALUES)
def test_rule_matches_readme_table(name, shape, salt, expected):
    t = rule_tensor(name, shape, salt)
    assert t.shape == shape and t.dtype == torch.float32
    np.testing.assert_allclose(t.flatten()[:4].numpy(), expected, rtol=0, atol=1e-7)


def test_rule_is_deterministic_and_salted():
    a = rule_tensor("x.weight", (5, 7))
    assert torch.equal(a, rule_tensor("x.weight", (5, 7)))
    assert not torch.equal(a, rule_tensor("x.weight", (5, 7), salt=1))
    assert not torch.equal(a, rule_tensor("y.weight", (5, 7)))


def test_rule_unit_statistics():
    t = rule_tensor("stats", (2, 200_000))  # unit / sqrt(200000)
    unit = t * np.sqrt(200_000)
    assert abs(unit.mean().item()) < 0.01 and abs(unit.std().item() - 1) < 0.01
    assert unit.abs().max().item() <= np.sqrt(3) + 1e-6


def test_load_rule_weights_fills_every_tensor():
    m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    load_rule_weights(m, salt=3)
    sd = rule_state_dict(m, salt=3)
    for k, v in m.state_dict().items():
        assert torch.equal(v, sd[k])
