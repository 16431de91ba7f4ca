"""Regenerate the README pictures from the demo reconstruction: ``preview.png``, ``viewer.png``, ``page.png``.

Runs the README's demo command (``vggt3d reconstruct examples/room/images
--weights tiny-synthetic``) into a temporary folder, copies its ``preview.png``,
then opens the live viewer (viser) and the static page in headless Chromium
(Debian's ``chromium``, driven by ``playwright``; no browser download) and
saves screenshots. Run from the repository root:

    python docs/img/make_images.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> int:
    from playwright.sync_api import sync_playwright

    from vggt3d.cli import main as vggt3d
    from vggt3d.viewer import export_html, load_scene
    from vggt3d.viewer.live import LiveViewer, ViewerConfig

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: no Chromium; apt-get install -y chromium", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "room"
        status = vggt3d(["reconstruct", str(ROOT / "examples/room/images"), "--weights", "tiny-synthetic",
                         "--out", str(out), "--no-progress"])
        if status:
            return status
        shutil.copyfile(out / "preview.png", HERE / "preview.png")
        scene = load_scene(out)
        page = export_html(scene, Path(tmp) / "room.html", conf_percentile=50)
        viewer = LiveViewer(scene, ViewerConfig(port=0))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch_persistent_context(
                    str(Path(tmp) / "profile"), executable_path=chromium, headless=True, args=FLAGS,
                    viewport={"width": 1100, "height": 700})
                tab = browser.new_page()
                tab.goto(viewer.url)
                tab.get_by_text("showing").first.wait_for(timeout=60000)
                time.sleep(4)  # points and thumbnails arrive after the panel
                close = tab.locator(".mantine-Notification-closeButton")  # "software WebGL" notice
                for i in range(close.count()):
                    close.nth(i).click()
                time.sleep(1)
                tab.screenshot(path=str(HERE / "viewer.png"))
                tab.goto(page.as_uri())
                tab.wait_for_function("window.vggt3dView && window.vggt3dView.ready")
                tab.screenshot(path=str(HERE / "page.png"))
                browser.close()
        finally:
            viewer.close()
    print(f"wrote {HERE / 'preview.png'}, {HERE / 'viewer.png'}, {HERE / 'page.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
