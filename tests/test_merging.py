"""Token merging in the global attention: exact at ratio 0, bounded deviation per ratio, clear errors."""

from __future__ import annotations

import pytest
import torch

from vggt3d import ModelConfig, VGGT3D
from vggt3d.merging import MergeConfig, merge_hooks
from vggt3d.testing import load_rule_weights

# Measured at writing (tiny-synthetic, 16 frames of a synthetic room, 84x112): depth AbsRel 0.2135 exact and
# 0.2132-0.2135 merged; max |pose_enc - exact| 0.019 / 0.041 / 0.075 / 0.120 at ratios 0.3 / 0.5 / 0.7 / 0.9.
POSE_BOUND = {0.3: 0.04, 0.5: 0.08, 0.7: 0.15, 0.9: 0.25}
ABSREL_MARGIN = 0.01


@pytest.fixture(scope="module")
def shipped():
    from vggt3d.data.synthetic import SyntheticConfig, SyntheticScenes

    sample = SyntheticScenes(SyntheticConfig(num_scenes=1, num_frames=16, image_size=(84, 112),
                                             scene_types=("room",), camera_paths=("orbit",), seed=3))[0]
    model = VGGT3D.from_pretrained("tiny-synthetic").eval()
    with torch.inference_mode():
        exact = model(sample["images"])
    return model, sample, exact


def _absrel(depth: torch.Tensor, gt: torch.Tensor) -> float:
    mask = gt > 0
    scale = (gt[mask] / depth[mask]).median()
    return float(((depth[mask] * scale - gt[mask]).abs() / gt[mask]).mean())


def test_ratio_zero_is_the_exact_path():
    model = load_rule_weights(VGGT3D(ModelConfig.preset("tiny"))).eval()
    images = torch.rand(5, 3, 56, 70, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        exact = model(images)
        merged = model(images, hooks=merge_hooks(0.0, 5, model.aggregator.patch_start_idx))
    for key in ("pose_enc", "depth", "depth_conf"):
        assert torch.equal(exact[key], merged[key]), key


@pytest.mark.parametrize("ratio", sorted(POSE_BOUND))
def test_each_ratio_keeps_its_accuracy(shipped, ratio):
    model, sample, exact = shipped
    hooks = merge_hooks(ratio, 16, model.aggregator.patch_start_idx)
    with torch.inference_mode():
        out = model(sample["images"], hooks=hooks)
    merger = hooks.inter_frame
    T = model.aggregator.patch_start_idx + (84 // 14) * (112 // 14)  # tokens per frame
    fixed = (T + 15 * model.aggregator.patch_start_idx) / (16 * T)  # frame 0 and the specials always stay
    assert merger.tokens_attended / merger.tokens_in == pytest.approx(max(1 - ratio, fixed), abs=0.02)
    gt = sample["depths"]
    assert _absrel(out["depth"][0, ..., 0], gt) <= _absrel(exact["depth"][0, ..., 0], gt) + ABSREL_MARGIN
    assert (out["pose_enc"] - exact["pose_enc"]).abs().max() <= POSE_BOUND[ratio]


def test_reference_frame_and_special_tokens_are_never_merged():
    from vggt3d.merging import _plan

    S, T, start = 6, 21, 5
    x = torch.randn(S * T, 16, generator=torch.Generator().manual_seed(1))
    kept, assign = _plan(x, S, T, start, MergeConfig(ratio=0.6))
    keep = set(kept.tolist())
    assert set(range(T)) <= keep and {s * T + j for s in range(S) for j in range(start)} <= keep
    assert len(kept) == S * T - int(0.6 * S * T)
    assert torch.equal(kept[assign[kept]], kept), "kept tokens map to themselves"


def test_bad_ratio_and_bad_combinations():
    with pytest.raises(ValueError, match=r"\[0, 0.95\]"):
        MergeConfig(ratio=1.5)
    with pytest.raises(ValueError, match=r"\[0, 0.95\]"):
        MergeConfig(ratio=float("nan"))
    import vggt3d

    with pytest.raises(ValueError, match="merge"):
        vggt3d.reconstruct("missing.mp4", model="tiny-synthetic", merge_ratio=2.0)
    from vggt3d.commands.reconstruct import main

    with pytest.raises(SystemExit):
        main(["x.mp4", "--out", "o", "--merge", "1.5"])


def test_prior_and_feature_commands_take_merge_ratio(tmp_path):
    from vggt3d.commands.features import load_prior
    from vggt3d.prior import GeometryPrior

    model = load_rule_weights(VGGT3D(ModelConfig.preset("tiny"))).eval()
    frames = torch.rand(1, 6, 3, 56, 56, generator=torch.Generator().manual_seed(2))
    exact = GeometryPrior(model, resolution=56)(frames)
    merged = GeometryPrior(model, resolution=56, merge_ratio=0.5)(frames)
    layer = max(exact.patch_tokens)
    assert merged.patch_tokens[layer].shape == exact.patch_tokens[layer].shape
    assert not torch.equal(merged.patch_tokens[layer], exact.patch_tokens[layer])
    with pytest.raises(ValueError, match=r"\[0, 0.95\]"):
        GeometryPrior(model, merge_ratio=1.0)
    import argparse

    from vggt3d.commands.features import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    weights = model.save_pretrained(tmp_path / "tiny")
    args = parser.parse_args(["clip.mp4", "--out", str(tmp_path / "o"), "--weights", str(weights), "--merge", "0.3"])
    assert load_prior(args).merge_ratio == 0.3
