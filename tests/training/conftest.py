"""Fixtures of the training tests: a tiny config and one CPU thread (small models run fastest that way)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # toydata

from vggt3d.training.config import TrainConfig  # noqa: E402




def tiny_config(tmp_path: Path, **sections) -> TrainConfig:
    """A 28 x 28, camera + depth, tiny-preset config writing under ``tmp_path``; ``sections`` update it."""
    d = {
        "run": {"name": "run", "output_dir": str(tmp_path), "max_steps": 4, "log_every": 2, "ckpt_every": 2,
                "image_every": 0, "progress": False, "export_final": False},
        "model": {"preset": "tiny", "arch": {"img_size": 28, "heads": ["camera", "depth"]}},
        "data": {"image_size": [28, 28]},
        "optim": {"lr": 1e-3, "warmup": 0.0},
    }
    for section, values in sections.items():
        d.setdefault(section, {}).update(values)
    return TrainConfig.from_dict(d)


@pytest.fixture
def make_config(tmp_path):
    return lambda **sections: tiny_config(tmp_path, **sections)
