"""Look at a reconstruction in the browser: a vggt3d output folder, a COLMAP model folder or a PLY file.

Serves an interactive viewer (viser; pip install "vggt3d[view]") on
http://127.0.0.1:8080/ until Ctrl-C: coloured points with a confidence
slider, camera frustums with their images (click one to fly there), frame
range and per-frame show/hide, depth-vs-pointmap switch, tracks. With
--export, writes one self-contained .html page instead (opens from disk, no
server, no network). The folder shown is never modified.

Examples:

    vggt3d view out/room
    vggt3d view out/room --port 9000 --host 0.0.0.0
    vggt3d view out/room --export room.html --max-points 100000
    vggt3d view colmap_project/sparse/0
    vggt3d view cloud.ply
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 0..65535 (0: any free port), got {value}")
    return value


def _percentile(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 100.0:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"must be in [0, 100), got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("path", type=Path, metavar="PATH",
                        help="a vggt3d output folder, a COLMAP model folder (or a project with sparse/0) or a .ply")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to serve on (default 127.0.0.1: this machine only; 0.0.0.0: the network)")
    parser.add_argument("--port", type=_port, default=8080, help="port (default 8080; 0: any free port)")
    parser.add_argument("--conf-threshold", type=_percentile, default=50.0,
                        help="initial confidence percentile below which points are hidden (default 50)")
    parser.add_argument("--max-points", type=_positive_int, default=None,
                        help="points read from the depth maps (default 1000000) or, with --export, kept in the "
                             "page (default 200000)")
    parser.add_argument("--points", default=None, metavar="SET",
                        help="with --export: the point set to put in the page (depth, pointmap, points.ply, colmap, "
                             "ply; default the first the folder has)")
    parser.add_argument("--export", type=Path, default=None, metavar="PAGE.html",
                        help="write a self-contained HTML page instead of serving (outside the folder shown)")
    parser.add_argument("--overwrite", action="store_true", help="with --export: replace an existing page")


def _check_export(args: argparse.Namespace) -> str | None:
    page = args.export
    if page.suffix.lower() not in (".html", ".htm"):
        return f"--export {page}: the page must end in .html"
    if page.exists() and not args.overwrite:
        return f"--export {page}: the file exists; use --overwrite to replace it"
    if not page.parent.resolve().is_dir():
        return f"--export {page}: the folder {page.parent} does not exist; create it first"
    source = args.path.resolve()
    if source.is_dir() and page.resolve().is_relative_to(source):
        return f"--export {page}: the page would be written inside {args.path}, which view never modifies; " \
               "write it elsewhere"
    return None


def run(args: argparse.Namespace) -> int:
    from vggt3d.viewer.scene import SceneError, load_scene

    if args.export is not None:
        from vggt3d.viewer.page import DEFAULT_PAGE_POINTS, export_html

        problem = _check_export(args)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        try:
            scene = load_scene(args.path)
            budget = args.max_points or DEFAULT_PAGE_POINTS
            page = export_html(scene, args.export, max_points=budget, point_set=args.points,
                               conf_percentile=args.conf_threshold)
        except SceneError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        size = page.stat().st_size / 1e6
        print(f"wrote {page} ({size:.1f} MB, at most {budget:,} points, {len(scene.frames)} cameras); "
              "open it in a browser, no server needed")
        return 0
    return serve_folder(args.path, args.host, args.port, args.conf_threshold, args.max_points)


def serve_folder(path: Path, host: str = "127.0.0.1", port: int = 8080, conf_threshold: float = 50.0,
                 max_points: int | None = None) -> int:
    """Serve ``path`` until Ctrl-C (also used by ``reconstruct --view``); returns the exit code."""
    try:
        import viser  # noqa: F401
    except ImportError:
        print('error: the live viewer needs viser: pip install "vggt3d[view]" (or use --export PAGE.html)',
              file=sys.stderr)
        return 2
    from vggt3d.viewer.live import PortInUseError, ViewerConfig, check_port, serve
    from vggt3d.viewer.scene import DEFAULT_MAX_POINTS, SceneError

    config = ViewerConfig(host=host, port=port, conf_percentile=conf_threshold,
                          max_points=max_points or DEFAULT_MAX_POINTS)
    try:
        check_port(host, port)  # before reading a large folder
        return serve(path, config, on_ready=lambda v: print(f"viewing {path} at {v.url} (Ctrl-C to stop)",
                                                            flush=True))
    except (SceneError, PortInUseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
