"""``vggt3d view``: the static page export, bad options, a port in use, serving and Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from vggt3d.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "viewer"))
from viewer_scenes import make_reconstruction, tree_digest  # noqa: E402


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("view") / "out"
    make_reconstruction().save(out, formats="cameras,depth,images,ply,tracks")
    return out


def test_export_page(out, tmp_path, capsys):
    before = tree_digest(out)
    page = tmp_path / "scene.html"
    assert main(["view", str(out), "--export", str(page), "--max-points", "3000"]) == 0
    assert "at most 3,000 points, 4 cameras" in capsys.readouterr().out and page.stat().st_size > 10000
    assert main(["view", str(out), "--export", str(page)]) == 2
    assert "exists; use --overwrite" in capsys.readouterr().err
    assert main(["view", str(out), "--export", str(page), "--overwrite", "--points", "points.ply"]) == 0
    assert main(["view", str(out), "--export", str(out / "scene.html")]) == 2
    assert "never modifies" in capsys.readouterr().err
    assert main(["view", str(out), "--export", str(tmp_path / "nope" / "a.html")]) == 2
    assert main(["view", str(out), "--export", str(tmp_path / "a.png")]) == 2
    assert main(["view", str(out), "--export", str(tmp_path / "b.html"), "--points", "nope"]) == 1
    err = capsys.readouterr().err
    assert "no point set 'nope'" in err and not (tmp_path / "b.html").exists()
    assert tree_digest(out) == before


@pytest.mark.parametrize("argv", [["--conf-threshold", "nan"], ["--conf-threshold", "100"], ["--port", "70000"],
                                  ["--max-points", "0"]])
def test_bad_options(out, argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(["view", str(out), *argv])
    assert done.value.code == 2 and argv[0] in capsys.readouterr().err


def test_not_a_result(tmp_path, capsys):
    assert main(["view", str(tmp_path), "--port", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a vggt3d output folder" in err


def test_port_in_use(out, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["view", str(out), "--port", str(port)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"port {port} on 127.0.0.1 is in use" in err and "--port" in err


@pytest.mark.slow  # starts viser in a subprocess (about 15 s on 2 busy cores)
def test_serves_until_ctrl_c(out):
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "vggt3d.cli", "view", str(out), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url, deadline = None, time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("viewing "):
                url = line.split(" at ")[1].split()[0]
        assert url and url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() is not None else url
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) in (0, 130)  # 130: the CLI's status for every command stopped by Ctrl-C
        assert "Traceback" not in proc.stderr.read()
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        with socket.socket() as again:  # the server is gone and its port free (as a server binds it)
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert tree_digest(out)  # still readable


def test_reconstruct_html_and_view_port_check(tmp_path, model_dir, capsys):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        Image.new("RGB", (64, 48), (40 + 60 * i, 120, 200)).save(images / f"{i}.png")
    out = tmp_path / "out"
    assert main(["reconstruct", str(images), "--weights", model_dir, "--out", str(out), "--formats", "cameras",
                 "--html", "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["cameras.json", "scene.html"]
    assert "window.vggt3dView" in (out / "scene.html").read_text()
    capsys.readouterr()
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            busy.bind(("127.0.0.1", 8080))
            busy.listen()
        except OSError:
            pass  # something else holds 8080 already: the same refusal is expected
        assert main(["reconstruct", str(images), "--weights", model_dir, "--out", str(tmp_path / "o2"),
                     "--view", "--no-progress"]) == 1
    assert "--view: port 8080 on 127.0.0.1 is in use" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()  # refused before any work
