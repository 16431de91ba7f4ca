"""The shipped tiny-synthetic model loads by name and beats the trivial baseline on held-out scenes."""

from __future__ import annotations

import pytest
import torch

from vggt3d import VGGT3D
from vggt3d.hub import shipped_models

pytestmark = pytest.mark.skipif("tiny-synthetic" not in shipped_models(), reason="tiny-synthetic not shipped")


def test_loads_by_name_and_runs():
    model = VGGT3D.from_pretrained("tiny-synthetic")
    assert model.config.heads == ["camera", "depth", "point", "track"] and model.config.img_size == 112
    assert sum(p.numel() for p in model.parameters()) * 4 <= 25_000_000  # float32 weights within 25 MB
    with torch.no_grad():
        out = model(torch.rand(2, 3, 112, 112), query_points=torch.tensor([[20.0, 30.0], [60.0, 70.0]]))
    assert out["pose_enc"].shape == (1, 2, 9) and out["depth"].shape == (1, 2, 112, 112, 1)
    assert out["world_points"].shape == (1, 2, 112, 112, 3) and out["track"].shape == (1, 2, 2, 2)
    assert torch.isfinite(out["depth"]).all() and (out["depth"] > 0).all()
    assert torch.isfinite(out["world_points"]).all() and torch.isfinite(out["track"]).all()


def test_every_cli_head_option_works(tmp_path):
    """--tracks and --points-from pointmap run with the shipped model on the demo scene."""
    from pathlib import Path

    from vggt3d.cli import main

    images = Path(__file__).resolve().parents[2] / "examples" / "room" / "images"
    out = tmp_path / "out"
    code = main(["reconstruct", str(images), "--weights", "tiny-synthetic", "--out", str(out), "--tracks", "grid:8",
                 "--points-from", "pointmap", "--no-progress", "--device", "cpu"])
    assert code == 0 and any(out.iterdir())


def test_beats_the_trivial_baseline_on_held_out_scenes():
    from vggt3d.data import build_dataset
    from vggt3d.evaluation import EvalSettings, evaluate

    model = VGGT3D.from_pretrained("tiny-synthetic")
    dataset = build_dataset("synthetic", num_scenes=4, num_frames=4, image_size=[112, 112], seed=4242)
    mean = evaluate(model, dataset, EvalSettings(max_points=2000)).mean()
    assert mean["model"]["abs_rel"] < mean["baseline"]["abs_rel"]
    assert mean["model"]["AUC@30"] > mean["baseline"]["AUC@30"] == 0.0
