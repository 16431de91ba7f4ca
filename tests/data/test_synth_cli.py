"""The ``vggt3d synth`` command writes readable scene folders equal to the in-memory scenes."""

from __future__ import annotations

import pytest

import argparse

import numpy as np

from vggt3d import cli
from vggt3d.data import SceneFolderDataset, SyntheticConfig, SyntheticScenes, check_sample
from vggt3d.data import synthetic_cli


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    synthetic_cli.add_arguments(parser)
    return synthetic_cli.run(parser.parse_args(argv))


def test_registered():
    assert cli.COMMANDS["synth"][0] == "vggt3d.data.synthetic_cli"


def test_writes_scene_folders(tmp_path, capsys):
    argv = ["--out", str(tmp_path / "out"), "--scenes", "2", "--frames", "3", "--size", "28", "42", "--seed", "5"]
    assert _run(argv) == 0
    ds = SceneFolderDataset(tmp_path / "out")
    assert len(ds) == 2 and ds.scene_name(0) == "scene_000000"
    memory = SyntheticScenes(SyntheticConfig(num_scenes=2, num_frames=3, image_size=(28, 42), seed=5))
    for i in range(2):
        disk, mem = ds[i], memory[i]
        check_sample(disk, "synth output")
        for key in ("images", "depths", "cam_from_world", "intrinsics", "world_points"):
            assert np.array_equal(disk[key].numpy(), mem[key].numpy()), key
    assert _run(argv) == 1 and "overwrite" in capsys.readouterr().err
    assert _run(argv + ["--overwrite", "--depth-format", "png16"]) == 0


def test_benchmark_and_usage_errors(tmp_path, capsys):
    assert _run(["--benchmark", "2", "--frames", "2", "--size", "28", "28"]) == 0
    assert "samples/s" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:  # --out (or --benchmark) is required, and --help says so
        _run(["--scenes", "1"])
    assert exit_info.value.code == 2 and "--out" in capsys.readouterr().err
    assert _run(["--out", str(tmp_path), "--frames", "1", "2", "3"]) == 2
