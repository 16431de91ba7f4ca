"""Synthetic scene variety: corridor walks, small baselines, and the default scenes left unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from vggt3d.data import SyntheticConfig, SyntheticScenes, check_sample
from vggt3d.data.synthetic import make_synthetic_scene


def _centres(scene) -> np.ndarray:
    R, t = scene.cam_from_world[:, :, :3], scene.cam_from_world[:, :, 3]
    return -np.einsum("fji,fj->fi", R, t)  # [F, 3] camera centres in the world


def test_corridor_scenes_are_walks_inside_a_long_room():
    ds = SyntheticScenes(SyntheticConfig(num_scenes=4, num_frames=5, image_size=(42, 56), seed=3,
                                         scene_types=("corridor",)))
    for i in range(4):
        sample = ds[i]
        check_sample(sample, "synthetic")
        scene = ds.scene(i)
        assert scene.scene_type == "corridor" and scene.camera_path == "forward"
        assert bool(sample["point_masks"].all())  # closed room: every pixel sees a surface
        steps = np.linalg.norm(np.diff(_centres(scene), axis=0), axis=1)
        assert steps.min() > 0.05  # the camera moves forwards every frame


def test_baseline_scale_shrinks_the_camera_path():
    def extent(scale: float, path: str) -> float:
        cfg = SyntheticConfig(num_scenes=6, num_frames=6, image_size=(28, 28), seed=5, camera_paths=(path,),
                              baseline_scale=scale)
        return float(np.mean([np.linalg.norm(np.ptp(_centres(make_synthetic_scene(cfg, i)), axis=0))
                              for i in range(6)]))

    for path in ("orbit", "forward", "lookat"):
        assert extent(0.3, path) < 0.6 * extent(1.0, path), path


def test_default_scenes_do_not_depend_on_the_new_options():
    """baseline_scale 1 and the default scene types give exactly the scenes of before (held-out sets stay put)."""
    base = SyntheticConfig(num_scenes=3, num_frames=4, image_size=(28, 28), seed=1000)
    explicit = SyntheticConfig(num_scenes=3, num_frames=4, image_size=(28, 28), seed=1000, baseline_scale=1.0,
                               scene_types=("room", "objects"))
    for i in range(3):
        a, b = make_synthetic_scene(base, i), make_synthetic_scene(explicit, i)
        assert np.array_equal(a.cam_from_world, b.cam_from_world) and a.scene_type in ("room", "objects")


@pytest.mark.parametrize("bad", [dict(baseline_scale=0.0), dict(baseline_scale=5.0)])
def test_bad_baseline_scale(bad):
    with pytest.raises(ValueError, match="baseline_scale"):
        SyntheticConfig(**bad)
