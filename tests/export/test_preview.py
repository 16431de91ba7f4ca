"""preview.png: written by every default export, drawn headless, showing points, frustums and the frame strip."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

from vggt3d.export.preview import Overview, _view_axes, frustum_lines, render_comparison, render_overview

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "viewer"))
from viewer_scenes import make_reconstruction  # noqa: E402

FIRST_CAMERA = np.array(matplotlib.colormaps["plasma"](0.0)[:3]) * 255


def _count(png: np.ndarray, rgb, tol: float = 30.0) -> int:
    return int((np.abs(png[..., :3].astype(float) - np.asarray(rgb, float)).max(-1) < tol).sum())


def test_every_default_output_has_a_preview(tmp_path):
    rec = make_reconstruction()
    written = rec.save(tmp_path / "out")
    assert written["preview"] == [tmp_path / "out" / "preview.png"]
    png = np.asarray(Image.open(tmp_path / "out" / "preview.png").convert("RGB"))
    assert png.shape[0] >= 400 and png.shape[1] >= 800
    top = png[: png.shape[0] // 2]
    assert _count(top, FIRST_CAMERA) > 20  # the first camera's frustum
    checker = rec.model_colors[0].reshape(-1, 3)
    assert _count(top, checker[0], 12) + _count(top, checker[12], 12) > 500  # the plane's colours
    assert not list(tmp_path.glob(".*tmp*"))


def test_overview_points_and_frustums_by_pixels(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.uniform([-1, -1, 2], [1, 1, 3], (4000, 3))
    red = np.tile(np.array([[255, 0, 0]], np.uint8), (4000, 1))
    cams = np.tile(np.eye(4), (2, 1, 1))
    cams[1, 0, 3] = -0.5
    K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    sizes = np.array([[64, 48], [64, 48]])
    both = render_overview(Overview(points, red, cams, np.stack([K, K]), sizes), tmp_path / "a.png")
    no_points = render_overview(Overview(points[:0], red[:0], cams, np.stack([K, K]), sizes), tmp_path / "b.png")
    a, b = (np.asarray(Image.open(p).convert("RGB")) for p in (both, no_points))
    assert _count(a, (255, 0, 0)) > 2000 and _count(b, (255, 0, 0)) == 0
    assert _count(a, FIRST_CAMERA) > 20 and _count(b, FIRST_CAMERA) > 20
    depth = [np.full((48, 64), 2.0), np.full((48, 64), 3.0)]
    pred = Overview(points, red, cams, np.stack([K, K]), sizes, depths=depth)
    gt = Overview(points, red, cams, np.stack([K, K]), sizes, images=[np.zeros((48, 64, 3), np.uint8)] * 2,
                  depths=depth)
    c = np.asarray(Image.open(render_comparison(pred, gt, tmp_path / "c.png")).convert("RGB"))
    assert _count(c, (255, 0, 0)) > 2 * _count(a, (255, 0, 0)) * 0.8  # four 3D panels instead of two


def test_view_axes_and_frustum_geometry():
    for azimuth, elevation in ((30.0, 35.0), (0.0, 89.0), (-120.0, 10.0)):
        R = _view_axes(azimuth, elevation)
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(R), 1.0)
        assert R[1, 1] > 0  # screen down has a component along world +y (down, OpenCV)
    top = _view_axes(0.0, 89.0)
    assert top[1, 2] < -0.9  # looking down: world +z (camera 0's forward) points up the screen
    K = np.array([[50.0, 0, 31.5], [0, 40.0, 23.5], [0, 0, 1]])
    cam = np.eye(4)
    cam[:3, 3] = [0.2, -0.1, 0.5]
    segs = frustum_lines(cam, K, (64, 48), 2.0)
    corners = segs[:4, 1] @ cam[:3, :3].T + cam[:3, 3]  # back into camera coordinates
    uv = corners @ K.T
    assert np.allclose(uv[:, :2] / uv[:, 2:], [[-0.5, -0.5], [63.5, -0.5], [63.5, 47.5], [-0.5, 47.5]])
    assert np.allclose(corners[:, 2], 2.0)


def test_overview_pair_of_a_perfect_prediction_matches_the_truth(tmp_path):
    import torch

    from vggt3d.export.preview import overview_pair

    rec = make_reconstruction()
    S, H, W = rec.depth.shape
    world = rec.points.reshape(S, H, W, 3)  # every pixel, in frame order (see viewer_scenes)
    mask = np.ones((S, H, W), bool)
    mask[:, :5] = False
    sample = {"images": torch.from_numpy(rec.model_colors).permute(0, 3, 1, 2).float() / 255,
              "cam_from_world": torch.from_numpy(rec.cam_from_world[:, :3]),
              "intrinsics": torch.from_numpy(rec.intrinsics),
              "depths": torch.from_numpy(rec.depth), "world_points": torch.from_numpy(world),
              "point_masks": torch.from_numpy(mask)}
    pred = {"cam_from_world": sample["cam_from_world"], "intrinsics": sample["intrinsics"], "depth": sample["depths"]}
    pred_view, gt_view = overview_pair(pred, sample, max_points=2000)
    assert len(gt_view.points) == 2000 and np.allclose(pred_view.points, gt_view.points, atol=1e-4)
    assert np.array_equal(pred_view.colors, gt_view.colors) and gt_view.cam_from_world.shape == (S, 4, 4)
    assert all((d[:5] == 0).all() for d in gt_view.depths)  # invalid truth left blank
    assert render_comparison(pred_view, gt_view, tmp_path / "o.png").stat().st_size > 10000
