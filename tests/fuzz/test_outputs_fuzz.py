"""Outputs: never an input, writable or refused up front, disk full / signals leave nothing, stale temp dirs go."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fuzzutils import one_line_error, small_filesystem
from vggt3d.cli import main
from vggt3d.io.atomic import atomic_output_dir, remove_stale_temp_dirs

ROOT = Path(__file__).resolve().parents[2]


def reconstruct(*args) -> int:
    return main(["reconstruct", *map(str, args), "--weights", "tiny-synthetic", "--no-progress"])


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where", ["same", "inside", "parent", "glob"])
def test_out_that_is_or_overlaps_an_input_is_refused_and_the_input_kept(photos, where, capsys):
    (photos / "notes.txt").write_text("unrelated file")
    before = tree(photos)
    out = {"same": photos, "inside": photos / "out", "parent": photos.parent, "glob": photos / "o"}[where]
    inputs = [str(photos / "*.png")] if where == "glob" else [photos]
    commands = [["reconstruct", *map(str, inputs), "--weights", "tiny-synthetic", "--overwrite"]]
    if where != "glob":  # features takes no glob
        commands.append(["features", *map(str, inputs), "--weights", "tiny-synthetic"])
    for command in commands:
        code = main([*command, "--out", str(out), "--no-progress"])
        assert code != 0
        line = one_line_error(capsys.readouterr().err)
        assert "--out" in line and "input" in line, line
    assert tree(photos) == before
    assert not (photos / "out").exists() and not (photos / "o").exists()


def test_read_only_out_is_refused_before_any_work(photos, tmp_path, capsys):
    with small_filesystem(tmp_path / "ro", readonly=True) as ro:
        start = time.perf_counter()
        assert reconstruct(photos, "--out", ro / "scene") == 1
        line = one_line_error(capsys.readouterr().err)
        assert "--out" in line and "write" in line, line
        assert time.perf_counter() - start < 5, "refused before the model ran"


def test_disk_full_during_export_is_one_line_and_leaves_nothing(photos, tmp_path, capsys):
    with small_filesystem(tmp_path / "small", size="96k") as small:
        assert reconstruct(photos, "--out", small / "scene") == 1
        line = one_line_error(capsys.readouterr().err)
        assert "cannot write --out" in line and "nothing was written" in line, line
        assert list(small.iterdir()) == [], "no output and no temporary folder"


def test_disk_full_during_features_is_one_line_and_leaves_nothing(photos, tmp_path, capsys, monkeypatch):
    import errno

    from vggt3d.prior.cache import FeatureCacheWriter

    def full(self, clip, progress=None):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FeatureCacheWriter, "write", full)
    out = tmp_path / "cache"
    assert main(["features", str(photos), "--out", str(out), "--weights", "tiny-synthetic", "--no-progress"]) == 1
    assert "No space left" in one_line_error(capsys.readouterr().err)
    assert not out.exists(), "a failed run that cached nothing leaves no cache.json behind"


def test_failed_features_run_leaves_no_cache_json(tmp_path, capsys):
    clip = tmp_path / "broken.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    out = tmp_path / "cache"
    assert main(["features", str(clip), "--out", str(out), "--weights", "tiny-synthetic", "--no-progress"]) == 1
    assert not out.exists()
    assert not list(tmp_path.glob(".*")), "no temporary files"


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temp_dirs_of_dead_runs_are_removed(tmp_path):
    out = tmp_path / "scene"
    dead = tmp_path / f".scene.tmp-{_dead_pid()}-abc"
    (dead / "depth").mkdir(parents=True)
    (dead / "depth" / "a.npy").write_bytes(b"x" * 1000)
    old = tmp_path / f".scene.old-{_dead_pid()}-xyz"
    old.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        alive = tmp_path / f".scene.tmp-{sleeper.pid}-def"
        alive.mkdir()
        unrelated = tmp_path / f".other.tmp-{_dead_pid()}-q"
        unrelated.mkdir()
        legacy = tmp_path / ".scene.tmp-abcdef"  # no process id: cannot tell, left alone
        legacy.mkdir()
        with atomic_output_dir(out) as (tmp, _):
            assert str(os.getpid()) in tmp.name
            (tmp / "a.txt").write_text("x")
        assert not dead.exists() and not old.exists()
        assert alive.exists() and unrelated.exists() and legacy.exists()
        assert remove_stale_temp_dirs(out) == []
    finally:
        sleeper.kill()
        sleeper.wait()
    assert remove_stale_temp_dirs(out) == [alive]


SIGNAL_SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    import vggt3d.export.{module} as target

    def killed(rec, root, *args, **kwargs):
        os.kill(os.getpid(), signal.{signal})
        time.sleep(30)  # the signal arrives here

    target.write = killed
    from vggt3d.cli import main
    sys.exit(main(["reconstruct", sys.argv[1], "--out", sys.argv[2], "--weights", "tiny-synthetic",
                   "--no-progress"]))
""")


