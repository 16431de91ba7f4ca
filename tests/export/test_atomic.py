"""All-or-nothing output directories."""

from __future__ import annotations

import os

import pytest

from vggt3d.export import OutputExistsError, atomic_output_dir, check_output_dir


def test_success_renames_into_place(tmp_path):
    out = tmp_path / "deep" / "er" / "out"
    with atomic_output_dir(out) as (tmp, final):
        assert final == out.absolute() and tmp.parent == out.parent
        (tmp / "a.txt").write_text("x")
        assert not out.exists()
    assert (out / "a.txt").read_text() == "x"
    assert [p.name for p in out.parent.iterdir()] == ["out"]


def test_failure_leaves_nothing_not_even_created_parents(tmp_path):
    out = tmp_path / "new" / "out"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output_dir(out) as (tmp, _):
            (tmp / "partial.bin").write_bytes(b"..")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_existing_outputs(tmp_path):
    (tmp_path / "empty").mkdir()
    with atomic_output_dir(tmp_path / "empty") as (tmp, _):
        (tmp / "new.txt").write_text("new")
    assert (tmp_path / "empty" / "new.txt").exists()

    full = tmp_path / "full"
    full.mkdir()
    (full / "old.txt").write_text("old")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        check_output_dir(full)
    with pytest.raises(RuntimeError):
        with atomic_output_dir(full, overwrite=True):
            raise RuntimeError("failed export keeps the old output")
    assert (full / "old.txt").exists()
    with atomic_output_dir(full, overwrite=True) as (tmp, _):
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in full.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "full"]

    (tmp_path / "file").write_text("")
    with pytest.raises(OutputExistsError, match="not a directory"):
        check_output_dir(tmp_path / "file", overwrite=True)


def test_atomic_write_gives_ordinary_file_permissions(tmp_path):
    """safetensors creates its files 0600; a saved checkpoint must be readable like any other file (umask)."""
    import stat

    import torch
    from safetensors.torch import save_file

    from vggt3d.io.atomic import atomic_write

    mask = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "w.safetensors", lambda tmp: save_file({"a": torch.zeros(2)}, tmp))
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
