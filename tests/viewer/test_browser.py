"""The live viewer and the static page in a real headless Chromium: pixels, the confidence slider, console errors.

Needs Debian's ``chromium`` (``apt-get install -y chromium``; another binary via
``VGGT3D_CHROMIUM``) and the ``playwright`` package (it drives the installed
browser; no browser download). Screenshots stay in pytest's tmp dir.
"""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
from PIL import Image

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (in vggt3d[test])")
CHROMIUM = os.environ.get("VGGT3D_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install -y chromium "
                                                         "(or set VGGT3D_CHROMIUM to a Chromium binary)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 960, "height": 640})
        yield context
        context.close()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    page.console_errors = []
    page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))
    yield page
    page.close()


def shot(page, path) -> np.ndarray:
    page.screenshot(path=str(path))
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)


def drawn(pixels: np.ndarray, background) -> int:
    """Pixels that differ from the background colour."""
    return int((np.abs(pixels - np.asarray(background, np.int16)).max(-1) > 24).sum())


def changed(a: np.ndarray, b: np.ndarray) -> int:
    return int((np.abs(a - b).max(-1) > 24).sum())


def test_static_page(output_dir, tmp_path, page):
    from vggt3d.viewer.page import BACKGROUND, export_html
    from vggt3d.viewer.scene import load_scene

    html = export_html(load_scene(output_dir), tmp_path / "scene.html", max_points=20000)
    page.goto(html.as_uri())
    page.wait_for_function("window.vggt3dView && window.vggt3dView.ready", timeout=20000)
    shot(page, tmp_path / "page.png")  # with the panel, as a user sees it
    page.eval_on_selector("#panel", "e => e.style.display = 'none'")  # pixel statistics of the scene only
    page.evaluate("window.vggt3dView.reset()")
    page.wait_for_function("window.vggt3dView.renders > 1")

    def set_input(selector, script):
        renders = page.evaluate("window.vggt3dView.renders")
        page.eval_on_selector(selector, script)
        page.wait_for_function(f"window.vggt3dView.renders > {renders}")

    full = shot(page, tmp_path / "page_all.png")
    n_all = page.evaluate("window.vggt3dView.drawnPoints")
    assert n_all > 15000 and drawn(full, BACKGROUND) > 20000  # the plane covers much of the view
    set_input("#showCameras", "e => { e.checked = false; e.dispatchEvent(new Event('input')); }")
    no_cameras = shot(page, tmp_path / "page_no_cameras.png")
    assert changed(full, no_cameras) > 300  # frustum lines were drawn
    set_input("#last", "e => { e.value = 0; e.dispatchEvent(new Event('input')); }")  # frame range 0..0
    assert 0.15 * n_all < page.evaluate("window.vggt3dView.drawnPoints") < 0.35 * n_all  # one frame of four
    set_input("#last", "e => { e.value = 3; e.dispatchEvent(new Event('input')); }")
    assert page.evaluate("window.vggt3dView.drawnPoints") == n_all
    set_input("#conf", "e => { e.value = 90; e.dispatchEvent(new Event('input')); }")
    n_90 = page.evaluate("window.vggt3dView.drawnPoints")
    conf_90 = shot(page, tmp_path / "page_conf90.png")
    assert n_90 < 0.2 * n_all and drawn(conf_90, BACKGROUND) < 0.6 * drawn(no_cameras, BACKGROUND)
    set_input("#camera", "e => { e.value = '0'; e.dispatchEvent(new Event('change')); }")
    assert changed(shot(page, tmp_path / "page_camera0.png"), conf_90) > 1000  # flew to the first camera
    assert page.console_errors == []


def _wait_for_pixels(page, path, background, minimum, timeout=40.0) -> np.ndarray:
    start = time.monotonic()
    while True:
        pixels = shot(page, path)
        if drawn(pixels, background) >= minimum or time.monotonic() - start > timeout:
            return pixels
        page.wait_for_timeout(500)


@pytest.mark.slow  # starts viser and its browser client (about 15 s on 2 busy cores)
def test_live_viewer(output_dir, tmp_path, page):
    from vggt3d.viewer.live import LiveViewer, ViewerConfig
    from vggt3d.viewer.scene import load_scene

    viewer = LiveViewer(load_scene(output_dir), ViewerConfig(port=0, conf_percentile=0))
    try:
        page.goto(viewer.url)
        page.get_by_text("showing").first.wait_for(timeout=30000)
        page.wait_for_timeout(1000)
        white = (255, 255, 255)
        before = _wait_for_pixels(page, tmp_path / "live.png", white, 60000)
        n_before = viewer.shown_points
        assert n_before == len(viewer.scene.point_sets["depth"]) and drawn(before, white) > 60000
        # The confidence slider, moved in the browser by keyboard (its value travels to the server).
        slider = page.locator("[role=slider]").first
        assert slider.get_attribute("aria-valuenow") == "0"
        slider.focus()
        page.keyboard.press("End")  # to the maximum, 99
        deadline = time.monotonic() + 20
        while viewer.shown_points >= 0.05 * n_before and time.monotonic() < deadline:  # the server redraws
            page.wait_for_timeout(200)
        assert viewer.conf.value == 99 and viewer.shown_points < 0.05 * n_before
        page.get_by_text(f"showing {viewer.shown_points:,} of").first.wait_for(timeout=10000)
        page.wait_for_timeout(1500)
        after = shot(page, tmp_path / "live_conf90.png")
        assert drawn(after, white) < drawn(before, white) - 20000
        # Frustums: hide the cameras and compare.
        viewer.show_cameras.value = False
        page.wait_for_timeout(1500)
        no_cameras = shot(page, tmp_path / "live_no_cameras.png")
        assert changed(after, no_cameras) > 300
        viewer.show_cameras.value = True
        # Fly to the last camera, as a click on its frustum does.
        client = next(iter(viewer.server.get_clients().values()))
        viewer._fly_to(client, viewer.frustums[-1])
        page.wait_for_timeout(1500)
        assert np.allclose(client.camera.position, viewer.frustums[-1].position, atol=1e-4)
        assert changed(shot(page, tmp_path / "live_camera.png"), no_cameras) > 1000
        assert page.console_errors == []
    finally:
        viewer.close()
