"""Fixtures of the viewer tests."""

from __future__ import annotations

import pytest

from viewer_scenes import make_reconstruction


@pytest.fixture(scope="session")
def output_dir(tmp_path_factory):
    """A vggt3d output folder (every default format) of :func:`make_reconstruction`."""
    out = tmp_path_factory.mktemp("viewer") / "out"
    make_reconstruction().save(out)
    return out
