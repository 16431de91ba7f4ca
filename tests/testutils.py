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


def encode_video(path, frames, fps: float):
    """Write RGB frames (uint8 ``[H, W, 3]`` arrays or PIL images, all one size) as an MPEG-4 video with PyAV."""
    import av

    frames = [np.asarray(f, dtype=np.uint8) for f in frames]
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
