"""Static page (``vggt3d view OUT --export``): file size, export time and frame time in headless Chromium vs points.

    python benchmarks/viewer_page.py --out benchmarks/results/viewer_page_cpu.json

For each point budget, a scene of that many coloured points (random points on
three planes, confidences uniform, 8 cameras) is exported with
:func:`vggt3d.viewer.page.export_html`; the page is opened in headless Chromium
(Debian's ``chromium`` through playwright, 960x640 viewport, software
rendering) and the frame time is the page's own ``renderMs`` over 10 redraws
while orbiting (all points drawn, 2-px points): median and fastest (the machine
is shared, so the fastest is the renderer's cost with the least interference). Also times
``preview.png`` of the same scene (:mod:`vggt3d.export.preview`). Writes the
JSON and a PNG plot beside it.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def make_scene(n: int, seed: int = 0):
    from vggt3d.viewer.scene import Frame, PointSet, Scene

    rng = np.random.default_rng(seed)
    u = rng.uniform(-1, 1, (n, 2))
    which = rng.integers(0, 3, n)
    pts = np.where(which[:, None] == 0, np.c_[u[:, 0], u[:, 1], np.full(n, 3.0)],
                   np.where(which[:, None] == 1, np.c_[u[:, 0], np.full(n, 1.0), 2 + u[:, 1]],
                            np.c_[np.full(n, -1.0), u[:, 0], 2 + u[:, 1]]))
    colors = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    K = np.array([[300.0, 0, 319.5], [0, 300.0, 239.5], [0, 0, 1]])
    frames = []
    for i in range(8):
        cam = np.eye(4)
        cam[:3, 3] = [-0.1 * i, 0, 0]
        frames.append(Frame(f"{i}.png", 640, 480, K, cam))
    return Scene(Path("bench"), "vggt3d", frames,
                 {"depth": PointSet(pts.astype(np.float32), colors, rng.uniform(1, 10, n).astype(np.float32),
                                    rng.integers(0, 8, n).astype(np.int32))})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", default="25000,50000,100000,200000,400000")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/viewer_page_cpu.json"))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from vggt3d.export.preview import Overview, render_overview
    from vggt3d.viewer.page import export_html

    chromium = shutil.which("chromium")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(str(Path(tmp) / "profile"), executable_path=chromium,
                                                       headless=True, args=FLAGS,
                                                       viewport={"width": 960, "height": 640})
        page = browser.new_page()
        for n in (int(v) for v in args.points.split(",")):
            scene = make_scene(n)
            t0 = time.perf_counter()
            html = export_html(scene, Path(tmp) / f"{n}.html", max_points=n)
            export_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            page.goto(html.as_uri())
            page.wait_for_function("window.vggt3dView && window.vggt3dView.ready")
            first_s = time.perf_counter() - t0
            times = []
            for _ in range(10):
                before = page.evaluate("window.vggt3dView.renders")
                page.mouse.move(480, 320)
                page.mouse.down()
                page.mouse.move(500, 330)
                page.mouse.up()
                page.wait_for_function(f"window.vggt3dView.renders > {before}")
                times.append(page.evaluate("window.vggt3dView.renderMs"))
            f = scene.frames
            ov = Overview(scene.point_sets["depth"].points, scene.point_sets["depth"].colors,
                          np.stack([x.cam_from_world for x in f]), np.stack([x.K for x in f]),
                          np.array([[640, 480]] * len(f)))
            t0 = time.perf_counter()
            render_overview(ov, Path(tmp) / "preview.png")
            preview_s = time.perf_counter() - t0
            rows.append({"points": n, "page_mb": html.stat().st_size / 1e6, "export_s": export_s,
                         "load_to_first_frame_s": first_s, "frame_ms_median": float(np.median(times)),
                         "frame_ms_min": float(np.min(times)),
                         "preview_png_s": preview_s})
            print(rows[-1], flush=True)
        browser.close()
    result = {"benchmark": "viewer_page", "command": "python benchmarks/viewer_page.py", "machine":
              f"{platform.machine()} {platform.processor() or ''}".strip(), "chromium": chromium,
              "viewport": [960, 640], "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    n = [r["points"] for r in rows]
    a.plot(n, [r["frame_ms_median"] for r in rows], "o-", label="median of 10")
    a.plot(n, [r["frame_ms_min"] for r in rows], "s--", label="fastest of 10")
    a.legend()
    a.set(xlabel="points in the page", ylabel="frame time (ms)", title="static page, headless Chromium")
    b.plot(n, [r["page_mb"] for r in rows], "o-")
    b.set(xlabel="points in the page", ylabel="file size (MB)", title="scene.html size")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=100)
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
