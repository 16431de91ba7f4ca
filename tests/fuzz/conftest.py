"""Fixtures of the fuzz suite (generated bad inputs; helpers in fuzzutils.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzzutils import write_image


@pytest.fixture
def photos(tmp_path) -> Path:
    """A folder of two small photos."""
    folder = tmp_path / "photos"
    write_image(folder / "a.png", seed=1)
    write_image(folder / "b.png", seed=2)
    return folder
