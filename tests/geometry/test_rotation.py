"""Quaternion (xyzw) <-> rotation matrix: golden parity, round trips, gradcheck, bad inputs."""

from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from vggt3d.geometry import quat_xyzw_to_rotation_matrix, rotation_matrix_to_quat_xyzw

GOLDEN = pathlib.Path(__file__).parents[1] / "fixtures" / "golden"


def random_unit_quats(n: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    quat = torch.randn(n, 4, generator=gen, dtype=dtype)
    quat = quat / quat.norm(dim=-1, keepdim=True)
    return torch.where(quat[:, 3:] < 0, -quat, quat)


def axis_angle_matrix(axis, angle: float) -> torch.Tensor:
    axis = torch.tensor(axis, dtype=torch.float64)
    axis = axis / axis.norm()
    skew = torch.tensor([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + math.sin(angle) * skew + (1 - math.cos(angle)) * skew @ skew


def test_golden_quaternions_decode_to_golden_rotations():
    golden = np.load(GOLDEN / "geometry.npz")
    quat = torch.from_numpy(golden["pose_enc"][..., 3:7])  # non-unit quaternions
    rotation = quat_xyzw_to_rotation_matrix(quat)
    assert rotation.shape == (2, 3, 3, 3)
    assert_close(rotation, torch.from_numpy(golden["extrinsics"][..., :3]), atol=1e-5, rtol=0)


def test_golden_rotations_encode_to_golden_roundtrip_quaternions():
    golden = np.load(GOLDEN / "geometry.npz")
    quat = rotation_matrix_to_quat_xyzw(torch.from_numpy(golden["extrinsics"][..., :3]))
    assert_close(quat, torch.from_numpy(golden["pose_enc_roundtrip"][..., 3:7]), atol=1e-5, rtol=0)


def test_known_rotations():
    # 90 degrees about z maps x to y: q = (0, 0, sin 45, cos 45).
    s = math.sqrt(0.5)
    rotation = quat_xyzw_to_rotation_matrix(torch.tensor([0.0, 0.0, s, s], dtype=torch.float64))
    assert_close(
        rotation @ torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),
        torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64),
    )
    identity = quat_xyzw_to_rotation_matrix(torch.tensor([0.0, 0.0, 0.0, 1.0]))
    assert_close(identity, torch.eye(3))
    assert_close(rotation_matrix_to_quat_xyzw(torch.eye(3)), torch.tensor([0.0, 0.0, 0.0, 1.0]))


def test_matches_kornia_wxyz():
    kornia_conversions = pytest.importorskip("kornia.geometry.conversions")
    quat = random_unit_quats(32, seed=3)
    ours = quat_xyzw_to_rotation_matrix(quat)
    theirs = kornia_conversions.quaternion_to_rotation_matrix(quat[:, [3, 0, 1, 2]])
    assert_close(ours, theirs)


def test_non_unit_and_negated_quaternions_give_the_same_rotation():
    quat = random_unit_quats(16, seed=1)
    reference = quat_xyzw_to_rotation_matrix(quat)
    assert_close(quat_xyzw_to_rotation_matrix(3.7 * quat), reference)
    assert_close(quat_xyzw_to_rotation_matrix(-0.2 * quat), reference)
    eye = torch.eye(3, dtype=torch.float64).expand(16, 3, 3)
    assert_close(reference @ reference.transpose(-1, -2), eye)
    assert_close(torch.linalg.det(reference), torch.ones(16, dtype=torch.float64))


def test_quaternion_round_trip_is_standardised():
    quat = random_unit_quats(200, seed=2)
    quat[:20, 3] = 0.0  # 180-degree rotations
    quat[:20] = quat[:20] / quat[:20].norm(dim=-1, keepdim=True)
    recovered = rotation_matrix_to_quat_xyzw(quat_xyzw_to_rotation_matrix(quat))
    assert (recovered[:, 3] >= 0).all()
    # q and -q are the same rotation: compare up to sign (exact for qw > 0).
    sign = torch.where((recovered * quat).sum(-1, keepdim=True) < 0, -1.0, 1.0).to(quat)
    assert_close(recovered * sign, quat)
    assert_close(recovered[20:], quat[20:])


@pytest.mark.parametrize(
    ("axis", "angle"),
    [
        ((1, 0, 0), math.pi),
        ((0, 1, 0), math.pi),
        ((0, 0, 1), math.pi),
        ((1, 1, 0), math.pi),
        ((1, 2, 3), 1e-7),
        ((0, 0, 1), 0.0),
    ],
)
def test_matrix_round_trip_for_hard_rotations(axis, angle):
    rotation = axis_angle_matrix(axis, angle)
    quat = rotation_matrix_to_quat_xyzw(rotation)
    assert_close(quat.norm(), torch.tensor(1.0, dtype=torch.float64))
    assert_close(quat_xyzw_to_rotation_matrix(quat), rotation)


@pytest.mark.parametrize("lead", [(), (5,), (2, 3, 4)])
def test_shapes_follow_leading_dims(lead):
    quat = torch.randn(*lead, 4)
    rotation = quat_xyzw_to_rotation_matrix(quat)
    assert rotation.shape == (*lead, 3, 3)
    assert rotation_matrix_to_quat_xyzw(rotation).shape == (*lead, 4)


def test_gradcheck_quaternion_to_matrix():
    quat = torch.randn(2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    assert torch.autograd.gradcheck(quat_xyzw_to_rotation_matrix, (quat,))


def test_gradcheck_matrix_to_quaternion():
    rotation = quat_xyzw_to_rotation_matrix(random_unit_quats(2, seed=4)).requires_grad_()
    assert torch.autograd.gradcheck(rotation_matrix_to_quat_xyzw, (rotation,))


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="quat_xyzw"):
        quat_xyzw_to_rotation_matrix(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="rotation"):
        rotation_matrix_to_quat_xyzw(torch.zeros(2, 3, 4))
    with pytest.raises(TypeError, match="quat_xyzw"):
        quat_xyzw_to_rotation_matrix([0.0, 0.0, 0.0, 1.0])
