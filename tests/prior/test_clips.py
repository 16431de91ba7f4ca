"""Clip discovery and loading for the feature cache and the score, and cache file names."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vggt3d.prior.cache import clip_id
from vggt3d.prior.clips import ClipError, discover_clips, frames_to_tensor, load_clip


def images(folder, names, size=(50, 40)):
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        Image.new("RGB", size, (10 * k, 0, 0)).save(folder / name)
    return folder


def test_discovery(tmp_path):
    images(tmp_path / "clips" / "a", ["0.png", "1.png"])
    images(tmp_path / "clips" / "b10", ["0.png"])
    images(tmp_path / "clips" / "b2", ["0.png"])
    (tmp_path / "clips" / "empty").mkdir()
    (tmp_path / "clips" / "v.mp4").write_bytes(b"")
    (tmp_path / "clips" / ".hidden.mp4").write_bytes(b"")
    found = discover_clips([tmp_path / "clips"])
    assert [p.split("/")[-1] for p in found] == ["a", "b2", "b10", "v.mp4"]
    lst = tmp_path / "list.txt"
    lst.write_text("# clips\nclips/a\n\nclips/v.mp4\nclips/a\n")
    assert discover_clips([lst, tmp_path / "clips" / "b2"]) == [
        str(tmp_path / "clips" / "a"), str(tmp_path / "clips" / "v.mp4"), str(tmp_path / "clips" / "b2")]
    with pytest.raises(ClipError, match="does not exist"):
        discover_clips([tmp_path / "missing"])
    with pytest.raises(ClipError, match="neither a video"):
        discover_clips([tmp_path / "clips" / "a" / "0.png"])
    with pytest.raises(ClipError, match="holds no images"):
        discover_clips([tmp_path / "clips" / "empty"])


def test_load_image_folder_in_natural_order_with_sampling(tmp_path):
    folder = images(tmp_path / "shot", [f"img{k}.png" for k in (1, 2, 10, 3, 4)])
    clip = load_clip(folder, stride=2, max_frames=2)
    assert clip.names == ["img1.png", "img3.png"] and clip.indices == [0, 2]
    assert clip.frames.shape == (2, 3, 40, 50) and np.isnan(clip.timestamps).all()
    assert float(clip.frames[1, 0, 0, 0]) == pytest.approx(30 / 255), "img3 is the 4th image written"


def test_frames_of_other_sizes_are_resized_to_the_first():
    frames = frames_to_tensor([Image.new("RGB", (50, 40)), Image.new("RGB", (100, 80))])
    assert frames.shape == (2, 3, 40, 50)


def test_clip_ids_are_stable_and_distinct(tmp_path):
    a, b = tmp_path / "x" / "clip.mp4", tmp_path / "y" / "clip.mp4"
    assert clip_id(a) == clip_id(a) and clip_id(a) != clip_id(b)
    assert clip_id(a).startswith("clip-") and clip_id(tmp_path / "we ird name!").startswith("we_ird_name")
