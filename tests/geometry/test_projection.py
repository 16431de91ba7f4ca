"""Depth unprojection and point projection: golden parity, round trips, gradcheck, bad inputs."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from vggt3d.geometry import (
    cam_points_to_world,
    depth_to_cam_points,
    depth_to_world_points,
    pose_encoding_to_cameras,
    project_points,
)

GOLDEN = pathlib.Path(__file__).parents[1] / "fixtures" / "golden"


@pytest.fixture(scope="module")
def golden():
    return {key: torch.from_numpy(value) for key, value in np.load(GOLDEN / "geometry.npz").items()}


def small_scene(seed: int = 0, dtype=torch.float64):
    """Two views [S=2] of a 4x5 depth map with random cameras."""
    gen = torch.Generator().manual_seed(seed)
    quat = torch.randn(2, 4, generator=gen, dtype=dtype)
    pose_enc = torch.cat(
        [torch.randn(2, 3, generator=gen, dtype=dtype), quat, torch.full((2, 2), 1.2, dtype=dtype)], dim=-1
    )
    cam_from_world, intrinsics = pose_encoding_to_cameras(pose_enc, (4, 5))
    depth = 0.5 + torch.rand(2, 4, 5, generator=gen, dtype=dtype)
    return depth, cam_from_world, intrinsics


def test_golden_world_points(golden):
    cam_from_world, intrinsics = pose_encoding_to_cameras(golden["pose_enc"], golden["image_size_hw"])
    for depth in (golden["depth"], golden["depth"][..., 0]):  # [B, S, H, W, 1] and [B, S, H, W]
        world_points, valid = depth_to_world_points(depth, cam_from_world, intrinsics)
        assert world_points.shape == (2, 3, 28, 42, 3) and valid.shape == (2, 3, 28, 42)
        assert valid.dtype == torch.bool and valid.all()
        assert_close(world_points, golden["world_points"], atol=1e-5, rtol=0)


def test_pixel_grid_convention():
    intrinsics = torch.tensor([[2.0, 0.0, 1.0], [0.0, 4.0, 0.5], [0.0, 0.0, 1.0]])
    depth = torch.full((2, 3), 2.0)  # [H=2, W=3]
    points = depth_to_cam_points(depth, intrinsics)
    assert points.shape == (2, 3, 3)
    # Column u, row v, pixel centres at integers: (u - cx) d / fx, (v - cy) d / fy.
    assert_close(points[1, 2], torch.tensor([(2 - 1.0) * 2 / 2, (1 - 0.5) * 2 / 4, 2.0]))
    assert_close(points[0, 1], torch.tensor([0.0, -0.25, 2.0]))


def test_valid_mask_follows_depth():
    depth, cam_from_world, intrinsics = small_scene()
    depth[0, 1, 2] = 0.0
    depth[1, 0, 0] = -1.0
    _, valid = depth_to_world_points(depth.unsqueeze(-1), cam_from_world, intrinsics)
    assert valid.sum() == depth.numel() - 2
    assert not valid[0, 1, 2] and not valid[1, 0, 0]


def test_project_then_unproject_round_trip():
    depth, cam_from_world, intrinsics = small_scene(seed=1)
    world_points, _ = depth_to_world_points(depth, cam_from_world, intrinsics)  # [S, H, W, 3]
    uv, z = project_points(world_points.flatten(1, 2), cam_from_world, intrinsics)  # [S, H*W, 2], [S, H*W]
    v, u = torch.meshgrid(torch.arange(4.0), torch.arange(5.0), indexing="ij")
    expected_uv = torch.stack([u, v], dim=-1).flatten(0, 1).to(uv).expand(2, -1, -1)
    assert_close(uv, expected_uv)
    assert_close(z, depth.flatten(1))
    # [S, H, W, 3] point layout works too.
    uv_grid, _ = project_points(world_points, cam_from_world, intrinsics)
    assert_close(uv_grid.flatten(1, 2), uv)


def test_cam_points_to_world_matches_inverse_transform():
    depth, cam_from_world, intrinsics = small_scene(seed=2)
    cam_points = depth_to_cam_points(depth, intrinsics)
    world = cam_points_to_world(cam_points, cam_from_world)
    rotation, translation = cam_from_world[:, None, None, :, :3], cam_from_world[:, None, None, :, 3]
    back = (rotation @ world.unsqueeze(-1)).squeeze(-1) + translation
    assert_close(back, cam_points)
    identity = torch.eye(3, 4, dtype=torch.float64)
    assert_close(cam_points_to_world(cam_points, identity), cam_points)


def test_broadcasting_of_camera_tensors():
    depth, cam_from_world, intrinsics = small_scene(seed=3)
    shared, _ = depth_to_world_points(depth, cam_from_world[0], intrinsics[0])  # one camera for both maps
    single, _ = depth_to_world_points(depth[1], cam_from_world[0], intrinsics[0])
    assert shared.shape == (2, 4, 5, 3)
    assert_close(shared[1], single)
    batched, _ = depth_to_world_points(depth[None], cam_from_world[None], intrinsics)  # [1, S], [1, S], [S]
    assert batched.shape == (1, 2, 4, 5, 3)


def test_gradcheck_unprojection():
    depth, cam_from_world, intrinsics = small_scene(seed=4)
    inputs = (depth[:, :2, :3].clone().requires_grad_(), cam_from_world.requires_grad_(), intrinsics.requires_grad_())
    assert torch.autograd.gradcheck(lambda d, e, k: depth_to_world_points(d, e, k)[0], inputs)


def test_gradcheck_projection():
    _, cam_from_world, intrinsics = small_scene(seed=5)
    points = torch.randn(2, 3, 3, dtype=torch.float64)
    points = points + (
        cam_from_world[:, None, :, :3].transpose(-1, -2) @ torch.tensor([0, 0, 5.0], dtype=torch.float64)[:, None]
    ).squeeze(-1)
    inputs = (points.requires_grad_(), cam_from_world.requires_grad_(), intrinsics.requires_grad_())
    assert torch.autograd.gradcheck(lambda p, e, k: project_points(p, e, k)[0], inputs)


def test_bad_inputs_name_the_argument():
    depth, cam_from_world, intrinsics = small_scene()
    with pytest.raises(ValueError, match="intrinsics"):
        depth_to_cam_points(depth, intrinsics[..., :2])
    with pytest.raises(ValueError, match="cam_from_world"):
        depth_to_world_points(depth, cam_from_world[..., :3], intrinsics)
    with pytest.raises(ValueError, match="depth"):
        depth_to_world_points(torch.ones(5), cam_from_world, intrinsics)
    with pytest.raises(ValueError, match="depth"):
        depth_to_world_points(torch.ones(3, 4, 5), cam_from_world, intrinsics)  # 3 maps, 2 cameras
    with pytest.raises(ValueError, match="world_points"):
        project_points(torch.ones(2, 7, 2), cam_from_world, intrinsics)
    with pytest.raises(ValueError, match="cam_points"):
        cam_points_to_world(torch.ones(2, 7, 4), cam_from_world)
    with pytest.raises(ValueError, match="cam_from_world"):
        project_points(torch.ones(7, 3), cam_from_world, intrinsics)  # 2 cameras, no view dim in points
