"""Crop/resize keeps projection exact; colour jitter; target sizes; augmented synthetic samples stay exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vggt3d.data import (
    AugmentConfig,
    MultiViewAugment,
    SampleRequest,
    SyntheticConfig,
    SyntheticScenes,
    check_sample,
    color_jitter,
    target_size_for_aspect,
    views_to_sample,
)
from vggt3d.data.augment import _shift_hue
from vggt3d.geometry import project_points


def test_target_size_for_aspect():
    assert target_size_for_aspect(518, 1.0) == (518, 518)
    assert target_size_for_aspect(518, 0.33) == (168, 518)
    assert target_size_for_aspect(518, 0.5) == (252, 518)
    assert all(target_size_for_aspect(518, a)[0] % 14 == 0 for a in np.linspace(0.33, 1, 20))


@pytest.mark.parametrize("train", [True, False])
def test_crop_resize_keeps_projection_exact(scene_views, train):
    """Projecting known 3D points with the new intrinsics lands exactly where the pixels moved."""
    _, views = scene_views
    augment = MultiViewAugment(AugmentConfig(train=train))
    rng = np.random.default_rng(0)
    for view in views[:3]:
        for output in ((28, 42), (42, 42), (70, 56)):
            plan = augment.plan(view.intrinsics, view.size, output, rng)
            out = augment.apply(view, plan)
            assert out.size == output and out.depth.shape == output
            # World points of random source pixels (from the source depth and camera).
            h, w = view.size
            uv = np.stack([rng.uniform(0, w - 1, 50), rng.uniform(0, h - 1, 50)], 1)
            k = view.intrinsics
            z = rng.uniform(1.0, 5.0, 50)
            cam = np.stack([(uv[:, 0] - k[0, 2]) / k[0, 0] * z, (uv[:, 1] - k[1, 2]) / k[1, 1] * z, z], 1)
            # (the exact inverse: float32-rounded rotations are orthonormal only to ~1e-8)
            world = (cam - view.cam_from_world[:, 3]) @ np.linalg.inv(view.cam_from_world[:, :3]).T
            projected, depth = project_points(torch.from_numpy(world), torch.from_numpy(out.cam_from_world),
                                              torch.from_numpy(out.intrinsics))
            np.testing.assert_allclose(projected.numpy(), plan.source_to_output(uv), atol=1e-9, rtol=0)
            np.testing.assert_allclose(depth.numpy(), z, rtol=1e-12)


def test_crop_only_keeps_points_identical(scene_views):
    """An integer crop without resizing shifts pixels: depth and world points are the cropped originals."""
    _, views = scene_views
    view = views[0]
    augment = MultiViewAugment(AugmentConfig(train=True, crop_scale_range=(0.6, 0.6), resize_margin_max=0.0))
    h, w = view.size
    plan = augment.plan(view.intrinsics, view.size, (int(h * 0.6) - 4, int(w * 0.6) - 4), np.random.default_rng(1))
    assert plan.scale_xy == (1.0, 1.0)
    out = augment.apply(view, plan)
    x0, y0 = plan.crop_xywh[0] + plan.final_xy[0], plan.crop_xywh[1] + plan.final_xy[1]
    H, W = out.size
    np.testing.assert_array_equal(out.depth, view.depth[y0:y0 + H, x0:x0 + W])
    np.testing.assert_array_equal(out.image, view.image[y0:y0 + H, x0:x0 + W])
    before = views_to_sample([view], "s")["world_points"][0, y0:y0 + H, x0:x0 + W]
    after = views_to_sample([out], "s")["world_points"][0]
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)


def test_resize_picks_nearest_source_depth(scene_views):
    _, views = scene_views
    view = views[1]
    augment = MultiViewAugment(AugmentConfig(train=False))
    plan = augment.plan(view.intrinsics, view.size, (28, 28), None)
    out = augment.apply(view, plan)
    sx, sy = plan.scale_xy
    for v, u in [(0, 0), (5, 17), (27, 27), (13, 3)]:
        # The output pixel centre, mapped back to source pixels, rounds to the source pixel used.
        su = (u + plan.final_xy[0] + 0.5) / sx - 0.5 + plan.crop_xywh[0]
        sv = (v + plan.final_xy[1] + 0.5) / sy - 0.5 + plan.crop_xywh[1]
        assert out.depth[v, u] == view.depth[int(np.floor(sv + 0.5)), int(np.floor(su + 0.5))]


def test_validation_plan_is_deterministic_and_centred(scene_views):
    _, views = scene_views
    augment = MultiViewAugment(AugmentConfig(train=False))
    a = augment.plan(views[0].intrinsics, views[0].size, (42, 42), np.random.default_rng(0))
    b = augment.plan(views[0].intrinsics, views[0].size, (42, 42), np.random.default_rng(1))
    assert a.crop_xywh == b.crop_xywh and a.final_xy == b.final_xy and np.array_equal(a.intrinsics, b.intrinsics)
    assert a.crop_xywh[2:] == (views[0].size[1], views[0].size[0])  # no random crop


def test_augmented_synthetic_request_is_exact(reproject):
    """Synthetic requests render at the augmented cameras: cross-view consistency still holds."""
    ds = SyntheticScenes(SyntheticConfig(num_scenes=3, num_frames=6, image_size=(70, 98), seed=2, num_tracks=16))
    augment = MultiViewAugment(AugmentConfig(train=True))
    sample = ds.sample_for_request(SampleRequest(1, 3, (42, 70), seed=5), augment)
    check_sample(sample, "augmented")
    assert sample["images"].shape == (3, 3, 42, 70) and sample["tracks"].shape == (3, 16, 2)
    assert sample["original_sizes"].tolist() == [[70, 98]] * 3
    scene = ds.scene(1)
    for i, j in [(0, 1), (1, 2), (2, 0)]:
        r = reproject(sample, scene, i, j)
        assert r["pixel"].max(initial=0) < 1e-3


def test_request_is_deterministic():
    ds = SyntheticScenes(SyntheticConfig(num_scenes=3, num_frames=5, image_size=(42, 56), seed=2))
    augment = MultiViewAugment()
    request = SampleRequest(2, 3, (28, 56), seed=9)
    a, b = ds.sample_for_request(request, augment), ds.sample_for_request(request, augment)
    assert a["frame_ids"] == b["frame_ids"] and torch.equal(a["images"], b["images"])
    c = ds.sample_for_request(SampleRequest(2, 3, (28, 56), seed=10), augment)
    assert not torch.equal(a["images"], c["images"])
    assert torch.equal(ds[request]["images"], a["images"])  # indexing with a request augments by default


def test_color_jitter():
    image = torch.rand(3, 8, 9)
    assert torch.equal(color_jitter(image), image)
    assert torch.allclose(color_jitter(image, order=[0, 1, 2, 3]), image, atol=1e-6)
    grey = color_jitter(image, grayscale=True)
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    shifted = color_jitter(image, order=[3], hue=0.25)
    back = color_jitter(shifted, order=[3], hue=-0.25)
    assert torch.allclose(back, image, atol=1e-5)
    assert torch.allclose(_shift_hue(image, 0.0), image, atol=1e-6)
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    assert torch.allclose(_shift_hue(red, 1 / 3), torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1), atol=1e-6)
    bright = color_jitter(image, order=[0], brightness=1.5)
    assert bright.max() <= 1 and (bright >= image - 1e-7).all()


def test_shared_and_per_frame_jitter():
    images = torch.rand(4, 3, 6, 6).expand(4, 3, 6, 6).clone()
    images[:] = images[0]
    augment = MultiViewAugment(AugmentConfig(shared_color_prob=1.0, color_jitter_prob=1.0, grayscale_prob=0.0))
    out = augment.color(images, np.random.default_rng(0))
    assert all(torch.equal(out[0], out[i]) for i in range(4))
    augment = MultiViewAugment(AugmentConfig(shared_color_prob=0.0, color_jitter_prob=1.0, grayscale_prob=0.0))
    out = augment.color(images, np.random.default_rng(0))
    assert not torch.equal(out[0], out[1])
    assert torch.equal(MultiViewAugment(AugmentConfig(train=False)).color(images, np.random.default_rng(0)), images)


@pytest.mark.parametrize("bad", [dict(aspect_range=(0.0, 1.0)), dict(crop_scale_range=(1.2, 0.8)),
                                 dict(color_jitter_prob=1.5), dict(hue=0.7)])
def test_augment_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        AugmentConfig(**bad)
