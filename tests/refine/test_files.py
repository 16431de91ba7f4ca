"""Known intrinsics and poses files: every accepted format, and one-line errors for bad ones."""

import json

import numpy as np
import pycolmap
import pytest

from vggt3d.refine.files import KnownCamerasError, read_intrinsics, read_poses

NAMES = ["a.jpg", "b.jpg", "c.jpg"]
SIZES = np.array([[640, 480]] * 3)
K = np.array([[500.0, 0, 319.5], [0, 510.0, 239.5], [0, 0, 1]])


def _poses(seed=0):
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    out = np.tile(np.eye(4), (3, 1, 1))
    out[:, :3, :3] = Rotation.random(3, random_state=seed).as_matrix()
    out[:, :3, 3] = rng.normal(size=(3, 3))
    return out


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_intrinsics_json_forms(tmp_path):
    shared = read_intrinsics(_write(tmp_path, "k.json", {"K": K.tolist()}), NAMES, SIZES)
    assert shared.shape == (3, 3, 3) and np.allclose(shared, K)
    fxy = read_intrinsics(_write(tmp_path, "f.json", {"fx": 500, "fy": 510, "cx": 319.5, "cy": 239.5,
                                                      "width": 640, "height": 480}), NAMES, SIZES)
    assert np.allclose(fxy, K)
    per = {n: (K * [[1 + i, 1, 1], [1, 1 + i, 1], [1, 1, 1]]).tolist() for i, n in enumerate(NAMES)}
    per_image = read_intrinsics(_write(tmp_path, "p.json", per), NAMES, SIZES)
    assert per_image[2, 0, 0] == 1500.0
    ours = {"frames": [{"image": f"images/{n}", "K": K.tolist(), "width": 640, "height": 480} for n in NAMES]}
    assert np.allclose(read_intrinsics(_write(tmp_path, "cameras.json", ours), NAMES, SIZES), K)


def test_intrinsics_colmap(tmp_path):
    (tmp_path / "cameras.txt").write_text("# one camera\n1 PINHOLE 640 480 500 510 320 240\n")
    K_colmap = read_intrinsics(tmp_path / "cameras.txt", NAMES, SIZES)
    assert np.allclose(K_colmap, K)  # COLMAP's principal point is 0.5 larger
    model = pycolmap.Reconstruction()
    for i, n in enumerate(NAMES):
        model.add_camera_with_trivial_rig(pycolmap.Camera(model="SIMPLE_PINHOLE", width=640, height=480,
                                                          params=[400 + i, 320, 240], camera_id=i + 1))
        model.add_image_with_trivial_frame(pycolmap.Image(name=n, camera_id=i + 1, image_id=i + 1),
                                           pycolmap.Rigid3d(_poses()[i, :3]))
    folder = tmp_path / "sparse"
    folder.mkdir()
    model.write(str(folder))
    K_model = read_intrinsics(folder, NAMES, SIZES)
    assert list(K_model[:, 0, 0]) == [400, 401, 402] and np.allclose(K_model[:, 0, 2], 319.5)
    assert np.allclose(read_poses(folder / "images.bin", NAMES), _poses(), atol=1e-9)


@pytest.mark.parametrize("data, message", [
    ({"a.jpg": K.tolist(), "b.jpg": K.tolist()}, "no intrinsics for frame.*c.jpg"),
    ({"a.jpg": K.tolist(), "b.jpg": K.tolist(), "c.jpg": K.tolist(), "zzz.png": K.tolist()}, "unknown image.*zzz.png"),
    ({"K": [[0, 0, 319.5], [0, 510, 239.5], [0, 0, 1]]}, "non-positive focal"),
    ({"fx": float("nan"), "fy": 1, "cx": 1, "cy": 1}, "NaN"),
    ({"K": [[1, 2], [3, 4]]}, "3x3"),
    ({"fx": 500, "fy": 500, "cx": 320, "cy": 240, "width": 1280, "height": 960}, "original resolution"),
])
def test_bad_intrinsics_files(tmp_path, data, message):
    path = _write(tmp_path, "bad.json", data)
    with pytest.raises(KnownCamerasError, match=message) as info:
        read_intrinsics(path, NAMES, SIZES)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_distorted_colmap_camera_is_refused(tmp_path):
    (tmp_path / "cameras.txt").write_text("1 SIMPLE_RADIAL 640 480 500 320 240 0.1\n")
    with pytest.raises(KnownCamerasError, match="distortion"):
        read_intrinsics(tmp_path / "cameras.txt", NAMES, SIZES)


def test_poses_ours_and_nerfstudio(tmp_path):
    poses = _poses()
    ours = {"frames": [{"image": f"images/{n}", "cam_from_world": p.tolist()} for n, p in zip(NAMES, poses)]}
    assert np.allclose(read_poses(_write(tmp_path, "cameras.json", ours), NAMES), poses)
    gl = np.diag([1.0, -1, -1, 1])
    ns = {"frames": [{"file_path": f"images/{n}", "transform_matrix": (np.linalg.inv(p) @ gl).tolist()}
                     for n, p in zip(NAMES, poses)]}
    assert np.allclose(read_poses(_write(tmp_path, "transforms.json", ns), NAMES), poses, atol=1e-9)


@pytest.mark.parametrize("change, message", [
    (lambda p: p.__setitem__((1, 0, 0), 2.0), "not orthonormal"),
    (lambda p: p.__setitem__((2, 0, 3), float("nan")), "NaN"),
])
def test_bad_poses(tmp_path, change, message):
    poses = _poses()
    change(poses)
    data = {"frames": [{"image": n, "cam_from_world": p.tolist()} for n, p in zip(NAMES, poses)]}
    path = tmp_path / "cameras.json"
    path.write_text(json.dumps(data))
    with pytest.raises(KnownCamerasError, match=message):
        read_poses(path, NAMES)
    good = [{"image": n, "cam_from_world": p.tolist()} for n, p in zip(NAMES, _poses())]
    with pytest.raises(KnownCamerasError, match="no pose for frame.*c.jpg"):
        read_poses(_write(tmp_path, "two.json", {"frames": good[:2]}), NAMES)
    with pytest.raises(KnownCamerasError, match="not found"):
        read_poses(tmp_path / "missing.json", NAMES)
