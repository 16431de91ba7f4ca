"""Scene folders: exact round trip, 16-bit depth, masks, errors, atomic writes, dataset contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from vggt3d.data import SceneFolderDataset, check_sample, read_scene_folder, write_scene_folder
from vggt3d.data.scene_folder import CAMERAS_FILE


@pytest.fixture()
def frames(scene_views):
    scene, views = scene_views
    return {
        "images": [v.image for v in views],
        "cam_from_world": np.stack([v.cam_from_world for v in views]),
        "intrinsics": np.stack([v.intrinsics for v in views]),
        "depths": [v.depth.astype(np.float32) for v in views],
    }


def test_exact_round_trip(tmp_path, frames):
    masks = [d > 2.0 for d in frames["depths"]]
    root = write_scene_folder(tmp_path / "scene", **frames, masks=masks)
    folder = read_scene_folder(root)
    assert len(folder) == 6 and folder.sizes.tolist() == [[48, 64]] * 6
    assert np.array_equal(folder.cam_from_world, frames["cam_from_world"])
    assert np.array_equal(folder.intrinsics, frames["intrinsics"])
    for i in range(6):
        assert np.array_equal(folder.load_image(i), frames["images"][i])
        assert np.array_equal(folder.load_depth(i), frames["depths"][i])
        assert np.array_equal(folder.load_mask(i), masks[i])
    document = json.loads((root / CAMERAS_FILE).read_text())
    assert "OpenCV" in document["conventions"]["cam_from_world"] and document["depth_format"] == "npy"
    assert sorted(p.name for p in root.iterdir()) == ["cameras.json", "depths", "images", "masks"]
    assert not list(root.rglob("*.tmp"))  # temporary files were renamed


def test_tensor_inputs_and_pil_images(tmp_path, frames):
    images = [Image.fromarray(im) for im in frames["images"]]
    names = [f"f{i}.png" for i in range(6)]
    root = write_scene_folder(tmp_path / "s", images, torch.from_numpy(frames["cam_from_world"]).float(),
                              torch.from_numpy(frames["intrinsics"]).float(), image_names=names)
    folder = read_scene_folder(root)
    assert folder.image_paths[2].name == "f2.png" and folder.depth_paths == [None] * 6
    assert np.array_equal(folder.cam_from_world, torch.from_numpy(frames["cam_from_world"]).float().double().numpy())
    assert folder.load_depth(0) is None


def test_png16_depth(tmp_path, frames):
    root = write_scene_folder(tmp_path / "s", **frames, depth_format="png16")
    folder = read_scene_folder(root)
    assert folder.depth_format == "png16" and folder.depth_scale > 0
    for i in range(6):
        depth = folder.load_depth(i)
        assert np.abs(depth - frames["depths"][i]).max() <= folder.depth_scale / 2 + 1e-6
        assert np.array_equal(depth == 0, frames["depths"][i] == 0)


def test_dataset_contract(tmp_path, frames):
    write_scene_folder(tmp_path / "a", **frames)
    write_scene_folder(tmp_path / "b", frames["images"][:3], frames["cam_from_world"][:3], frames["intrinsics"][:3],
                       depths=frames["depths"][:3])
    ds = SceneFolderDataset(tmp_path, num_tracks=8)
    assert len(ds) == 2 and ds.scene_name(1) == "b"
    sample = ds[0]
    check_sample(sample, "scene folder")
    assert sample["images"].shape == (6, 3, 48, 64) and sample["tracks"].shape == (6, 8, 2)
    assert np.array_equal(sample["images"][3].permute(1, 2, 0).mul(255).round().byte().numpy(), frames["images"][3])
    resized = SceneFolderDataset(tmp_path / "b", num_frames=2, image_size=(28, 42))[0]
    assert resized["images"].shape == (2, 3, 28, 42) and resized["frame_ids"] == [0, 1]


def test_refuses_to_overwrite(tmp_path, frames):
    write_scene_folder(tmp_path / "s", **frames)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_scene_folder(tmp_path / "s", **frames)
    write_scene_folder(tmp_path / "s", **frames, overwrite=True)


@pytest.mark.parametrize("change, message", [
    (dict(cam_from_world=np.zeros((5, 3, 4))), "cam_from_world"),
    (dict(intrinsics=np.zeros((6, 2, 3))), "intrinsics"),
    (dict(depths=[np.zeros((4, 4), np.float32)] * 6), r"depths\[0\]"),
    (dict(images=[np.zeros((4, 4), np.uint8)] * 6), r"images\[0\]"),
    (dict(image_names=["a.png"] * 6), "unique"),
    (dict(image_names=["../x.png"] + [f"{i}.png" for i in range(5)]), "plain file names"),
    (dict(depth_format="exr"), "depth_format"),
])
def test_writer_errors_name_the_argument(tmp_path, frames, change, message):
    with pytest.raises(ValueError, match=message):
        write_scene_folder(tmp_path / "s", **{**frames, **change})


def test_reader_errors(tmp_path, frames):
    with pytest.raises(FileNotFoundError, match="cameras.json"):
        read_scene_folder(tmp_path)
    root = write_scene_folder(tmp_path / "s", **frames)
    (root / "images" / "000002.png").unlink()
    with pytest.raises(FileNotFoundError, match="000002.png"):
        read_scene_folder(root)
    document = json.loads((root / CAMERAS_FILE).read_text())
    del document["frames"][1]["K"]
    (root / CAMERAS_FILE).write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"frames\[1\]"):
        read_scene_folder(root)
    with pytest.raises(FileNotFoundError):
        SceneFolderDataset(tmp_path / "missing")
