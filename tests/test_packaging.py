"""The wheel installs ``heads/`` and ``data/`` as ``vggt3d.heads`` / ``vggt3d.data`` and nothing top-level."""

from __future__ import annotations

import re
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


def test_package_path_is_not_extended_to_the_repository_root():
    """vggt3d/__init__.py must not append the checkout root to __path__ (vggt3d.train would import from it)."""
    import importlib

    import vggt3d

    assert [Path(p).resolve() for p in vggt3d.__path__] == [Path(vggt3d.__file__).resolve().parent]
    for name in ("vggt3d.train", "vggt3d.infer", "vggt3d.tests"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(name)


def test_python_m_pytest_style_root_on_sys_path_still_imports_subpackages():
    """With the repository root first on sys.path (``python -m pytest``, ``python train.py``) the installed
    vggt3d.heads / vggt3d.data still import."""
    code = "import vggt3d.heads.camera, vggt3d.data.scene_folder, vggt3d.commands.options; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "--resume" in result.stdout, result.stderr[-2000:]


def test_runtime_dependencies_are_declared():
    """trimesh's exports need scipy, which trimesh does not declare: a plain ``pip install .`` must bring it."""
    import tomllib

    declared = {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower()
                for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    for name in ("scipy", "trimesh", "torch", "pycolmap", "av", "pillow", "safetensors", "huggingface-hub"):
        assert name in declared, name


def test_no_importorskip_of_in_tree_modules():
    """A broken import of our own code must fail the suite, not skip tests."""
    pattern = re.compile(r"importorskip\(\s*['\"](vggt3d|heads|data)[.'\"]")
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_gitignore_covers_the_demo_output():
    assert "out/" in (ROOT / ".gitignore").read_text().split()
