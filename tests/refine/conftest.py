"""Fixtures of the refinement tests (helpers in ``refine_helpers.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from refine_helpers import FRAMES, H, W, make_scene


@pytest.fixture(scope="session")
def scene():
    """A held-out synthetic scene (seed 1000): images, true ``cam_from_world [S, 4, 4]`` (world = frame 0), K, depth."""
    return make_scene()


@pytest.fixture(scope="session")
def feature_obs(scene):
    """SIFT tracks of the scene (computed once)."""
    from vggt3d.refine.features import feature_tracks

    return feature_tracks(list(scene["images"]), scene["K"], np.array([[W, H]] * FRAMES))
