"""The refinement pipeline on a reconstruction: BA moves every output, COLMAP gets multi-view tracks, failures."""

import dataclasses
import json

import numpy as np
import pycolmap
import pytest
from refine_helpers import (
    FRAMES,
    exact_reconstruction,
    perturb,
    relative_rotation_errors,
)

from vggt3d.refine import RefineConfig, refine_reconstruction
from vggt3d.refine.ba import BAConfig


@pytest.fixture(scope="module")
def refined(scene):
    """The true geometry with cameras 3 degrees / 5 % off and depth maps at 0.5x: refined with features."""
    start = perturb(scene["cam_from_world"], 3.0, 0.05, seed=1)
    rec = exact_reconstruction(scene, cam_from_world=start)
    rec = dataclasses.replace(rec, depth=rec.depth * 0.5)  # predicted depth in other units than the cameras
    config = RefineConfig(ba=BAConfig(refine_focal=False))
    return rec, refine_reconstruction(rec, tracks_from="features", refine="ba", config=config)


def test_ba_refines_cameras_and_reports(scene, refined):
    before, after = refined
    truth = scene["cam_from_world"]
    assert relative_rotation_errors(after.cam_from_world, truth).mean() < 0.25
    assert relative_rotation_errors(before.cam_from_world, truth).mean() > 3.0
    info = after.info["refine"]
    assert info["status"] == "refined" and info["reprojection_error_after"] < 1.0 < info["reprojection_error_before"]
    assert info["tracks"] > 100 and info["observations"] >= 2 * info["tracks"]
    assert after.info["tracks_from"]["source"] == "features"
    # depth maps rescaled to the refined geometry: track depths / depth maps ~ 1 in every frame
    np.testing.assert_allclose(info["depth_scale"], 2.0, rtol=0.05)
    np.testing.assert_allclose(after.depth, before.depth * np.array(info["depth_scale"])[:, None, None], rtol=1e-5)


def test_every_export_follows_the_refined_cameras(refined, tmp_path):
    _, rec = refined
    rec.save(tmp_path / "out")
    cams = json.loads((tmp_path / "out" / "cameras.json").read_text())["frames"]
    np.testing.assert_allclose([f["cam_from_world"] for f in cams], rec.cam_from_world, atol=1e-9)
    ns = json.loads((tmp_path / "out" / "transforms.json").read_text())["frames"]
    np.testing.assert_allclose([np.linalg.inv(np.array(f["transform_matrix"]) @ np.diag([1, -1, -1, 1])) for f in ns],
                               rec.cam_from_world, atol=1e-9)
    model = pycolmap.Reconstruction(str(tmp_path / "out" / "colmap" / "sparse" / "0"))
    multi = [p for p in model.points3D.values() if p.track.length() >= 2]
    assert len(multi) == len(rec.track_points.points) > 100
    assert model.num_points3D() == len(multi) + len(rec.points)
    errors = [np.linalg.norm(model.images[e.image_id].project_point(p.xyz)
                             - model.images[e.image_id].points2D[e.point2D_idx].xy)
              for p in multi for e in p.track.elements]
    assert np.mean(errors) < 1.0
    for image in model.images.values():
        np.testing.assert_allclose(image.cam_from_world().matrix(), rec.cam_from_world[image.image_id - 1, :3],
                                   atol=1e-9)
    assert sorted(p.name for p in (tmp_path / "out" / "colmap" / "images").iterdir()) == rec.image_names
    # the dense cloud sits on the rescaled depth: each point projects to its pixel at its depth
    f = rec.point_frame[:100]
    c = np.einsum("nij,nj->ni", rec.cam_from_world[f, :3, :3], rec.points[:100].astype(np.float64))
    c += rec.cam_from_world[f, :3, 3]
    u = np.round(rec.point_uv[:100]).astype(int)
    np.testing.assert_allclose(c[:, 2], rec.depth[f, u[:, 1], u[:, 0]], rtol=1e-4)


