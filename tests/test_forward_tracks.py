"""``VGGT3D.forward_tracks``: tracks of queries given in several frames, features computed once."""

from __future__ import annotations

import pytest
import torch

from vggt3d import ModelConfig, VGGT3D
from vggt3d.testing import load_rule_weights


@pytest.fixture(scope="module")
def tiny():
    return load_rule_weights(VGGT3D(ModelConfig.preset("tiny")).eval(), salt=0)


@pytest.fixture(scope="module")
def images():
    return torch.rand(1, 3, 3, 56, 42, generator=torch.Generator().manual_seed(3))


def test_query_frame_zero_equals_forward(tiny, images):
    queries = torch.tensor([[[5.0, 7.0], [20.0, 30.0], [33.5, 12.0]]])
    with torch.no_grad():
        full = tiny(images, query_points=queries)
        tokens = tiny.forward_intermediates(images, tiny.head_layers(track=True))
        ours = tiny.forward_tracks(tokens, (56, 42), {0: queries})[0]
    for key in ("track", "vis", "conf"):
        torch.testing.assert_close(ours[key], full[key], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("q", [1, 2])
def test_other_query_frame_plays_frame_zero(tiny, images, q):
    """Queries in frame q are tracked as if q came first, and come back in input frame order."""
    queries = torch.tensor([[[10.0, 11.0], [30.0, 40.0]]])
    S = images.shape[1]
    order = [q] + [i for i in range(S) if i != q]
    with torch.no_grad():
        tokens = tiny.forward_intermediates(images, tiny.head_layers(track=True))
        both = tiny.forward_tracks(tokens, (56, 42), {0: queries, q: queries})
        permuted = {i: t[:, order] for i, t in tokens.items()}
        ref = tiny.forward_heads(permuted, (56, 42), query_points=queries)
    inverse = [order.index(i) for i in range(S)]
    torch.testing.assert_close(both[q]["track"], ref["track"][:, inverse], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(both[q]["vis"], ref["vis"][:, inverse], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(both[q]["track"][:, q], queries.expand(1, -1, -1), rtol=1e-4, atol=1e-3)


def test_bad_query_frames_and_missing_head(tiny, images):
    with torch.no_grad():
        tokens = tiny.forward_intermediates(images, tiny.head_layers(track=True))
    with pytest.raises(ValueError, match="out of range"):
        tiny.forward_tracks(tokens, (56, 42), {3: torch.zeros(1, 2, 2)})
    omega = VGGT3D(ModelConfig.preset("tiny-omega")).eval()
    with pytest.raises(ValueError, match="no track head"):
        omega.forward_tracks({}, (48, 48), {0: torch.zeros(1, 2, 2)})