@pytest.mark.slow
@pytest.mark.parametrize("module,signum", [("ply", "SIGTERM"), ("glb", "SIGINT")])
def test_signal_during_export_stops_cleanly(photos, tmp_path, module, signum):
    out = tmp_path / "scene"
    script = SIGNAL_SCRIPT.format(module=module, signal=signum)
    result = subprocess.run([sys.executable, "-c", script, str(photos), str(out)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path)
    assert result.returncode == 128 + getattr(signal, signum), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not out.exists() and not list(tmp_path.glob(".scene.*")), "no output, no temporary folder"


@pytest.mark.slow
def test_trimesh_is_imported_before_the_work_starts(photos, tmp_path):
    """trimesh catches BaseException around its optional imports: imported lazily mid-export, it ate Ctrl-C."""
    script = textwrap.dedent("""
        import sys
        import vggt3d.reconstruct as r
        from vggt3d.reconstruct import ReconstructionError

        def probe(*args, **kwargs):
            print("trimesh imported:", "trimesh" in sys.modules)
            raise ReconstructionError("stop here")

        r.reconstruct = probe
        from vggt3d.cli import main
        main(["reconstruct", sys.argv[1], "--out", sys.argv[2], "--weights", "tiny-synthetic"])
    """)
    result = subprocess.run([sys.executable, "-c", script, str(photos), str(tmp_path / "o")], capture_output=True,
                            text=True, timeout=120, cwd=tmp_path)
    assert "trimesh imported: True" in result.stdout, result.stdout + result.stderr[-2000:]


def test_a_swallowed_signal_still_ends_the_run_with_its_status(capsys):
    from argparse import Namespace

    from vggt3d.cli import run_command

    def swallowing(args):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except BaseException:  # noqa: BLE001 - what trimesh's import guard does
            pass
        return 0

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest itself runs in the background (nohup ... &)
    assert run_command(swallowing, Namespace()) == 130
    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before, "handlers restored"


def test_training_state_cannot_run_code(tmp_path, capsys):
    import torch

    from vggt3d.training.checkpoint import CheckpointLoadError, load_training_state

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    ckpt = tmp_path / "run" / "checkpoints" / "step-00000002"
    ckpt.mkdir(parents=True)
    torch.save({"step": 2, "payload": Evil()}, ckpt / "training_state.pt")
    with pytest.raises(CheckpointLoadError, match="training_state.pt"):
        load_training_state(ckpt)
    torch.save({"step": 2}, ckpt / "training_state.pt")
    torch.save({"rng": Evil()}, ckpt / "rank-0.pt")
    with pytest.raises(CheckpointLoadError, match="rank-0.pt"):
        load_training_state(ckpt)
    assert not marker.exists()
    (ckpt / "training_state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointLoadError):
        load_training_state(ckpt)


def test_summary_reads_peak_memory_after_the_export_and_says_what_was_kept(photos, tmp_path, capsys, monkeypatch):
    import vggt3d.runtime

    monkeypatch.setattr(vggt3d.runtime, "peak_memory", lambda device: (7 << 30, "CPU RSS"))  # read after export
    assert reconstruct(photos, "--out", tmp_path / "scene", "--formats", "cameras,ply") == 0
    summary = capsys.readouterr().out
    assert "peak memory: 7.0 GB (CPU RSS" in summary, summary
    points = next(line for line in summary.splitlines() if line.startswith("points:"))
    assert "kept: every pixel with confidence >=" in points and "the most confident 50%" in points, points


def test_library_save_refuses_an_out_holding_the_inputs(photos):
    from vggt3d import reconstruct as run

    rec = run(str(photos), model="tiny-synthetic")
    before = tree(photos)
    for out in (photos, photos.parent):
        with pytest.raises(ValueError, match="holds the input"):
            rec.save(out, formats="cameras", overwrite=True)
    assert tree(photos) == before


def test_score_json_cannot_replace_an_input(photos, tmp_path, capsys):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not really a video")
    assert main(["score", str(video), "--json", str(video), "--weights", "tiny-synthetic"]) == 2
    assert "--json" in one_line_error(capsys.readouterr().err)
    assert video.read_bytes() == b"not really a video"


def test_every_writer_command_on_a_read_only_or_full_folder_is_one_line(photos, tmp_path, capsys):
    with small_filesystem(tmp_path / "ro", readonly=True) as ro:
        commands = [["synth", "--out", str(ro / "scenes"), "--scenes", "1", "--frames", "2", "--size", "28", "28"],
                    ["features", str(photos), "--out", str(ro / "cache"), "--weights", "tiny-synthetic",
                     "--no-progress"],
                    ["evaluate", "--data", "synthetic", "--data-arg", "num_scenes=1", "--weights", "tiny-synthetic",
                     "--out", str(ro / "report")]]
        for command in commands:
            assert main(command) != 0, command
            line = one_line_error(capsys.readouterr().err)
            assert "--out" in line, line
    with small_filesystem(tmp_path / "full", size="16k") as full:
        assert main(["synth", "--out", str(full / "scenes"), "--scenes", "2", "--frames", "2", "--size", "64",
                     "64"]) == 1
        assert "cannot write --out" in one_line_error(capsys.readouterr().err)


def test_features_removes_clip_temp_files_of_dead_runs(photos, tmp_path):
    out = tmp_path / "cache"
    out.mkdir()
    dead = out / f".clip-1234.safetensors.tmp-{_dead_pid()}"
    dead.write_bytes(b"partial")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        alive = out / f".other.safetensors.tmp-{sleeper.pid}"  # another shard still writing
        alive.write_bytes(b"in progress")
        assert main(["features", str(photos), "--out", str(out), "--weights", "tiny-synthetic",
                     "--no-progress"]) == 0
        assert not dead.exists() and alive.exists()
        assert not [p for p in out.iterdir() if p.name.startswith(".") and p != alive]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_forked_workers_keep_the_default_sigterm():
    """Data-loader workers fork from a command: SIGTERM still simply ends them (no exception in the child)."""
    from argparse import Namespace

    from vggt3d.cli import run_command

    status = {}

    def work(args):
        pid = os.fork()
        if pid == 0:
            time.sleep(20)
            os._exit(0)
        time.sleep(0.3)
        os.kill(pid, signal.SIGTERM)
        _, raw = os.waitpid(pid, 0)
        status["signal"] = os.WTERMSIG(raw) if os.WIFSIGNALED(raw) else None
        return 0

    assert run_command(work, Namespace()) == 0
    assert status["signal"] == signal.SIGTERM