def test_tracks_without_refinement_go_into_colmap(scene, tmp_path):
    rec = refine_reconstruction(exact_reconstruction(scene), tracks_from="features")
    assert "refine" not in rec.info and rec.track_points is not None
    np.testing.assert_array_equal(rec.cam_from_world, scene["cam_from_world"])
    rec.save(tmp_path / "out", formats="colmap")
    model = pycolmap.Reconstruction(str(tmp_path / "out" / "colmap" / "sparse" / "0"))
    assert sum(p.track.length() >= 2 for p in model.points3D.values()) == len(rec.track_points.points)


def test_failed_refinement_keeps_the_unrefined_result(scene, tmp_path):
    blank = exact_reconstruction(scene)
    flat = [np.full_like(scene["images"][0], 128)] * FRAMES
    from PIL import Image

    blank = dataclasses.replace(blank, image_data=[Image.fromarray(im) for im in flat])
    out = refine_reconstruction(blank, refine="ba", tracks_from="features")
    assert out.info["refine"]["status"].startswith("failed: ") and "tracks" in out.info["refine"]["status"]
    np.testing.assert_array_equal(out.cam_from_world, blank.cam_from_world)
    out.save(tmp_path / "out", formats="cameras,colmap,images")  # still written
    assert (tmp_path / "out" / "cameras.json").is_file()


def test_option_errors(scene):
    rec = exact_reconstruction(scene)
    with pytest.raises(ValueError, match="refine"):
        refine_reconstruction(rec, refine="sfm")
    with pytest.raises(ValueError, match="tracks_from"):
        refine_reconstruction(rec, tracks_from="sift")
    with pytest.raises(ValueError, match="fix_poses"):
        refine_reconstruction(rec, fix_poses=True)
    with pytest.raises(ValueError, match="either poses"):
        refine_reconstruction(rec, poses=rec.cam_from_world, scale="camera-height=1")
    with pytest.raises(ValueError, match="track head"):
        refine_reconstruction(rec, tracks_from="head")


def test_distortion_undistorts_images_and_tracks(scene, tmp_path):
    """With --distortion the frames and observations are undistorted, so every camera file stays PINHOLE."""
    rec = exact_reconstruction(scene)
    config = RefineConfig(ba=BAConfig(distortion=True, shared_intrinsics=True, refine_focal=True))
    out = refine_reconstruction(rec, refine="ba", tracks_from="features", config=config)
    assert out.info["refine"]["status"] == "refined", out.info["refine"]["status"]
    k1 = out.info["undistorted"]["k1"]
    assert len(k1) == FRAMES and max(abs(k) for k in k1) < 0.1  # no distortion (k1 absorbs fy / fx = 1.02)
    assert all(not isinstance(d, str) for d in out.image_data)  # new in-memory frames
    out.save(tmp_path / "out", formats="images,colmap,cameras")
    model = pycolmap.Reconstruction(str(tmp_path / "out" / "colmap" / "sparse" / "0"))
    assert {c.model_name for c in model.cameras.values()} == {"PINHOLE"}
    assert len(list((tmp_path / "out" / "colmap" / "images").iterdir())) == FRAMES


def test_undistortion_round_trip():
    from vggt3d.refine.undistort import (
        distort_points,
        undistort_image,
        undistort_points,
    )

    K = np.array([[300.0, 0, 159.5], [0, 300.0, 119.5], [0, 0, 1]])
    uv = np.random.default_rng(0).uniform([0, 0], [320, 240], (50, 2))
    np.testing.assert_allclose(distort_points(undistort_points(uv, K, -0.1), K, -0.1), uv, atol=1e-6)
    image = np.zeros((240, 320, 3), np.uint8)
    image[::16] = 255
    same = undistort_image(image, K, 0.0)
    np.testing.assert_array_equal(same, image)  # k1 = 0 is the identity
