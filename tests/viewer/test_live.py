"""The live viewer's controls on the server side (no browser): point sets, confidence, frames, tracks, port."""

from __future__ import annotations

import socket

import numpy as np
import pytest

pytest.importorskip("viser", reason='pip install "vggt3d[view]"')

from vggt3d.viewer.live import LiveViewer, PortInUseError, ViewerConfig, check_port  # noqa: E402
from vggt3d.viewer.scene import load_scene  # noqa: E402
from viewer_scenes import H, S, W  # noqa: E402


@pytest.fixture(scope="module")
def viewer(output_dir):
    v = LiveViewer(load_scene(output_dir), ViewerConfig(port=0, conf_percentile=0))
    yield v
    v.close()


def test_controls_select_points(viewer):
    assert viewer.url.startswith("http://127.0.0.1:") and viewer.shown_points == S * H * W
    assert viewer.status.content.startswith(f"showing {S * H * W:,} of {S * H * W:,} points")
    viewer.conf.value = 50
    assert abs(viewer.shown_points - S * H * W / 2) < S * H * 2  # confidence is uniform across columns
    viewer.conf.value = 0
    viewer.frame_range.value = (1, 2)
    assert viewer.shown_points == 2 * H * W
    assert [f.visible for f in viewer.frustums] == [False, True, True, False]
    viewer.frame_boxes[1].value = False
    assert viewer.shown_points == H * W and not viewer.frustums[1].visible
    viewer.frame_boxes[1].value = True
    viewer.frame_range.value = (0, S - 1)
    viewer.show_cameras.value = False
    assert not any(f.visible for f in viewer.frustums)
    viewer.show_cameras.value = True
    viewer.set_choice.value = "points.ply"  # no confidence stored: the slider is disabled
    assert viewer.shown_points == len(viewer.scene.point_sets["points.ply"]) and viewer.conf.disabled
    viewer.set_choice.value = "depth"
    assert not viewer.conf.disabled and viewer.shown_points == S * H * W


def test_frustums_sit_at_the_cameras(viewer):
    for frame, handle in zip(viewer.scene.frames, viewer.frustums):
        assert np.allclose(handle.position, frame.world_from_cam[:3, 3], atol=1e-6)
        w, x, y, z = handle.wxyz  # OpenCV camera axes, as viser's frustums
        R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                      [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                      [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
        assert np.allclose(R, frame.world_from_cam[:3, :3], atol=1e-6)


def test_port_in_use_is_one_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is in use"):
            check_port("127.0.0.1", port)
    with pytest.raises(ValueError, match="port"):
        ViewerConfig(port=70000)
    with pytest.raises(ValueError, match="conf_percentile"):
        ViewerConfig(conf_percentile=100)
