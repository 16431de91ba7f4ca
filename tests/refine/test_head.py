"""Track-head tracks from several query frames (mechanics, with a small model of rule weights)."""

import numpy as np
import pytest
import torch

from vggt3d import VGGT3D, ModelConfig
from vggt3d.io.images import ImageTransform
from vggt3d.refine.head import head_tracks, query_frames
from vggt3d.testing import load_rule_weights


@pytest.fixture(scope="module")
def model():
    config = ModelConfig.preset("tiny")
    config.img_size = 56
    return load_rule_weights(VGGT3D(config)).eval()


def test_query_frames_spread_over_the_sequence():
    assert query_frames(8, 4) == [0, 2, 5, 7]
    assert query_frames(3, 10) == [0, 1, 2] and query_frames(5, 1) == [0]


def test_head_tracks_start_at_their_queries_in_each_query_frame(model):
    S, H, W = 5, 56, 56
    images = torch.rand(S, 3, H, W, generator=torch.Generator().manual_seed(0))
    transform = ImageTransform(112, 112, 56, 56, 0, 0, 56, 56)  # original images twice the model size
    obs = head_tracks(model, images, [transform] * S, num_query_frames=3, grid=4, min_visibility=0.0,
                      min_confidence=0.0)
    assert obs.source == "head" and obs.lengths().min() >= 2
    assert set(np.unique(obs.frame)) <= set(range(S))
    grid = (np.arange(4) + 0.5) * 28 - 0.5  # the query grid in original pixels (centres at integers)
    for q in query_frames(S, 3):
        mine = obs.uv[obs.frame == q]
        on_grid = np.isin(np.round(mine[:, 0], 6), np.round(grid, 6)) & np.isin(np.round(mine[:, 1], 6), np.round(grid, 6))
        assert on_grid.sum() >= 16  # every query is observed exactly where it was asked, in its own frame
    # one observation per track and frame
    key = obs.track * S + obs.frame
    assert len(np.unique(key)) == len(key)


def test_head_tracks_need_a_track_head(model):
    config = ModelConfig.preset("tiny")
    config.img_size = 56
    config.heads = ["camera", "depth"]
    bare = VGGT3D(config).eval()
    with pytest.raises(ValueError, match="no track head"):
        head_tracks(bare, torch.rand(2, 3, 56, 56), [ImageTransform(56, 56, 56, 56, 0, 0, 56, 56)] * 2)
