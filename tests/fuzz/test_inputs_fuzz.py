"""Hostile image and video inputs: FIFOs, bombs, corrupt bytes, link loops, bad sampling. Each fails fast and clean."""

from __future__ import annotations

import io
import os
import random

import numpy as np
import pytest
from PIL import Image

from fuzzutils import deadline, png_header_only, write_image
from vggt3d.io.images import ImageLoadError, open_image
from vggt3d.io.inputs import InputError, discover_inputs, load_frames
from vggt3d.io.video import VideoReadError, check_sampling, read_video


def test_fifo_as_image_or_video_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "frame.png"
    os.mkfifo(fifo)
    video = tmp_path / "clip.mp4"
    os.mkfifo(video)
    ok = write_image(tmp_path / "ok.png")
    with deadline(10):
        with pytest.raises(InputError, match="not a regular file"):
            discover_inputs(str(fifo))
        with pytest.raises(InputError, match="not a regular file"):
            discover_inputs([ok, fifo])
        with pytest.raises(ImageLoadError, match="not a regular file"):
            open_image(fifo)
        with pytest.raises(VideoReadError, match="not a regular file"):
            read_video(video)
        list_file = tmp_path / "list.txt"
        list_file.write_text("ok.png\nframe.png\n")
        with pytest.raises(InputError, match="not a regular file"):
            discover_inputs(str(list_file))


def test_decompression_bomb_is_one_clear_error_and_skippable(tmp_path):
    folder = tmp_path / "shots"
    write_image(folder / "a.png")
    png_header_only(folder / "b.png", 20000, 20000)
    with deadline(20):
        with pytest.raises(ImageLoadError, match="too large to decode safely"):
            open_image(folder / "b.png")
        with pytest.raises(ImageLoadError, match="--skip-bad"):
            load_frames(str(folder), size=56)
        frames = load_frames(str(folder), size=56, skip_bad=True)
    assert frames.names == ["a.png"] and [os.path.basename(p) for p, _ in frames.bad] == ["b.png"]


def _encoded(fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF"])
def test_corrupt_and_truncated_images_raise_only_image_load_error(tmp_path, fmt):
    """Truncations, flipped bytes and random noise: decoded, or ImageLoadError naming the file; nothing else."""
    data = _encoded(fmt, 0)
    rng = random.Random(fmt)
    cases = [data[:n] for n in sorted({0, 1, 7, 8, 16, 33, len(data) // 3, len(data) // 2, len(data) - 1})]
    for _ in range(8):
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 12)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        cases.append(bytes(flipped))
    cases.append(bytes(rng.randrange(256) for _ in range(300)))
    path = tmp_path / f"image.{fmt.lower()}"
    for case in cases:
        path.write_bytes(case)
        with deadline(10):
            try:
                image = open_image(path)
            except ImageLoadError as exc:
                assert str(path) in str(exc)
                continue
        assert image.mode in ("RGB", "F") and image.width > 0


def test_glob_through_a_link_loop_matches_each_image_once_and_stays_inside(tmp_path):
    outside = tmp_path / "outside"
    for i in range(3):
        write_image(outside / f"x{i}.png", seed=i)
    folder = tmp_path / "shots"
    write_image(folder / "a.png", seed=1)
    write_image(folder / "sub" / "b.png", seed=2)
    (folder / "loop").symlink_to(folder)  # shots/loop -> shots
    (folder / "sub" / "up").symlink_to(folder)  # shots/sub/up -> shots
    (folder / "out").symlink_to(outside)  # shots/out -> a folder outside
    (folder / "c.png").symlink_to(folder / "a.png")  # a link to a file is an ordinary input
    with deadline(20):
        found = discover_inputs(str(folder / "**" / "*.png"))
        assert sorted(p.relative_to(folder).as_posix() for p in found.paths) == ["a.png", "c.png", "sub/b.png"]
        assert len(discover_inputs(str(folder / "**")).paths) == 3
        assert sorted(p.name for p in discover_inputs(str(folder / "*.png")).paths) == ["a.png", "c.png"]
        assert [p.name for p in discover_inputs(str(folder / "*" / "*.png")).paths] == ["b.png"]


def test_glob_hidden_names_and_relative_patterns(tmp_path, monkeypatch):
    write_image(tmp_path / "d" / "a.png")
    write_image(tmp_path / "d" / ".hidden.png")
    write_image(tmp_path / "d" / ".cache" / "b.png")
    monkeypatch.chdir(tmp_path)
    assert [str(p) for p in discover_inputs("d/**/*.png").paths] == ["d/a.png"]
    assert [str(p) for p in discover_inputs("d/.*.png").paths] == ["d/.hidden.png"]
    with pytest.raises(InputError, match="matches nothing"):
        discover_inputs("nothing/**/*.jpg")


@pytest.mark.parametrize("fps,stride,max_frames", [
    (float("inf"), 1, None), (float("nan"), 1, None), (-1.0, 1, None), (0.0, 1, None),
    (None, -1, None), (None, 0, None), (None, 1.5, None), (None, 1, 0), (None, 1, -2), (None, True, None),
])
def test_sampling_is_validated_before_decoding(tmp_path, fps, stride, max_frames):
    folder = tmp_path / "shots"
    write_image(folder / "a.png")
    write_image(folder / "b.png", seed=3)
    with pytest.raises(ValueError):
        check_sampling(fps, stride, max_frames)
    with deadline(10), pytest.raises(ValueError):
        load_frames(str(folder), size=56, fps=fps, stride=stride, max_frames=max_frames)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 64)
    with deadline(10), pytest.raises(ValueError):  # before the (corrupt) file is even opened
        read_video(video, fps=fps, stride=stride, max_frames=max_frames)


def test_video_sampling_with_real_video(tmp_path):
    from testutils import encode_video

    frames = [np.full((32, 32, 3), 20 * i, np.uint8) for i in range(6)]
    path = tmp_path / "clip.mp4"
    encode_video(path, frames, fps=6)
    with deadline(20):
        video = read_video(path, fps=1e6)  # a huge (finite) rate keeps every frame, and ends
        assert len(video) == 6
        assert read_video(path, stride=2).indices == [0, 2, 4]
        assert read_video(path, max_frames=1).indices == [0]


@pytest.mark.parametrize("fps,stride,max_frames", [(None, -1, None), (None, 0, None), (None, 1, 0),
                                                   (float("inf"), 1, None), (float("nan"), 1, None)])
def test_clip_sampling_is_validated(tmp_path, fps, stride, max_frames):
    from vggt3d.prior.clips import ClipError, load_clip

    folder = tmp_path / "clip"
    for i in range(3):
        write_image(folder / f"{i}.png", seed=i)
    with deadline(10), pytest.raises(ClipError, match="must be"):
        load_clip(folder, fps=fps, stride=stride, max_frames=max_frames)


def test_clip_with_a_bomb_or_16_bit_frame(tmp_path):
    from vggt3d.prior.clips import ClipError, load_clip

    folder = tmp_path / "clip"
    write_image(folder / "0.png")
    Image.fromarray(np.full((30, 40), 65535, np.uint16)).save(folder / "1.png")  # 16-bit white
    clip = load_clip(folder)
    assert clip.frames.shape[0] == 2 and float(clip.frames[1].min()) > 0.99, "16-bit frames keep their values"
    png_header_only(folder / "2.png", 20000, 20000)
    with deadline(20), pytest.raises(ClipError, match="too large"):
        load_clip(folder)
