"""Score the 3D consistency of videos: depth reprojection agreement, track error, camera smoothness.

Each INPUT is a video, a folder of images, a folder of clips or a list file
(as for `vggt3d features`). The model predicts cameras, depth and tracks; the
score (0 to 1, higher is more consistent) and its parts are printed per clip,
and written with per-frame values as JSON with --json. The measures are
described in vggt3d.prior.scoring (the model path is vggt3d.prior.consistency).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .features import add_model_arguments, load_prior
from .options import positive_float, positive_int

log = logging.getLogger(__name__)


def _quantile(text: str) -> float:
    from .options import finite_float

    value = finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="video, image folder, folder of clips, or list file")
    parser.add_argument("--json", default=None, metavar="PATH", help="write the reports as JSON ('-': stdout)")
    parser.add_argument("--no-tracks", action="store_true", help="do not track points (faster)")
    parser.add_argument("--num-tracks", type=positive_int, default=256, help="grid points of frame 0 to track (default: 256)")
    parser.add_argument("--rel-tol", type=positive_float, default=0.05, help="relative depth tolerance (default: 0.05)")
    parser.add_argument("--max-gap", type=positive_int, default=None, help="compare only frames at most this far apart")
    parser.add_argument("--conf-quantile", type=_quantile, default=0.0,
                        help="drop each frame's least confident pixels below this quantile (default: 0)")
    parser.add_argument("--pixel-stride", type=positive_int, default=2,
                        help="use every N-th pixel (rows and columns) as a source; 1 is exact, 4x slower (default: 2)")
    add_model_arguments(parser)


def _check_json_path(path: str, inputs: list[str]) -> None:
    """--json must not replace an input (a video, an image, a list file) nor be a folder."""
    from pathlib import Path

    from .options import OptionError

    target = Path(path).expanduser().resolve()
    if target.is_dir():
        raise OptionError(f"--json {path} is a folder; give a file name")
    for item in inputs:
        source = Path(item).expanduser().resolve()
        if target == source or (target.exists() and source.is_dir() and source in target.parents
                                and target.suffix.lower() != ".json"):
            raise OptionError(f"--json {path} would replace the input {item}; choose another file")


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None or value != value else format(value, spec)


def run(args: argparse.Namespace) -> int:
    from .. import __version__
    from ..hub import CheckpointError
    from ..io.video import VideoReadError
    from ..prior.clips import ClipError, discover_clips
    from ..prior.consistency import consistency

    try:
        clips = discover_clips(args.inputs)
        if args.json not in (None, "-"):
            _check_json_path(args.json, args.inputs)
        prior = load_prior(args, [-1])
    except (ClipError, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    table = sys.stderr if args.json == "-" else sys.stdout
    print(f"{'score':>6} {'depth':>6} {'track px':>8} {'smooth':>6} {'worst':>5} {'frames':>6}  clip", file=table)
    reports, failed = [], []
    for source in clips:
        try:
            report = consistency(source, model=prior, tracks=not args.no_tracks, num_tracks=args.num_tracks,
                                 fps=args.fps, stride=args.stride, max_frames=args.max_frames,
                                 rel_tol=args.rel_tol, max_gap=args.max_gap, conf_quantile=args.conf_quantile,
                                 pixel_stride=args.pixel_stride)
        except (ClipError, VideoReadError, OSError, ValueError) as e:
            log.error("%s: %s", source, e)
            failed.append(source)
            continue
        s = report.summary
        print(f"{_fmt(report.score):>6} {_fmt(s['depth_agreement']):>6} {_fmt(s.get('track_error_px'), '.2f'):>8} "
              f"{_fmt(s['smoothness']):>6} {s['worst_frame']:>5} {report.num_frames:>6}  {source}", file=table)
        reports.append(report.to_dict())
    if args.json is not None:
        text = json.dumps({"vggt3d_version": __version__, "clips": reports, "failed": failed}, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w", encoding="utf-8") as f:
                f.write(text + "\n")
    for source in failed:
        print(f"failed: {source}", file=sys.stderr)
    return 1 if failed else 0
