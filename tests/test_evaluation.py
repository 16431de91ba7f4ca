"""evaluate(): oracle and baseline scores, the report files, the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "training"))

from toydata import make_batch  # noqa: E402

from vggt3d import ModelConfig, VGGT3D  # noqa: E402
from vggt3d.evaluation import EvalSettings, baseline_predictions, evaluate, score, write_report  # noqa: E402


class ToyScenes:
    """Normalised toy scenes (no renderer): ``ds[i]`` is one sequence of S frames."""

    def __init__(self, n: int = 2, S: int = 3, H: int = 28, W: int = 28, num_tracks: int = 0) -> None:
        self.n, self.kw = n, dict(B=1, S=S, H=H, W=W, num_tracks=num_tracks)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        b = make_batch(100 + i, **self.kw)
        out = {k: (v[0] if isinstance(v, (torch.Tensor, list)) else v) for k, v in b.items()}
        out["scene"] = f"toy-{i}"
        return out


def tiny_model(heads=("camera", "depth")) -> VGGT3D:
    cfg = ModelConfig.preset("tiny")
    cfg.img_size, cfg.heads = 28, list(heads)
    torch.manual_seed(0)
    return VGGT3D(ModelConfig.from_dict(cfg.to_dict()))


def test_oracle_scores_perfectly_and_baseline_does_not():
    sample = ToyScenes()[0]
    oracle = {"cam_from_world": sample["cam_from_world"].double(), "intrinsics": sample["intrinsics"].double(),
              "depth": sample["depths"]}
    metrics, pairs = score(oracle, sample, EvalSettings())
    assert metrics["AUC@30"] == pytest.approx(1.0) and metrics["RRA@5"] == 1.0
    assert metrics["abs_rel"] == pytest.approx(0.0, abs=1e-6) and metrics["chamfer"] == pytest.approx(0.0, abs=1e-4)
    assert pairs[0].shape == (3,)
    base, _ = score(baseline_predictions(sample), sample, EvalSettings())
    assert base["AUC@30"] == 0.0  # identity cameras: every translation angle is 90 degrees
    assert base["abs_rel"] > 0.01 and base["chamfer"] > metrics["chamfer"]


def test_stationary_track_baseline():
    sample = ToyScenes(num_tracks=6)[0]
    base = baseline_predictions(sample)
    metrics, _ = score(base, sample, EvalSettings())
    assert 0.0 <= metrics["delta_avg"] <= 1.0 and metrics["occlusion_accuracy"] == 1.0  # all visible


def test_evaluate_and_report(tmp_path):
    model = tiny_model()
    result = evaluate(model, ToyScenes(n=2), EvalSettings(), normalize=False)
    result.info = {"weights": "tiny (random)", "data": "toy"}
    data = write_report(result, tmp_path / "report")
    files = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"results.json", "results.md", "auc_curve.png", "error_per_frame.png"} <= files
    saved = json.loads((tmp_path / "report" / "results.json").read_text())
    assert saved["mean"] == json.loads(json.dumps(data["mean"]))
    assert len(saved["scenes"]) == 2 and set(saved["mean"]) == {"model", "baseline"}
    for key in ("AUC@30", "RRA@5", "RTA@30", "ATE", "RPE_trans", "abs_rel", "delta_1.25", "chamfer"):
        assert key in saved["mean"]["model"] and key in saved["mean"]["baseline"], key
    assert len(saved["curves"]["model"]) == 30 and len(saved["per_frame"]["model"]["abs_rel_per_frame"]) == 3
    md = (tmp_path / "report" / "results.md").read_text()
    assert "| trivial baseline |" in md and "AUC@30 (%)" in md and "toy-1" in md


def test_write_report_failure_keeps_the_previous_report(tmp_path, monkeypatch):
    """A report that fails half-way (here: the markdown table) leaves the old report and no temp folder."""
    import vggt3d.evaluation as ev

    model = tiny_model()
    result = evaluate(model, ToyScenes(n=1), EvalSettings(), normalize=False)
    write_report(result, tmp_path / "report")
    before = {p.name: p.read_bytes() for p in (tmp_path / "report").iterdir()}

    def fail(*a, **k):
        raise OSError("No space left on device")

    monkeypatch.setattr(ev, "markdown_table", fail)
    with pytest.raises(OSError, match="No space"):
        write_report(result, tmp_path / "report")
    after = {p.name: p.read_bytes() for p in (tmp_path / "report").iterdir()}
    assert after == before  # same files, same bytes; no .report.tmp-* left


def test_evaluate_with_track_head(tmp_path):
    model = tiny_model(("camera", "depth", "track"))
    ds = ToyScenes(n=1, H=28, W=28, num_tracks=5)
    result = evaluate(model, ds, EvalSettings(track_queries=4), normalize=False)
    row = result.scenes[0]
    assert "delta_avg" in row["model"] and "occlusion_accuracy" in row["baseline"]


def test_wrong_image_size_is_a_clear_error():
    model = tiny_model()
    with pytest.raises(ValueError, match="multiples of the patch size"):
        evaluate(model, ToyScenes(n=1, H=30, W=28), EvalSettings(), normalize=False)
