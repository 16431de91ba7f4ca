"""Rigid transforms: inversion, homogeneous form, re-expression relative to view 0."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from vggt3d.geometry import (
    depth_to_world_points,
    invert_rigid,
    pose_encoding_to_cameras,
    quat_xyzw_to_rotation_matrix,
    relative_to_first,
    to_homogeneous_transform,
)

GOLDEN = pathlib.Path(__file__).parents[1] / "fixtures" / "golden"


def random_rigid(*lead: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    rotation = quat_xyzw_to_rotation_matrix(torch.randn(*lead, 4, generator=gen, dtype=torch.float64))
    translation = torch.randn(*lead, 3, 1, generator=gen, dtype=torch.float64)
    return torch.cat([rotation, translation], dim=-1)  # [..., 3, 4]


def test_to_homogeneous():
    transform = random_rigid(2, 3)
    homogeneous = to_homogeneous_transform(transform)
    assert homogeneous.shape == (2, 3, 4, 4)
    assert_close(homogeneous[..., :3, :], transform)
    assert_close(homogeneous[..., 3, :], torch.tensor([0, 0, 0, 1.0], dtype=torch.float64).expand(2, 3, 4))
    assert to_homogeneous_transform(homogeneous) is homogeneous


@pytest.mark.parametrize("homogeneous", [False, True])
@pytest.mark.parametrize("lead", [(), (4,), (2, 3)])
def test_invert_twice_and_compose_to_identity(lead, homogeneous):
    transform = random_rigid(*lead, seed=1)
    if homogeneous:
        transform = to_homogeneous_transform(transform)
    inverse = invert_rigid(transform)
    assert inverse.shape == transform.shape
    assert_close(invert_rigid(inverse), transform)
    product = to_homogeneous_transform(transform) @ to_homogeneous_transform(inverse)
    assert_close(product, torch.eye(4, dtype=torch.float64).expand_as(product))


def test_relative_to_first():
    cam_from_world = random_rigid(2, 5, seed=2)  # [B, S, 3, 4]
    relative = relative_to_first(cam_from_world)
    assert relative.shape == (2, 5, 3, 4)
    assert_close(relative[:, 0], torch.eye(3, 4, dtype=torch.float64).expand(2, 3, 4))
    expected = to_homogeneous_transform(cam_from_world) @ to_homogeneous_transform(invert_rigid(cam_from_world[:, :1]))
    assert_close(relative, expected[..., :3, :])
    # A change of world frame (E_i -> E_i G) leaves relative poses unchanged.
    change = to_homogeneous_transform(random_rigid(seed=3))
    moved = to_homogeneous_transform(cam_from_world) @ change
    assert_close(relative_to_first(moved), to_homogeneous_transform(relative))


def test_relative_to_first_on_golden_points():
    golden = {key: torch.from_numpy(value).double() for key, value in np.load(GOLDEN / "geometry.npz").items()}
    cam_from_world, intrinsics = pose_encoding_to_cameras(golden["pose_enc"], (28, 42))
    relative = relative_to_first(cam_from_world)
    points, _ = depth_to_world_points(golden["depth"], relative, intrinsics)  # in view 0's camera frame
    first = cam_from_world[:, :1, None, None]  # [B, 1, 1, 1, 3, 4]
    expected = (first[..., :3] @ golden["world_points"].unsqueeze(-1)).squeeze(-1) + first[..., 3]
    assert_close(points, expected, atol=1e-5, rtol=0)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="transform"):
        invert_rigid(torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="transform"):
        to_homogeneous_transform(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="cam_from_world"):
        relative_to_first(torch.zeros(2, 3, 2, 4))
    with pytest.raises(ValueError, match="cam_from_world"):
        relative_to_first(torch.zeros(3, 4))  # no view dimension
