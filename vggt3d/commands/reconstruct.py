"""Reconstruct cameras, depth maps and point clouds from a folder of images, files, a glob or a video.

Writes into --out (all at the original image resolution): cameras.json,
points.ply, scene.glb, colmap/sparse/0 (with colmap/images), depth/ and
confidence/, transforms.json (nerfstudio), splats.ply (3D Gaussian splatting),
images/, preview.png (an overview picture), with --tracks tracks.npz, with
--scene-folder scene/ (a vggt3d scene folder) and with --html scene.html (a
self-contained page). The output appears only when complete; --view then
shows it in the browser.

Examples:

    vggt3d reconstruct photos/ --out scene
    vggt3d reconstruct "shots/*.jpg" --out scene --formats colmap,ply --shared-camera
    vggt3d reconstruct walk.mp4 --fps 2 --max-frames 40 --out walk --tracks grid:16
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from pathlib import Path

from vggt3d.longvideo import cli as chunk_cli
from vggt3d.refine import cli as refine_cli

log = logging.getLogger(__name__)

#: ``vggt3d.hub.DEFAULT_REPO``, repeated so that ``vggt3d --help`` does not import torch.
DEFAULT_WEIGHTS = "facebook/VGGT-1B"
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"16GB"``, ``"512MB"``, ``"1.5T"`` (binary multiples) or a plain number of GB -> bytes."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a memory size: {text!r} (use e.g. 16GB or 512MB)")
    value, unit = float(match.group(1)), (match.group(2) or ("b" if match.group(3) else "g")).lower()
    return int(value * 1024 ** "bkmgt".index(unit))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vggt3d.export import FORMATS  # light: building the parser must not import torch

    from .options import DTYPES, dtype_name, finite_float, nonnegative_int, positive_float, positive_int, tracks_spec

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="a folder of images (jpg, png, webp, tiff, bmp; natural order), image files, a quoted "
                             "glob, a .txt list of files, or one video (mp4, mov, mkv, webm)")
    parser.add_argument("-o", "--out", required=True, type=Path, help="output directory (created; must be empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    model = parser.add_argument_group("model")
    model.add_argument("--weights", "--model", dest="weights", default=DEFAULT_WEIGHTS,
                       help=f"Hugging Face repo id (default {DEFAULT_WEIGHTS}), checkpoint directory or file "
                            "(.safetensors/.pt), or the name of a model shipped with vggt3d")
    model.add_argument("--config", default=None,
                       help="architecture for a bare weights file: a preset name (vggt-1b, tiny) or a config.json")
    model.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    model.add_argument("--dtype", default="auto", type=dtype_name, choices=DTYPES,
                       help="inference precision (float32, bfloat16, float16 also accepted); auto: bf16 on GPUs that support it, fp16 on older GPUs, fp32 on CPU")
    model.add_argument("--causal", action="store_true",
                       help="causal: frame t's camera and depth from frames 0..t only (one pass; not with --chunk)")
    model.add_argument("--mode", default=None, choices=["crop", "pad", "balanced", "max_size"],
                       help="fit images to the model: centre crop or white padding (VGGT-1B; crop is its default), "
                            "balanced or max_size (VGGT-Omega; balanced is its default)")
    model.add_argument("--max-memory", type=parse_size, default=None, metavar="SIZE",
                       help="memory the run may use, e.g. 24GB (default: free memory of the device); when one "
                            "pass is estimated not to fit, the frames run in aligned chunks (see --chunk)")
    frames = parser.add_argument_group("frames")
    frames.add_argument("--fps", type=positive_float, default=None, help="video: keep at most this many frames per second")
    frames.add_argument("--stride", type=positive_int, default=1, help="keep every N-th frame or image")
    frames.add_argument("--max-frames", type=positive_int, default=None, help="use at most N frames or images")
    frames.add_argument("--skip-bad", action="store_true",
                        help="leave out images that cannot be read (with a warning) instead of stopping")
    points = parser.add_argument_group("points")
    points.add_argument("--points-from", default="depth", choices=["depth", "pointmap"],
                        help="world points from depth maps and cameras (default, more accurate) or the point map")
    points.add_argument("--conf-threshold", type=finite_float, default=50.0,
                        help="drop points below this confidence percentile (0-100, default 50)")
    points.add_argument("--conf-absolute", action="store_true",
                        help="read --conf-threshold as an absolute confidence (>= 1) instead of a percentile")
    points.add_argument("--max-points", type=nonnegative_int, default=1_000_000,
                        help="random subset of at most N points (default 1000000; 0 keeps all)")
    points.add_argument("--tracks", default=None, metavar="SPEC", type=tracks_spec,
                        help="also track points from the first image: 'grid' (16x16), 'grid:N', or a file (.npy, "
                             ".txt, .csv) of 'x y' pixels in the first image at its original resolution")
    points.add_argument("--shared-camera", action="store_true",
                        help="one camera (the mean intrinsics) for all frames; images must have one size")
    points.add_argument("--seed", type=int, default=0, help="seed of the --max-points subset")
    output = parser.add_argument_group("output")
    output.add_argument("--formats", default="all",
                        help=f"comma-separated list of: {', '.join(FORMATS)}; 'all' (the default) is every "
                             "format but scene_folder")
    output.add_argument("--scene-folder", action="store_true",
                        help="also write scene/, the predictions as a vggt3d scene folder (readable as a dataset)")
    output.add_argument("--html", action="store_true",
                        help="also write scene.html, a self-contained page of points and cameras (opens from disk)")
    output.add_argument("--view", action="store_true",
                        help="then show the result in the browser at http://127.0.0.1:8080/ until Ctrl-C "
                             "(vggt3d view OUT for --host/--port)")
    output.add_argument("--no-progress", action="store_true", help="no progress bars")
    refine_cli.add_arguments(parser)
    chunk_cli.add_arguments(parser)


def _config(value: str | None):
    """``--config``: a preset name or a config.json; anything else is one line naming the option."""
    if value is None:
        return None
    from vggt3d.config import PRESETS, ModelConfig

    from .options import OptionError

    if value in PRESETS:
        return value
    if not Path(value).is_file():
        raise OptionError(f"--config {value}: neither a preset ({', '.join(sorted(PRESETS))}) nor an existing "
                          "config.json file")
    return ModelConfig.from_json(value)


def _checkpoint_hint(exc: Exception, weights: str) -> str:
    """Append how to use a shipped model when hub weights could not be fetched."""
    from vggt3d.hub import shipped_models

    message = str(exc)
    if "could not get the weights" not in message and "neither an existing file" not in message:
        return message
    shipped = list(shipped_models())
    if shipped:
        return (message + f"\nTo run without downloading, use a model shipped with vggt3d: --weights {shipped[0]}"
                + (f" (shipped: {', '.join(shipped)})" if len(shipped) > 1 else ""))
    return message + ("\nModels shipped with vggt3d run without any download (--weights <name>); this "
                      "installation ships none yet.")


def _summary(rec, written: dict, out: Path, export_seconds: float, weights: str | None = None) -> str:
    from vggt3d.runtime import _format_bytes

    info = rec.info
    t = info["timings"]
    total = t["total"] + export_seconds
    rule = (f"confidence >= {info['conf_cut']:.4g}" + ("" if info["conf_absolute"] else
            f", the most confident {100 - info['conf_threshold']:g}% (--conf-threshold {info['conf_threshold']:g})"))
    subset = info["max_points"] is not None and info["points_candidates"] > len(rec.points)
    lines = [
        f"reconstructed {rec.num_frames} frame{'s' if rec.num_frames != 1 else ''} from {info['input']} "
        + (f"with model {weights} " if weights else "")
        + f"on {info['device']} ({info['dtype']}, model input {info['model_size'][0]}x{info['model_size'][1]})",
        (f"points: {len(rec.points):,} kept, a random subset (--max-points) of the "
         f"{info['points_candidates']:,} pixels with {rule}" if subset
         else f"points: {len(rec.points):,} kept: every pixel with {rule}"),
        f"time: {total:.1f} s (load {t['load']:.1f}, model {t['model']:.1f}, inference {t['inference']:.1f}, "
        f"points {t['points']:.1f}, export {export_seconds:.1f})",
        f"peak memory: {_format_bytes(info['peak_memory_bytes'])} ({info['peak_memory_kind']}; "
        f"estimated {_format_bytes(info['memory_estimate_bytes'])} for inference)",
    ]
    lines += refine_cli.summary_lines(info)
    lines += chunk_cli.summary_lines(info)
    if info["skipped_other"]:
        lines.append(info["skipped_other"])
    if info["skipped_bad"]:
        lines.append(f"left out {len(info['skipped_bad'])} unreadable image(s): "
                     + ", ".join(Path(p).name for p, _ in info["skipped_bad"]))
    lines.append(f"outputs in {out}/:")
    for name, paths in written.items():
        shown = sorted({str(p.relative_to(out)).split("/")[0] + ("/" if p.parent != out else "") for p in paths})
        lines.append(f"  {name:<13} {', '.join(shown)}")
    return "\n".join(lines)


def _update_peak_memory(rec) -> None:
    """Read the peak memory again after the export (the exporters may need more than inference did)."""
    import torch

    from vggt3d.runtime import peak_memory

    peak, kind = peak_memory(torch.device(rec.info["device"]))
    if peak > rec.info.get("peak_memory_bytes", 0) or kind != rec.info.get("peak_memory_kind"):
        rec.info["peak_memory_bytes"], rec.info["peak_memory_kind"] = peak, kind


def run(args: argparse.Namespace) -> int:
    from vggt3d.config import ConfigError
    from vggt3d.export import OutputExistsError, check_output_dir, parse_formats
    from vggt3d.hub import CheckpointError
    from vggt3d.io.images import ImageLoadError
    from vggt3d.io.inputs import InputError
    from vggt3d.io.video import VideoReadError
    from vggt3d.reconstruct import ReconstructionError, reconstruct

    from .options import OptionError, validate_out

    progress = not args.no_progress
    try:
        formats = parse_formats(args.formats)
        if args.scene_folder and "scene_folder" not in formats:
            formats.append("scene_folder")
        if args.html and "html" not in formats:
            formats.append("html")
        if args.view:
            _check_view()
        validate_out(args.out, args.inputs + ([args.tracks] if args.tracks and Path(args.tracks).is_file() else []))
        check_output_dir(args.out, args.overwrite)
        chunk_cli.validate(args)
        # The exporters need trimesh; importing it lazily during the export would let its import guards
        # (which catch BaseException) swallow a Ctrl-C there. Import it now, before any work.
        import trimesh  # noqa: F401

        rec = reconstruct(
            args.inputs if len(args.inputs) > 1 else args.inputs[0], model=args.weights, config=_config(args.config),
            device=args.device, dtype=args.dtype, mode=args.mode, points_from=args.points_from,
            conf_threshold=args.conf_threshold, conf_absolute=args.conf_absolute,
            max_points=args.max_points or None, tracks=args.tracks, shared_camera=args.shared_camera, fps=args.fps,
            stride=args.stride, max_frames=args.max_frames, skip_bad=args.skip_bad, max_memory=args.max_memory,
            progress=progress, seed=args.seed, causal=args.causal, **refine_cli.reconstruct_kwargs(args),
            **chunk_cli.reconstruct_kwargs(args))
        start = time.perf_counter()
        written = rec.save(args.out, formats=formats, overwrite=args.overwrite, progress=progress)
        export_seconds = time.perf_counter() - start
        _update_peak_memory(rec)
    except CheckpointError as exc:
        log.debug("checkpoint error", exc_info=True)
        print(f"error: {_checkpoint_hint(exc, args.weights)}", file=sys.stderr)
        return 1
    except (InputError, ImageLoadError, VideoReadError, FileNotFoundError, OutputExistsError, ReconstructionError,
            ConfigError, OptionError, ValueError) as exc:
        log.debug("reconstruction failed", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # disk full, permissions, I/O: the output folder is left as it was
        log.debug("writing the output failed", exc_info=True)
        print(f"error: cannot write --out {args.out}: {exc.strerror or exc}"
              + (f" ({exc.filename})" if exc.filename else "") + "; nothing was written", file=sys.stderr)
        return 1
    print(_summary(rec, written, args.out.absolute(), export_seconds, str(args.weights)))
    if args.view:
        from .view import serve_folder

        return serve_folder(args.out)
    return 0


def _check_view() -> None:
    """Fail before any work when ``--view`` cannot serve: viser missing or the port taken."""
    try:
        import viser  # noqa: F401
    except ImportError:
        raise ValueError('--view needs viser: pip install "vggt3d[view]"') from None
    from vggt3d.viewer.live import PortInUseError, check_port

    try:
        check_port("127.0.0.1", 8080)
    except PortInUseError:
        raise ValueError("--view: port 8080 on 127.0.0.1 is in use; leave out --view and run "
                         "vggt3d view OUT --port N afterwards") from None


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``infer.py``): the ``reconstruct`` sub-command's arguments."""
    parser = argparse.ArgumentParser(prog="infer.py")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    from vggt3d.cli import run_command

    return run_command(run, args)
