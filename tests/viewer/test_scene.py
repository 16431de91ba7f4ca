"""Reading scenes for the viewers: vggt3d outputs, COLMAP models, PLY files, and hostile folders."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pycolmap
import pytest
import trimesh

from vggt3d.viewer.page import export_html, page_data
from vggt3d.viewer.scene import SceneError, load_scene
from viewer_scenes import (H, K, PLANE_D, PLANE_N, S, W, camera_centres, make_reconstruction, track_points,
                           tree_digest)


def test_vggt3d_output_points_cameras_and_tracks(output_dir):
    before = tree_digest(output_dir)
    scene = load_scene(output_dir)
    assert scene.kind == "vggt3d" and len(scene.frames) == S
    assert list(scene.point_sets) == ["depth", "points.ply"]
    depth = scene.point_sets["depth"]
    assert len(depth) == S * H * W  # every pixel: under the default budget
    assert np.abs(depth.points @ PLANE_N - PLANE_D).max() < 1e-4  # unprojected onto the true plane
    assert depth.confidence.min() == pytest.approx(1.0) and depth.confidence.max() == pytest.approx(10.0)
    assert np.array_equal(np.bincount(depth.frame), np.full(S, H * W))
    first = make_reconstruction().model_colors[0].reshape(-1, 3)
    assert np.array_equal(depth.colors[depth.frame == 0], first)  # colours read from images/
    for f, c in zip(scene.frames, camera_centres()):
        assert np.allclose(f.world_from_cam[:3, 3], c) and np.allclose(f.K, K)
        assert f.image_path is not None and f.thumbnail(32).shape == (24, 32, 3)
    lifted = scene.tracks.points  # [S, 5, 3]
    truth = track_points()
    seen = np.isfinite(lifted).all(-1)
    assert seen[0].all() and seen.sum() > S  # frame 0 sees all; later frames lose tracks that leave the image
    assert np.abs(lifted[seen] - np.broadcast_to(truth, lifted.shape)[seen]).max() < 0.02
    assert len(scene.tracks.segments()) > 0
    assert tree_digest(output_dir) == before  # read only


def test_budget_strides_the_depth_maps(output_dir):
    scene = load_scene(output_dir, max_points=1000)
    assert 0 < len(scene.point_sets["depth"]) <= 1000 * 1.3


def test_pointmap_run_names_the_ply_pointmap(tmp_path):
    make_reconstruction(points_from="pointmap").save(tmp_path / "out", formats="cameras,ply,depth,images")
    assert list(load_scene(tmp_path / "out").point_sets) == ["depth", "pointmap"]


def test_colmap_model_agrees_with_cameras_json(output_dir):
    for path in (output_dir / "colmap", output_dir / "colmap" / "sparse" / "0"):
        scene = load_scene(path)
        assert scene.kind == "colmap" and len(scene.frames) == S
        for f, c in zip(scene.frames, camera_centres()):
            assert np.allclose(f.world_from_cam[:3, 3], c, atol=1e-6)
            assert np.allclose(f.K, K, atol=1e-9)  # COLMAP's half-pixel offset removed
            assert f.image_path is not None
        colmap = scene.point_sets["colmap"]
        assert len(colmap) == S * H * W and colmap.confidence is not None
    rec = pycolmap.Reconstruction(str(output_dir / "colmap" / "sparse" / "0"))
    assert rec.num_points3D() == S * H * W


def test_ply_file(output_dir, tmp_path):
    scene = load_scene(output_dir / "points.ply")
    assert scene.kind == "ply" and not scene.frames
    assert np.abs(scene.point_sets["ply"].points @ PLANE_N - PLANE_D).max() < 1e-4
    mesh = tmp_path / "mesh.ply"
    trimesh.creation.box().export(mesh)
    assert len(load_scene(mesh).point_sets["ply"]) == 8


@pytest.mark.parametrize("make, words", [
    (lambda d: None, "not a vggt3d output folder"),
    (lambda d: (d / "notes.txt").write_text("x"), "not a vggt3d output folder"),
])
def test_not_a_scene(tmp_path, make, words):
    make(tmp_path)
    with pytest.raises(SceneError, match=words):
        load_scene(tmp_path)
    with pytest.raises(SceneError, match="does not exist"):
        load_scene(tmp_path / "missing")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(SceneError, match="not a .ply"):
        load_scene(tmp_path / "a.txt")
    (tmp_path / "bad.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 3\nend_header\n1 2\n")
    with pytest.raises(SceneError, match="bad.ply"):
        load_scene(tmp_path / "bad.ply")


def _copy(output_dir, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(output_dir, out, symlinks=True)
    return out


def test_hostile_output_folders(output_dir, tmp_path):
    out = _copy(output_dir, tmp_path)
    cams = json.loads((out / "cameras.json").read_text())
    cams["frames"][1]["image"] = "../../../etc/passwd"
    (out / "cameras.json").write_text(json.dumps(cams))
    with pytest.raises(SceneError, match="outside"):
        load_scene(out)
    cams["frames"][1]["image"] = "images/frame1.png"
    cams["frames"][2]["K"] = [[1, 0], [0, 1]]
    (out / "cameras.json").write_text(json.dumps(cams))
    with pytest.raises(SceneError, match="frame 2 K"):
        load_scene(out)
    shutil.rmtree(out)
    out = _copy(output_dir, tmp_path)
    np.save(out / "depth" / "frame1.npy", np.zeros((5, 5), np.float32))
    with pytest.raises(SceneError, match="frame1.npy.*shape"):
        load_scene(out)
    np.save(out / "depth" / "frame1.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(SceneError, match="frame1.npy"):  # never unpickled
        load_scene(out)
    shutil.rmtree(out)
    out = _copy(output_dir, tmp_path)
    np.savez(out / "tracks.npz", tracks=np.zeros((S + 1, 3, 2)), visibility=np.ones((S + 1, 3)))
    with pytest.raises(SceneError, match="tracks.npz"):
        load_scene(out)


def test_html_page_is_self_contained_and_within_budget(output_dir, tmp_path):
    scene = load_scene(output_dir)
    page = export_html(scene, tmp_path / "scene.html", max_points=5000)
    text = page.read_text()
    for remote in ("http://", "https://", "<script src", "<link "):
        assert remote not in text
    data = page_data(scene, max_points=5000)
    assert data["budget"] == 5000 and data["total_points"] == S * H * W and len(data["frames"]) == S
    import base64

    conf = np.frombuffer(base64.b64decode(data["positions"]), "<f4").reshape(-1, 3)
    assert len(conf) == 5000 and np.abs(conf @ PLANE_N - PLANE_D).max() < 1e-4
    assert data["tracks"] is not None and data["has_confidence"]
    assert [p.name for p in tmp_path.iterdir()] == ["scene.html"]  # no temporary file left
    scene.frames[0].name = "</script><!--<script>alert(1)</script>.png"  # names are data, never markup
    hostile = export_html(scene, tmp_path / "hostile.html", max_points=10).read_text()
    assert hostile.count("<script") == 2 and hostile.count("</script>") == 2
    (tmp_path / "hostile.html").unlink()
    with pytest.raises(SceneError, match="html"):
        export_html(scene, tmp_path / "scene.txt")
    with pytest.raises(SceneError, match="no point set"):
        export_html(scene, tmp_path / "x.html", point_set="nope")
    assert not (tmp_path / "x.html").exists()


def test_scene_from_an_in_memory_reconstruction():
    from vggt3d.viewer.scene import scene_from_reconstruction

    rec = make_reconstruction(points_from="pointmap")
    scene = scene_from_reconstruction(rec)
    assert list(scene.point_sets) == ["depth", "pointmap"] and len(scene.frames) == S
    assert np.abs(scene.point_sets["depth"].points @ PLANE_N - PLANE_D).max() < 1e-4
    lifted, truth = scene.tracks.points, track_points()
    seen = np.isfinite(lifted).all(-1)
    assert seen[0].all() and np.abs(lifted[seen] - np.broadcast_to(truth, lifted.shape)[seen]).max() < 0.02


def test_colmap_text_project_and_bare_ply_from_other_tools(output_dir, tmp_path):
    rec = pycolmap.Reconstruction(str(output_dir / "colmap" / "sparse" / "0"))
    model = tmp_path / "project" / "sparse" / "0"
    model.mkdir(parents=True)
    rec.write_text(str(model))  # cameras.txt, images.txt, points3D.txt
    shutil.copytree(output_dir / "images", tmp_path / "project" / "images")
    scene = load_scene(tmp_path / "project")
    assert scene.kind == "colmap" and len(scene.frames) == S
    assert all(f.image_path is not None and f.image_path.parent == tmp_path / "project" / "images"
               for f in scene.frames)
    assert np.abs(scene.point_sets["colmap"].points @ PLANE_N - PLANE_D).max() < 1e-3
    ply = tmp_path / "xyz.ply"
    ply.write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                   "property float z\nend_header\n0 0 1\n1 0 1\n0 1 nan\n")
    points = load_scene(ply).point_sets["ply"]
    assert len(points) == 2 and points.colors.shape == (2, 3)  # non-finite vertex dropped, grey colour
