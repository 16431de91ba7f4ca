"""The sample contract: stacking views, the fast world-point path, validation messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vggt3d.data import SampleError, View, check_sample, views_to_sample
from vggt3d.data.views import load_rgb
from vggt3d.geometry import depth_to_world_points


def _views(count=2, size=(6, 8), seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        q *= np.sign(np.linalg.det(q))
        e = np.concatenate([q, rng.normal(size=(3, 1)) * 3], 1)
        k = np.array([[10.0 + i, 0, 3.7], [0, 11.0, 2.4], [0, 0, 1]])
        depth = rng.uniform(0.5, 4.0, size).astype(np.float32)
        depth[0, :2] = 0.0
        out.append(View(rng.integers(0, 256, (*size, 3), dtype=np.uint8), depth, k, e, frame_id=10 + i))
    return out


def test_views_to_sample_follows_the_helpers():
    views = _views()
    views[1].mask = np.ones(views[1].size, bool)
    views[1].mask[2, 3] = False
    sample = views_to_sample(views, "toy")
    assert sample["frame_ids"] == [10, 11] and sample["original_sizes"].tolist() == [[6, 8]] * 2
    assert not sample["point_masks"][1, 2, 3] and sample["depths"][1, 2, 3] == 0
    assert not sample["point_masks"][0, 0, :2].any()
    depth = torch.from_numpy(np.stack([v.depth for v in views])).double() * sample["point_masks"]
    world, valid = depth_to_world_points(depth, torch.from_numpy(np.stack([v.cam_from_world for v in views])),
                                         torch.from_numpy(np.stack([v.intrinsics for v in views])))
    assert torch.equal(valid, sample["point_masks"])
    torch.testing.assert_close(sample["world_points"].double(), world * valid[..., None], atol=1e-5, rtol=1e-6)
    assert np.array_equal(sample["images"][0].permute(1, 2, 0).mul(255).round().byte().numpy(), views[0].image)


def test_views_of_different_sizes_are_refused():
    views = _views() + _views(1, size=(4, 8))
    with pytest.raises(ValueError, match="different sizes"):
        views_to_sample(views, "toy")


def test_view_validation():
    v = _views(1)[0]
    with pytest.raises(ValueError, match="uint8"):
        View(v.image.astype(np.float32), v.depth, v.intrinsics, v.cam_from_world, 0)
    with pytest.raises(ValueError, match="depth"):
        View(v.image, v.depth[:-1], v.intrinsics, v.cam_from_world, 0)


def test_check_sample_messages():
    sample = views_to_sample(_views(), "toy")
    for key, value, message in [("images", sample["images"] * 2, r"\[0, 1\]"),
                                ("depths", -sample["depths"], ">= 0"),
                                ("world_points", sample["world_points"].clone().fill_(float("nan")), "NaN"),
                                ("intrinsics", sample["intrinsics"].double(), "float32")]:
        broken = dict(sample)
        broken[key] = value
        with pytest.raises(SampleError, match=message):
            check_sample(broken, "toy")
    with pytest.raises(SampleError, match="toy: missing keys"):
        check_sample({k: v for k, v in sample.items() if k != "scene"}, "toy")


def test_load_rgb_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_rgb(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png"):
        load_rgb(tmp_path / "bad.png")
