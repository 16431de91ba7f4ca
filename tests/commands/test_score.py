"""`vggt3d score`: the table, the JSON reports, failures (contract only: the tiny model's weights are untrained)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from testutils import encode_video
from vggt3d.cli import main




@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("score-inputs")
    rng = np.random.default_rng(0)
    encode_video(root / "gen.mp4", [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(4)], fps=4)
    (root / "shot").mkdir()
    for f in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(root / "shot" / f"{f}.png")
    return root


def test_json_report_per_clip(inputs, model_dir, tmp_path, capsys):
    out = tmp_path / "scores.json"
    code = main(["score", str(inputs / "gen.mp4"), str(inputs / "shot"), "--model", model_dir, "--resolution", "70",
                 "--num-tracks", "16", "--json", str(out)])
    assert code == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["score", "depth"] and len(table) == 3
    data = json.loads(out.read_text())
    assert [c["source"] for c in data["clips"]] == [str(inputs / "gen.mp4"), str(inputs / "shot")]
    video, folder = data["clips"]
    assert 0 <= video["score"] <= 1 and len(video["per_frame"]["score"]) == 4
    assert video["timestamps"] == pytest.approx([0, 0.25, 0.5, 0.75], abs=1e-6)
    assert len(folder["per_frame"]["depth_agreement"]) == 3 and folder["settings"]["tracks"]
    assert {"depth_agreement", "track_error_px", "smoothness", "conf_mean"} <= set(video["summary"])


def test_json_to_stdout_and_a_failing_input(inputs, model_dir, tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    code = main(["score", str(inputs / "shot"), str(broken), "--model", model_dir, "--resolution", "70",
                 "--no-tracks", "--json", "-", "--max-gap", "1"])
    assert code == 1
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert len(data["clips"]) == 1 and data["failed"] == [str(broken)]
    assert not data["clips"][0]["settings"]["tracks"] and data["clips"][0]["settings"]["max_gap"] == 1
    assert "score" in captured.err and "failed" in captured.err


def test_missing_input(model_dir, tmp_path, capsys):
    assert main(["score", str(tmp_path / "nope.mp4"), "--model", model_dir]) == 2
    assert "does not exist" in capsys.readouterr().err
