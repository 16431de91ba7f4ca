"""Shared fixtures of the data tests: small synthetic scenes and their native views."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vggt3d.data import SyntheticConfig, SyntheticScenes
from vggt3d.data.render import pixel_rays
from vggt3d.geometry import project_points




@pytest.fixture(scope="session")
def small_config() -> SyntheticConfig:
    """4-frame scenes at 56 x 70 with tracks."""
    return SyntheticConfig(num_scenes=12, num_frames=4, image_size=(56, 70), seed=7, num_tracks=32)


@pytest.fixture(scope="session")
def small_synthetic(small_config) -> SyntheticScenes:
    return SyntheticScenes(small_config)


@pytest.fixture(scope="session")
def scene_views(small_synthetic):
    """``(scene, views)`` of a 6-frame room scene with objects, rendered at 48 x 64."""
    ds = SyntheticScenes(SyntheticConfig(num_scenes=4, num_frames=6, image_size=(48, 64), seed=3,
                                         scene_types=("room",), camera_paths=("orbit",)))
    return ds.scene(0), ds.load_views(0, range(6))


def reprojection_errors(sample: dict, scene, i: int, j: int) -> dict[str, np.ndarray]:
    """How view i's valid points of a sample reproject into view j, against exact ray casting.

    For each valid pixel of view i, the sample's world point is projected into view
    j; it is *visible* there if the surface ray-cast at that sub-pixel position of
    view j has its depth. For the visible points this returns:

    - ``pixel``: distance in view j between that projection and the projection of
      the exact surface point of the pixel (ray-cast in view i, float64);
    - ``relative``: distance of that surface point to the sample's world point,
      divided by its depth in view j;
    - ``incidence``: ``|cos|`` between view j's ray and the surface normal (small =
      grazing, where float32 storage is amplified along the surface).
    """
    H, W = sample["depths"].shape[1:]
    mask = sample["point_masks"][i].reshape(-1)
    world = sample["world_points"][i].reshape(-1, 3)[mask].double()  # [M, 3]
    pix = torch.stack(torch.meshgrid(torch.arange(W), torch.arange(H), indexing="xy"), -1).reshape(-1, 2)[mask]
    E, K = sample["cam_from_world"].double(), sample["intrinsics"].double()
    uv_j, z_j = project_points(world, E[j], K[j])
    inside = (z_j > 0) & (uv_j[:, 0] >= 0) & (uv_j[:, 0] <= W - 1) & (uv_j[:, 1] >= 0) & (uv_j[:, 1] <= H - 1)
    uv_j, z_j, pix, world = uv_j[inside], z_j[inside], pix[inside], world[inside]
    origin, directions = pixel_rays(E[j].numpy(), K[j].numpy(), uv_j.numpy())
    t, index = scene.scene.raycast(origin, directions)
    # Exact surface points of view i's pixel centres.
    origin_i, directions_i = pixel_rays(E[i].numpy(), K[i].numpy(), pix.double().numpy())
    t_i, index_i = scene.scene.raycast(origin_i, directions_i)
    # Visible in j: the surface seen there is the same primitive at the same depth.
    visible = (np.abs(t - z_j.numpy()) < 1e-4 * z_j.numpy()) & (index == index_i)
    vis_t = torch.from_numpy(visible)
    exact = torch.from_numpy(origin_i + t_i[visible, None] * directions_i[visible])
    uv_exact, _ = project_points(exact, E[j], K[j])
    back = origin + t[visible, None] * directions[visible]  # the surface point seen by view j
    normals = np.zeros_like(back)
    for k in np.unique(index[visible]):
        sel = index[visible] == k
        normals[sel] = scene.scene.primitives[k].normals(back[sel])
    rays = directions[visible] / np.linalg.norm(directions[visible], axis=1, keepdims=True)
    return {
        "pixel": (uv_j[vis_t] - uv_exact).norm(dim=-1).numpy(),
        "relative": np.linalg.norm(back - world.numpy()[visible], axis=1) / z_j.numpy()[visible],
        "incidence": np.abs((normals * rays).sum(1)),
    }


@pytest.fixture(scope="session")
def reproject():
    """:func:`reprojection_errors` as a fixture (tests do not import conftest)."""
    return reprojection_errors
