"""Shared fixtures: the golden reference data (helpers live in ``testutils.py``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# ``python -m pytest`` puts the repository root on sys.path, where the source folder ``vggt3d/`` (without
# ``heads/`` and ``data/``, which install as ``vggt3d.heads`` / ``vggt3d.data``) would shadow the installed
# package. Test what is installed (``pip install .`` or ``-e .``): drop the root before anything imports vggt3d.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _ROOT]

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
