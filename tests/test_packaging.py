"""The wheel installs ``heads/`` and ``data/`` as ``vggt3d.heads`` / ``vggt3d.data`` and nothing top-level."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_layout(tmp_path):
    pytest.importorskip("setuptools")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, cwd=tmp_path)
    (wheel,) = tmp_path.glob("vggt3d-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"vggt3d"}
    for module in ("vggt3d/heads/camera.py", "vggt3d/heads/dpt.py", "vggt3d/heads/track.py",
                   "vggt3d/heads/tracker.py", "vggt3d/data/__init__.py", "vggt3d/layers/block.py",
                   "vggt3d/geometry/rotation.py", "vggt3d/io/images.py", "vggt3d/models/omega.py",
                   "vggt3d/heads/dpt_shuffle.py", "vggt3d/presets.py"):
        assert module in names, module


def test_heads_import_as_subpackage():
    import vggt3d.heads.camera as cam

    assert cam.__name__ == "vggt3d.heads.camera"
