"""Shared fixtures: the golden reference data (helpers live in ``testutils.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from testutils import GOLDEN


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return GOLDEN


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Run the suite on one torch thread.

    CI machines have 2 shared cores; torch's 2-thread pool is several times
    slower than one thread whenever anything else runs beside it.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
