"""The PyAV video reader on videos the test writes itself."""

from __future__ import annotations

import numpy as np
import pytest

from vggt3d.io.video import VideoReadError, is_video, read_video
from testutils import encode_video


def write_video(path, n=12, fps=6, size=(48, 32)):
    """A video whose frame k has a uniform brightness of 20*k."""
    return encode_video(path, [np.full((size[1], size[0], 3), 20 * k % 256, np.uint8) for k in range(n)], fps)


def test_read_all_frames(tmp_path):
    v = read_video(write_video(tmp_path / "a.mp4"))
    assert len(v) == 12 and v.indices == list(range(12))
    assert v.frames[0].size == (48, 32) and v.fps == pytest.approx(6)
    np.testing.assert_allclose(v.timestamps, np.arange(12) / 6, atol=1e-6)
    means = v.to_numpy().reshape(12, -1).mean(1)
    np.testing.assert_allclose(means, 20 * np.arange(12), atol=4)


def test_sampling(tmp_path):
    p = write_video(tmp_path / "a.mp4")
    assert read_video(p, stride=3).indices == [0, 3, 6, 9]
    assert read_video(p, fps=2).indices == [0, 3, 6, 9]
    assert read_video(p, fps=2, stride=2).indices == [0, 6]
    assert read_video(p, max_frames=5).indices == [0, 1, 2, 3, 4]


def test_bad_videos(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        read_video(tmp_path / "nope.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    with pytest.raises(VideoReadError, match="junk.mp4"):
        read_video(tmp_path / "junk.mp4")
    with pytest.raises(ValueError, match="stride"):
        read_video(write_video(tmp_path / "a.mp4"), stride=0)
    assert is_video("x.MP4") and not is_video("x.png")
