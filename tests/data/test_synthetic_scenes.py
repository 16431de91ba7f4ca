"""Synthetic scenes: contract, exact multi-view consistency, tracks, determinism, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from vggt3d.data import SampleError, SyntheticConfig, SyntheticScenes, check_sample, depth_visibility
from vggt3d.data.render import pixel_rays
from vggt3d.data.tracks import BORDER
from vggt3d.geometry import depth_to_world_points, project_points


def test_contract_and_shapes(small_synthetic, small_config):
    for i in range(4):
        sample = small_synthetic[i]
        check_sample(sample, "synthetic")
        S = len(sample["frame_ids"])
        assert S == 4 and sample["images"].shape == (S, 3, 56, 70)
        assert sample["tracks"].shape == (S, small_config.num_tracks, 2)
        assert sample["original_sizes"].tolist() == [[56, 70]] * S
        assert sample["point_masks"].any()


def test_frame_range_and_options():
    ds = SyntheticScenes(SyntheticConfig(num_scenes=6, num_frames=(2, 5), image_size=(28, 42), seed=1,
                                         scene_types=("objects",), camera_paths=("lookat",)))
    counts = {len(ds[i]["frame_ids"]) for i in range(6)}
    assert counts <= {2, 3, 4, 5} and len(counts) > 1
    assert all(ds.scene(i).scene_type == "objects" and ds.scene(i).camera_path == "lookat" for i in range(6))


def test_determinism_by_seed(small_config):
    a, b = SyntheticScenes(small_config), SyntheticScenes(small_config)
    sa, sb = a[3], b[3]
    for key in ("images", "depths", "cam_from_world", "intrinsics", "world_points", "tracks", "track_visibility"):
        assert torch.equal(sa[key], sb[key]), key
    other = SyntheticScenes(SyntheticConfig(**{**small_config.__dict__, "seed": small_config.seed + 1}))[3]
    assert not torch.equal(sa["images"], other["images"])
    assert not torch.equal(a[2]["cam_from_world"], sa["cam_from_world"])  # indices differ too


def test_four_views_reproject_exactly(reproject):
    """Visible points of each view land where the exact geometry puts them in the others (< 1e-3 px),
    and the depth seen there gives the point back (1e-4 relative; grazing rays with |cos| < 0.05
    excluded, where float32 storage of the points is amplified along the surface)."""
    ds = SyntheticScenes(SyntheticConfig(num_scenes=6, num_frames=4, image_size=(84, 112), seed=11))
    checked = 0
    for index in range(6):
        sample, scene = ds[index], ds.scene(index)
        for i in range(4):
            for j in range(4):
                if i == j:
                    continue
                r = reproject(sample, scene, i, j)
                if len(r["pixel"]):
                    assert r["pixel"].max() < 1e-3, (index, i, j, r["pixel"].max())
                    steady = r["incidence"] > 0.05
                    assert r["relative"][steady].max(initial=0) < 1e-4, (index, i, j, r["relative"].max())
                    checked += len(r["pixel"])
    assert checked > 10_000  # views overlap


def test_depth_is_the_exact_ray_cast(small_synthetic):
    """The fast one-origin renderer agrees with the generic ray caster, and points lie on surfaces."""
    sample, scene = small_synthetic[1], small_synthetic.scene(1)
    E, K = sample["cam_from_world"][2].double().numpy(), sample["intrinsics"][2].double().numpy()
    H, W = sample["depths"].shape[1:]
    uv = np.stack(np.meshgrid(np.arange(W), np.arange(H), indexing="xy"), -1).reshape(-1, 2).astype(np.float64)
    t, _ = scene.raycast_pixels(E, K, uv)
    depth = sample["depths"][2].reshape(-1).double().numpy()
    hit = np.isfinite(t)
    assert np.array_equal(hit, depth > 0)
    relative = np.abs(depth[hit] - t[hit]) / t[hit]
    assert relative.max() < 1e-4  # rims and contact edges: a few pixels round to another face
    assert (relative < 2e-6).mean() > 0.995
    world = sample["world_points"][2].reshape(-1, 3)[torch.from_numpy(hit)].double().numpy()
    distance = np.min([np.abs(p.signed_distance(world)) for p in scene.scene.primitives], axis=0)
    assert distance.max() < 1e-4


def test_world_points_follow_the_geometry_helpers(small_synthetic):
    sample = small_synthetic[0]
    world, valid = depth_to_world_points(sample["depths"].double(), sample["cam_from_world"].double(),
                                         sample["intrinsics"].double())
    assert torch.equal(valid, sample["point_masks"])
    torch.testing.assert_close(sample["world_points"].double(), world * valid[..., None], atol=2e-5, rtol=1e-6)


def test_tracks_agree_with_depth_and_cameras(small_synthetic):
    agreements = []
    for index in range(4):
        sample, scene = small_synthetic[index], small_synthetic.scene(index)
        E, K = sample["cam_from_world"].double(), sample["intrinsics"].double()
        tracks, vis = sample["tracks"].double(), sample["track_visibility"]
        S, H, W = sample["depths"].shape
        assert vis[0].all()  # queries are visible in frame 0
        # The track is one 3D point: the surface seen at the frame-0 query, projected into every frame.
        t0, point = scene.raycast_pixels(E[0].numpy(), K[0].numpy(), tracks[0].numpy())
        assert np.isfinite(t0).all()
        uv, z = project_points(torch.from_numpy(point).expand(S, -1, -1), E, K)
        assert (uv - tracks)[vis].abs().max() < 1e-3
        # Exact depth test: inside the border, and the ray cast at the projection sees the point.
        for s in range(S):
            t, _ = scene.raycast_pixels(E[s].numpy(), K[s].numpy(), uv[s].numpy())
            inside = ((uv[s] >= BORDER) & (uv[s] <= torch.tensor([W - 1 - BORDER, H - 1 - BORDER]))).all(-1)
            exact = inside.numpy() & (z[s].numpy() > 0) & (np.abs(t - z[s].numpy()) <= 1e-5 * z[s].numpy())
            assert np.array_equal(exact, vis[s].numpy()), (index, s)
        # TRAINING.md's depth-map test (4-neighbourhood, 5 %) on the sample agrees on most entries; it
        # differs on grazing ground at this low resolution, where depth changes > 5 % per pixel.
        agreements.append((depth_visibility(uv, z, sample["depths"].double()) == vis).float().mean().item())
    assert np.mean(agreements) > 0.85, agreements


def test_sky_pixels_are_invalid():
    ds = SyntheticScenes(SyntheticConfig(num_scenes=3, num_frames=2, image_size=(40, 56), seed=5,
                                         scene_types=("objects",), camera_paths=("orbit",)))
    sample = ds[0]
    invalid = ~sample["point_masks"]
    assert invalid.any()
    assert (sample["depths"][invalid] == 0).all() and (sample["world_points"][invalid] == 0).all()


def test_rays_have_unit_camera_z(small_synthetic):
    scene = small_synthetic.scene(0)
    origin, directions = pixel_rays(scene.cam_from_world[0], scene.intrinsics[0], np.array([[3.0, 4.0]]))
    cam = directions @ scene.cam_from_world[0][:, :3].T
    assert abs(cam[0, 2] - 1.0) < 1e-6  # float32 cameras: R R^T = I up to ~1e-8


@pytest.mark.parametrize("bad", [dict(num_scenes=0), dict(num_frames=(3, 2)), dict(image_size=(4, 4)),
                                 dict(scene_types=("cave",)), dict(camera_paths=()), dict(num_tracks=-1),
                                 dict(fov_deg=(100.0, 200.0))])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="SyntheticConfig"):
        SyntheticConfig(**bad)


def test_bad_index_and_bad_sample(small_synthetic):
    with pytest.raises(IndexError):
        small_synthetic[len(small_synthetic)]
    sample = dict(small_synthetic[0])
    sample["depths"] = sample["depths"][:, :-1]
    with pytest.raises(SampleError, match="depths"):
        check_sample(sample, "broken")


def test_generation_speed_s4_224():
    """S=4 at 224x224 (one torch thread): at least 10 samples per CPU second; the rate is printed."""
    ds = SyntheticScenes(SyntheticConfig(num_scenes=100, num_frames=4, image_size=(224, 224), seed=0))
    ds[0]
    count = 8
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(1, count + 1):
        ds[i]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"synthetic S=4 224x224: {count / wall:.1f} samples/s wall, {count / cpu:.1f} per CPU second")
    assert count / cpu >= 10.0
