"""Online (causal) consistency: per-frame scores equal scoring each prefix; the running report equals offline."""

from __future__ import annotations

import math

import pytest
import torch

from prior_helpers import analytic_clip, frame_replaced
from vggt3d.prior import consistency_from_geometry
from vggt3d.prior.online import OnlineScorer

KEYS = ("depth", "cam_from_world", "intrinsics", "conf", "tracks", "track_visibility")


def prefix(clip: dict, t: int) -> dict:
    return {k: clip[k][: t + 1] for k in KEYS if k in clip}


def assert_reports_equal(a, b) -> None:
    assert a.per_frame.keys() == b.per_frame.keys()
    for k in a.per_frame:
        for x, y in zip(a.per_frame[k], b.per_frame[k], strict=True):
            assert (x is None) == (y is None), k
            if x is not None:
                assert x == pytest.approx(y, rel=1e-9, abs=1e-12), k
    assert a.summary.keys() == b.summary.keys()
    for k in a.summary:
        x, y = a.summary[k], b.summary[k]
        assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-9, abs=1e-12), k
    assert a.settings == b.settings


@pytest.fixture(scope="module")
def clip():
    """An analytic orbit (8 frames, 48x64) with tracks and confidence, frame 5's depth from another scene."""
    c = analytic_clip(num_tracks=24)
    c = frame_replaced(c, analytic_clip(sphere=(1.0, 0.5, 2.5, 0.8)), 5)
    c["conf"] = 1 + torch.rand(c["depth"].shape, generator=torch.Generator().manual_seed(0))
    return c


@pytest.mark.parametrize("options", [{}, {"max_gap": 2, "conf_quantile": 0.2, "pixel_stride": 2}])
def test_online_scores_equal_prefix_scores(clip, options):
    scorer = OnlineScorer(**options)
    T = clip["depth"].shape[0]
    for t in range(T):
        (s,) = scorer.push(*(clip[k][t] for k in KEYS))
        if t == 0:
            assert s is None
            continue
        offline = consistency_from_geometry(**prefix(clip, t), **options)
        assert s == pytest.approx(offline.per_frame["score"][t], rel=1e-9, abs=1e-12)
        assert_reports_equal(scorer.report(), offline)
    assert scorer.scores[1:] == pytest.approx(
        [consistency_from_geometry(**prefix(clip, t), **options).per_frame["score"][t] for t in range(1, T)])
    # the spliced-in frame is the worst one when it arrives
    assert min(range(1, T), key=lambda t: scorer.scores[t]) == 5


def test_online_push_several_and_no_tracks(clip):
    """Several frames per push, geometry only: the same as one by one, and the same report as offline."""
    geo = {k: clip[k] for k in ("depth", "cam_from_world", "intrinsics")}
    a, b = OnlineScorer(), OnlineScorer()
    first = a.push(geo["depth"][:3], geo["cam_from_world"][:3], geo["intrinsics"][:3])
    rest = a.push(geo["depth"][3:], geo["cam_from_world"][3:], geo["intrinsics"][3:])
    for t in range(geo["depth"].shape[0]):
        b.push(geo["depth"][t], geo["cam_from_world"][t], geo["intrinsics"][t])
    assert first + rest == b.scores
    assert_reports_equal(a.report(), consistency_from_geometry(**geo))
    a.reset()
    assert a.num_frames == 0 and a.scores == []


def test_online_bad_input(clip):
    d, c, K = clip["depth"], clip["cam_from_world"], clip["intrinsics"]
    scorer = OnlineScorer()
    scorer.push(d[0], c[0], K[0], tracks=clip["tracks"][0])
    with pytest.raises(ValueError, match="size of the first"):
        scorer.push(d[1, :40], c[1], K[1], tracks=clip["tracks"][1])
    with pytest.raises(ValueError, match="tracks"):
        scorer.push(d[1], c[1], K[1])
    with pytest.raises(ValueError, match="conf"):
        scorer.push(d[1], c[1], K[1], conf=clip["conf"][1], tracks=clip["tracks"][1])
    with pytest.raises(ValueError, match="at least 2 frames"):
        scorer.report()
    assert scorer.num_frames == 1  # rejected frames left no trace
    with pytest.raises(ValueError, match="max_gap"):
        OnlineScorer(max_gap=0)
    with pytest.raises(ValueError, match="conf_quantile"):
        OnlineScorer(conf_quantile=1.0)
    with pytest.raises(ValueError, match=r"\[3, 4\]"):
        OnlineScorer().push(d[0], c[0, :, :3], K[0])
