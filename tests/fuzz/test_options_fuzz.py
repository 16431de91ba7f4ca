"""Every option is validated before work starts: generated bad values are one argparse line and exit 2."""

from __future__ import annotations

import math
import random

import pytest

from fuzzutils import one_line_error
from vggt3d.cli import build_parser, main
from vggt3d.commands import options

PARSER = build_parser()

# (command line prefix, option, bad values)
BAD = [
    (["reconstruct", "in", "--out", "o"], "--fps", ["inf", "-inf", "nan", "NaN", "0", "-1", "abc", "1e400", ""]),
    (["reconstruct", "in", "--out", "o"], "--stride", ["-1", "0", "1.5", "x", "-0"]),
    (["reconstruct", "in", "--out", "o"], "--max-frames", ["0", "-3", "2.0", "many"]),
    (["reconstruct", "in", "--out", "o"], "--tracks", ["grid:abc", "grid:0", "grid:-1", "grid:", "grid:1.5",
                                                       "gridx", "no-such-file.npy"]),
    (["reconstruct", "in", "--out", "o"], "--dtype", ["float64", "int8", "fp8", ""]),
    (["reconstruct", "in", "--out", "o"], "--conf-threshold", ["nan", "inf", "x"]),
    (["reconstruct", "in", "--out", "o"], "--max-points", ["-1", "1.5"]),
    (["features", "in", "--out", "o"], "--fps", ["inf", "nan", "0", "-2"]),
    (["features", "in", "--out", "o"], "--stride", ["-1", "0"]),
    (["features", "in", "--out", "o"], "--max-frames", ["0", "-1"]),
    (["features", "in", "--out", "o"], "--dtype", ["float64", "x"]),
    (["features", "in", "--out", "o"], "--save-dtype", ["auto", "int8"]),
    (["features", "in", "--out", "o"], "--window", ["0", "-4"]),
    (["features", "in", "--out", "o"], "--shard", ["3/2", "1", "a/b", "-1/2"]),
    (["score", "in"], "--num-tracks", ["0", "-5"]),
    (["score", "in"], "--conf-quantile", ["1.5", "-0.1", "nan"]),
    (["score", "in"], "--pixel-stride", ["0"]),
    (["score", "in"], "--fps", ["inf"]),
    (["evaluate", "--data", "synthetic", "--weights", "w", "--out", "o"], "--points-from", ["xyz", "points"]),
    (["evaluate", "--data", "synthetic", "--weights", "w", "--out", "o"], "--max-scenes", ["0", "-1"]),
    (["synth", "--out", "o"], "--scenes", ["0", "-1"]),
    (["synth", "--out", "o"], "--frames", ["0"]),
]


@pytest.mark.parametrize("prefix,option,value", [(p, o, v) for p, o, vs in BAD for v in vs])
def test_bad_option_values_are_one_usage_line(prefix, option, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        PARSER.parse_args([*prefix, f"{option}={value}"])
    assert exit_info.value.code == 2
    line = one_line_error(capsys.readouterr().err)
    assert option in line, line


def test_long_dtype_names_and_old_spellings_are_aliases():
    for command in (["reconstruct", "in", "--out", "o"], ["features", "in", "--out", "o"], ["score", "in"]):
        for given, canonical in (("float32", "fp32"), ("bfloat16", "bf16"), ("float16", "fp16"), ("bf16", "bf16")):
            assert PARSER.parse_args([*command, "--dtype", given]).dtype == canonical
        assert PARSER.parse_args([*command, "--model", "m"]).weights == "m"
        assert PARSER.parse_args([*command, "--weights", "m"]).weights == "m"
    evaluate = ["evaluate", "--data", "synthetic", "--out", "o"]
    assert PARSER.parse_args([*evaluate, "--model", "w"]).weights == "w"
    for given, canonical in (("pointmap", "pointmap"), ("point_head", "pointmap"), ("depth", "depth")):
        assert PARSER.parse_args([*evaluate, "--weights", "w", "--points-from", given]).points_from == canonical


def test_random_numbers_either_parse_in_range_or_fail_cleanly(capsys):
    """Generated option strings: accepted values satisfy the documented range, the others exit 2 cleanly."""
    rng = random.Random(14)
    pieces = ["0", "1", "-", ".", "e", "9", "inf", "nan", "x", "+", "3", "e-400", "1e999", " "]
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 4)))
        for convert, ok in ((options.positive_float, lambda v: math.isfinite(v) and v > 0),
                            (options.finite_float, math.isfinite),
                            (options.positive_int, lambda v: v >= 1),
                            (options.nonnegative_int, lambda v: v >= 0),
                            (options.percentile, lambda v: 0 <= v <= 100)):
            try:
                value = convert(text)
            except Exception as exc:  # noqa: BLE001 - only argparse's type error is allowed
                assert type(exc).__name__ == "ArgumentTypeError", (text, exc)
                continue
            assert ok(value), (convert.__name__, text, value)


def test_tracks_grid_spec_and_a_file_named_like_it(tmp_path, monkeypatch):
    assert options.tracks_spec("grid") == "grid" and options.tracks_spec("grid:8") == "grid:8"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grid:abc").write_text("1 2\n")  # a file that happens to be named like a bad spec is a file
    assert options.tracks_spec("grid:abc") == "grid:abc"


def test_config_that_is_neither_preset_nor_file_is_one_line(photos, tmp_path, capsys):
    code = main(["reconstruct", str(photos), "--out", str(tmp_path / "o"), "--config", "nosuchpreset",
                 "--weights", "tiny-synthetic", "--no-progress"])
    assert code == 1
    line = one_line_error(capsys.readouterr().err)
    assert "--config nosuchpreset" in line and "preset" in line and "Errno" not in line
    assert not (tmp_path / "o").exists()


def test_synth_help_shows_out_as_required(capsys):
    with pytest.raises(SystemExit):
        PARSER.parse_args(["synth", "--help"])
    usage = capsys.readouterr().out.split("\n\n")[0]
    assert "(--out OUT | --benchmark N)" in usage, usage


def test_evaluate_help_example_has_no_joined_lines(capsys):
    with pytest.raises(SystemExit):
        PARSER.parse_args(["evaluate", "--help"])
    text = capsys.readouterr().out
    examples = [line for line in text.splitlines() if line.strip().startswith("vggt3d evaluate")]
    assert len(examples) == 2
    for line in text.splitlines():
        if "--data-arg root=" in line:
            assert line.rstrip().endswith("\\") and "--weights" not in line, line
