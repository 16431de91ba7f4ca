"""Shared fixtures: the golden reference data (helpers live in ``testutils.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from testutils import GOLDEN


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return GOLDEN
