"""Helpers shared by the test modules (tolerances, comparisons, manifests).

A plain module rather than ``conftest.py``: several test folders have their own
conftest, and ``from conftest import ...`` would pick whichever is first on the path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden"

#: Tolerances of the golden README: tokens, cameras, depth, points, confidences.
TOL = {"rtol": 1e-4, "atol": 1e-4}
#: Tracks, visibility and track confidence (iterative, amplifies rounding).
TOL_TRACK = {"rtol": 1e-3, "atol": 1e-3}


def assert_close(actual, expected, *, rtol: float, atol: float, name: str = "") -> None:
    """``numpy.allclose`` with a message that names the output and the worst element."""
    a = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    e = np.asarray(expected)
    assert a.shape == e.shape, f"{name}: shape {a.shape} != expected {e.shape}"
    ok = np.isclose(a, e, rtol=rtol, atol=atol)
    if not ok.all():
        err = np.abs(a - e)
        idx = np.unravel_index(np.argmax(err), err.shape)
        raise AssertionError(f"{name}: {np.size(ok) - ok.sum()} of {ok.size} elements differ; worst at {idx}: "
                             f"{a[idx]} vs {e[idx]} (|diff| {err[idx]:.3g}, rtol {rtol}, atol {atol})")


def read_manifest(path: Path) -> dict[str, tuple[int, ...]]:
    """``name<TAB>[d0, d1, ...]`` rows of a state-dict manifest."""
    rows = path.read_text().splitlines()[1:]
    out = {}
    for row in rows:
        name, shape = row.split("\t")
        out[name] = tuple(int(s) for s in shape.strip("[]").split(",") if s.strip())
    return out
