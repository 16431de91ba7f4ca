"""Pose encoding [t, quat_xyzw, fov_h, fov_w] <-> (cam_from_world, intrinsics)."""

from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from vggt3d.geometry import cameras_to_pose_encoding, pose_encoding_to_cameras

GOLDEN = pathlib.Path(__file__).parents[1] / "fixtures" / "golden"


@pytest.fixture(scope="module")
def golden():
    return {key: torch.from_numpy(value) for key, value in np.load(GOLDEN / "geometry.npz").items()}


def random_pose_enc(*lead: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    translation = torch.randn(*lead, 3, generator=gen, dtype=dtype)
    quat = torch.randn(*lead, 4, generator=gen, dtype=dtype)
    quat = quat / quat.norm(dim=-1, keepdim=True)
    quat = torch.where(quat[..., 3:] < 0, -quat, quat)
    fov = 0.3 + 1.5 * torch.rand(*lead, 2, generator=gen, dtype=dtype)
    return torch.cat([translation, quat, fov], dim=-1)


def test_golden_decode(golden):
    cam_from_world, intrinsics = pose_encoding_to_cameras(golden["pose_enc"], golden["image_size_hw"])
    assert cam_from_world.shape == (2, 3, 3, 4) and intrinsics.shape == (2, 3, 3, 3)
    assert_close(cam_from_world, golden["extrinsics"], atol=1e-5, rtol=0)
    assert_close(intrinsics, golden["intrinsics"], atol=1e-5, rtol=0)


def test_golden_encode(golden):
    pose_enc = cameras_to_pose_encoding(golden["extrinsics"], golden["intrinsics"], golden["image_size_hw"])
    assert_close(pose_enc, golden["pose_enc_roundtrip"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("image_size_hw", [(28, 42), [28, 42], torch.tensor([28, 42]), np.array([28, 42])])
def test_image_size_forms(golden, image_size_hw):
    _, intrinsics = pose_encoding_to_cameras(golden["pose_enc"], image_size_hw)
    assert_close(intrinsics, golden["intrinsics"], atol=1e-5, rtol=0)


def test_principal_point_is_half_the_size_and_fov_matches_focal():
    pose_enc = random_pose_enc(4)
    cam_from_world, intrinsics = pose_encoding_to_cameras(pose_enc, (70, 98))
    assert_close(intrinsics[:, 0, 2], torch.full((4,), 49.0, dtype=torch.float64))
    assert_close(intrinsics[:, 1, 2], torch.full((4,), 35.0, dtype=torch.float64))
    assert_close(2 * torch.atan(35.0 / intrinsics[:, 1, 1]), pose_enc[:, 7])
    assert_close(2 * torch.atan(49.0 / intrinsics[:, 0, 0]), pose_enc[:, 8])
    assert_close(intrinsics[:, 2], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand(4, 3))
    assert_close(cam_from_world[:, :, 3], pose_enc[:, :3])


def test_fov_of_ninety_degrees():
    pose_enc = torch.tensor([0, 0, 0, 0, 0, 0, 1, math.pi / 2, math.pi / 2], dtype=torch.float64)
    _, intrinsics = pose_encoding_to_cameras(pose_enc, (518, 392))
    assert_close(intrinsics[1, 1], torch.tensor(259.0, dtype=torch.float64))
    assert_close(intrinsics[0, 0], torch.tensor(196.0, dtype=torch.float64))


@pytest.mark.parametrize("lead", [(), (5,), (2, 3, 4)])
def test_round_trip_encoding_to_cameras_and_back(lead):
    pose_enc = random_pose_enc(*lead, seed=len(lead))
    cam_from_world, intrinsics = pose_encoding_to_cameras(pose_enc, (56, 42))
    assert cam_from_world.shape == (*lead, 3, 4) and intrinsics.shape == (*lead, 3, 3)
    assert_close(cameras_to_pose_encoding(cam_from_world, intrinsics, (56, 42)), pose_enc)


def test_round_trip_cameras_to_encoding_and_back():
    cam_from_world, intrinsics = pose_encoding_to_cameras(random_pose_enc(2, 3, seed=7), (28, 42))
    homogeneous = torch.cat(
        [cam_from_world, torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64).expand(2, 3, 1, 4)], dim=-2
    )
    pose_enc = cameras_to_pose_encoding(homogeneous, intrinsics, (28, 42))
    decoded_extrinsics, decoded_intrinsics = pose_encoding_to_cameras(pose_enc, (28, 42))
    assert_close(decoded_extrinsics, cam_from_world)
    assert_close(decoded_intrinsics, intrinsics)


def test_non_unit_quaternion_decodes_like_its_normalisation():
    pose_enc = random_pose_enc(6, seed=3)
    scaled = pose_enc.clone()
    scaled[:, 3:7] *= 2.5
    assert_close(pose_encoding_to_cameras(scaled, (28, 42))[0], pose_encoding_to_cameras(pose_enc, (28, 42))[0])


def test_gradcheck_decode():
    pose_enc = random_pose_enc(2, seed=5).requires_grad_()
    assert torch.autograd.gradcheck(lambda p: pose_encoding_to_cameras(p, (14, 28)), (pose_enc,))


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="pose_enc"):
        pose_encoding_to_cameras(torch.zeros(2, 8), (28, 42))
    with pytest.raises(ValueError, match="image_size_hw"):
        pose_encoding_to_cameras(torch.zeros(2, 9), (28, 42, 3))
    with pytest.raises(ValueError, match="image_size_hw"):
        pose_encoding_to_cameras(torch.zeros(2, 9), (0, 42))
    with pytest.raises(ValueError, match="cam_from_world"):
        cameras_to_pose_encoding(torch.zeros(2, 3, 3), torch.eye(3).expand(2, 3, 3), (28, 42))
    with pytest.raises(ValueError, match="intrinsics"):
        cameras_to_pose_encoding(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), (28, 42))
