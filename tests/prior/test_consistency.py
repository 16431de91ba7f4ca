"""The 3D-consistency score: orderings on ground-truth geometry, occlusions, tracks, invariants, the model path."""

from __future__ import annotations

import json
import math

import av
import numpy as np
import pytest
import torch

from prior_helpers import (analytic_clip, frame_replaced, random_depth, random_depth_scale, shuffled,  # noqa: F401
                           tiny_model)
from vggt3d import GeometryPrior
try:
    from vggt3d.data import SyntheticConfig, SyntheticScenes
except ImportError:  # the data package does not re-export them (yet)
    from vggt3d.data.synthetic import SyntheticConfig, SyntheticScenes
from vggt3d.prior import ConsistencyReport, consistency, consistency_from_geometry

BAD_FRAME = 4


def score(clip: dict, **kwargs) -> ConsistencyReport:
    keys = ("depth", "cam_from_world", "intrinsics", "tracks", "track_visibility")
    return consistency_from_geometry(**{k: clip[k] for k in keys if k in clip}, **kwargs)


def frame_warped(clip: dict, frame: int = BAD_FRAME) -> dict:
    """Frame ``frame``'s depth map moved by (W/4, H/8) pixels (wrapping around), its camera kept."""
    out = {k: v.clone() for k, v in clip.items()}
    H, W = out["depth"].shape[-2:]
    out["depth"][frame] = torch.roll(out["depth"][frame], (H // 8, W // 4), (0, 1))
    return out


@pytest.fixture(scope="module")
def synthetic_clips():
    """Ground truth of 4 synthetic video-like clips (orbit / forward camera paths), with exact tracks."""
    config = SyntheticConfig(num_scenes=5, num_frames=8, image_size=(48, 64), seed=0, num_tracks=32,
                             camera_paths=("orbit", "forward"))
    ds = SyntheticScenes(config)
    clips = []
    for i in range(len(ds)):
        s = ds[i]
        clips.append({"depth": s["depths"], "cam_from_world": s["cam_from_world"], "intrinsics": s["intrinsics"],
                      "tracks": s["tracks"], "track_visibility": s["track_visibility"]})
    return clips


@pytest.fixture(scope="module")
def clips(synthetic_clips):
    """``(name, clip, another clip, report of the clip)``: an analytic scene and 4 synthetic ones."""
    out = [("analytic", analytic_clip(num_tracks=32), analytic_clip(sphere=(1.0, 0.5, 2.5, 0.8)))]
    out += [(f"synthetic {k}", synthetic_clips[k], synthetic_clips[k + 1]) for k in range(4)]
    return [(name, clip, other, score(clip)) for name, clip, other in out]


# ------------------------------------------------------------------ orderings
@pytest.mark.parametrize("name,perturb,margin", [
    ("shuffled frames", lambda c, o: shuffled(c), 0.2),
    ("per-frame random depth", lambda c, o: random_depth(c), 0.2),
    ("per-frame random depth scale", lambda c, o: random_depth_scale(c), 0.2),
    ("one frame replaced", lambda c, o: frame_replaced(c, o, BAD_FRAME), 0.05),
    ("one frame warped", lambda c, o: frame_warped(c), 0.05),
])
def test_consistent_clips_score_clearly_better(clips, name, perturb, margin):
    for clip_name, clip, other, good in clips:
        bad = score(perturb(clip, other))
        assert good.score > bad.score + margin, f"{clip_name}: consistent {good.score:.3f} vs {name} {bad.score:.3f}"
        if name.startswith("one frame"):
            agreement = bad.per_frame["depth_agreement"]
            assert int(np.argmin(agreement)) == BAD_FRAME, f"{clip_name}: {name} not located: {agreement}"


def test_consistent_ground_truth_agrees_despite_occlusions(clips):
    for clip_name, _, _, report in clips:
        s = report.summary
        assert s["depth_agreement"] > 0.95 and s["violation_fraction"] < 0.03, (clip_name, s)
        assert s["track_error_px"] < 0.5 and s["track_agreement"] > 0.9, (clip_name, s)
    s = score(analytic_clip()).summary
    assert s["occluded_fraction"] > 0.05, "the sphere hides part of the wall in other views"
    assert s["smoothness"] == pytest.approx(1.0)


def test_tracks_expose_wrong_depth():
    clip = analytic_clip(num_tracks=32)
    good, bad = score(clip), score(random_depth_scale(clip))
    assert bad.summary["track_error_px"] > 10 * good.summary["track_error_px"]
    assert bad.summary["track_agreement"] < good.summary["track_agreement"] - 0.3


# ------------------------------------------------------------------ invariants and options
def test_score_is_invariant_to_the_scale_and_frame_of_the_world():
    clip = analytic_clip()
    ref = score(clip)
    scaled = dict(clip, depth=clip["depth"] * 3.0,
                  cam_from_world=torch.cat([clip["cam_from_world"][..., :3], clip["cam_from_world"][..., 3:] * 3.0], -1))
    # Another world frame: X' = Q X + s  =>  cam_from_world' = [R Q^T | t - R Q^T s].
    a = 0.7
    Q = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    shift = torch.tensor([1.0, -2.0, 0.5])
    R, t = clip["cam_from_world"][..., :3], clip["cam_from_world"][..., 3]
    R2 = R @ Q.T
    moved = dict(clip, cam_from_world=torch.cat([R2, (t - R2 @ shift)[..., None]], -1))
    for other in (scaled, moved):
        assert score(other).score == pytest.approx(ref.score, abs=2e-3)


def test_per_frame_values_and_json():
    clip = analytic_clip(S=5, num_tracks=16)
    conf = 1 + torch.rand(5, 48, 64)
    report = score(clip, conf=conf, max_gap=2, pixel_stride=2)
    assert report.num_frames == 5 and 0 <= report.score <= 1
    for key in ("score", "depth_agreement", "covisibility", "track_error_px", "track_agreement", "smoothness",
                "conf_mean"):
        assert len(report.per_frame[key]) == 5, key
    assert report.summary["conf_mean"] == pytest.approx(float(conf.mean()), rel=1e-6)
    assert report.settings["max_gap"] == 2 and report.settings["pixel_stride"] == 2
    data = json.loads(report.to_json())
    assert data["score"] == pytest.approx(report.score) and set(data["per_frame"]) == set(report.per_frame)


def test_conf_quantile_drops_the_least_confident_pixels():
    clip = analytic_clip(S=4)
    bad = random_depth(clip)
    # Confidence that knows which pixels are right: keep the true depth where conf is high.
    conf = torch.rand(4, 48, 64, generator=torch.Generator().manual_seed(0))
    mixed = dict(clip, depth=torch.where(conf > 0.5, clip["depth"], bad["depth"]))
    plain = consistency_from_geometry(mixed["depth"], clip["cam_from_world"], clip["intrinsics"], conf=conf)
    filtered = consistency_from_geometry(mixed["depth"], clip["cam_from_world"], clip["intrinsics"], conf=conf,
                                         conf_quantile=0.5)
    assert filtered.summary["depth_agreement"] > plain.summary["depth_agreement"] + 0.2


def test_bad_geometry_arguments():
    clip = analytic_clip(S=3)
    d, c, k = clip["depth"], clip["cam_from_world"], clip["intrinsics"]
    with pytest.raises(ValueError, match="at least 2 frames"):
        consistency_from_geometry(d[:1], c[:1], k[:1])
    with pytest.raises(ValueError, match="cam_from_world"):
        consistency_from_geometry(d, c[:2], k)
    with pytest.raises(ValueError, match="conf"):
        consistency_from_geometry(d, c, k, conf=torch.ones(3, 5, 5))


# ------------------------------------------------------------------ the model path (contract only: untrained weights)
@pytest.fixture(scope="module")
def prior():
    return GeometryPrior(tiny_model(), layers=[-1], resolution=70)


def test_model_path_on_frames(prior):
    frames = torch.rand(5, 3, 40, 50, generator=torch.Generator().manual_seed(0))
    report = consistency(frames, model=prior, num_tracks=16)
    assert report.num_frames == 5 and 0 <= report.score <= 1 and math.isfinite(report.score)
    assert report.settings["tracks"] and report.per_frame["track_error_px"] is not None
    assert len(report.per_frame["conf_mean"]) == 5 and report.frame_indices == list(range(5))
    json.loads(report.to_json())


def test_model_path_on_a_video_with_windows(tmp_path):
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=5)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(7):
            img = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            for packet in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    report = consistency(str(path), model=tiny_model(), window=4, overlap=1, resolution=70, tracks=False, stride=1)
    assert report.num_frames == 7 and report.source == str(path)
    assert report.timestamps == pytest.approx([k / 5 for k in range(7)], abs=1e-6)
    assert report.settings["window"] == 4 and not report.settings["tracks"]
    assert report.per_frame.get("track_error_px") is None
