"""Cache geometry-prior features of videos or image folders: one safetensors file per clip.

Each INPUT is a video file, a folder of images (one clip), a folder of videos
or image folders (one clip each), or a list file (.txt/.lst) naming clips, one
per line. Finished clips are skipped, so an interrupted run is resumed by
running the same command again; files are written atomically and recorded in
OUT/manifest.jsonl. Read the cache with vggt3d.prior.FeatureCache.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from .options import DTYPES, OptionError, dtype_name, positive_float, positive_int, torch_dtype, validate_out

log = logging.getLogger(__name__)


def _layers(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--layers must be comma-separated integers, got {text!r}") from None


def _shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must be K/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def _resolution(text: str) -> int | tuple[int, int]:
    try:
        if "x" in text:
            h, w = (int(x) for x in text.lower().split("x"))
            return h, w
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--resolution must be N or HxW, got {text!r}") from None


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared with ``vggt3d score``: the model, its device and dtype, its input size and windows."""
    g = parser.add_argument_group("model")
    g.add_argument("--weights", "--model", dest="weights", default="facebook/VGGT-1B",
                   help="hub id, local directory or checkpoint file, or a shipped model name (default: %(default)s)")
    g.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    g.add_argument("--dtype", default="auto", type=dtype_name, choices=DTYPES,
                   help="aggregator weights dtype (float32, bfloat16, float16 also accepted; auto: fp32; CUDA runs "
                        "under bf16 autocast either way)")
    g.add_argument("--resolution", type=_resolution, default=None,
                   help="longer side of the model input in pixels, or HxW (default: the model's: 518 for "
                        "VGGT-1B, 512 for VGGT-Omega)")
    g.add_argument("--window", type=positive_int, default=None, help="frames per model call for long clips (default: all)")
    g.add_argument("--overlap", type=int, default=None,
                   help="frames shared by consecutive windows besides the anchor (default: window / 4)")
    g.add_argument("--causal", action="store_true",
                   help="causal features: frame t depends only on frames 0..t (for autoregressive world models); "
                        "with --window N long clips stream through a key/value cache of N frames (docs/world_models.md)")
    from ..longvideo.cli import add_merge_argument

    add_merge_argument(g)  # --merge RATIO: token merging in the global attention
    g = parser.add_argument_group("frame sampling")
    g.add_argument("--fps", type=positive_float, default=None,
                   help="keep at most this many frames per second of video")
    g.add_argument("--stride", type=positive_int, default=1, help="then keep every N-th frame (default: 1)")
    g.add_argument("--max-frames", type=positive_int, default=None,
                   help="keep at most this many frames per clip (default: all)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="video, image folder, folder of clips, or list file")
    parser.add_argument("--out", required=True, help="cache directory (created)")
    parser.add_argument("--layers", type=_layers, default=None,
                        help="aggregator layers, comma-separated, e.g. 4,11,17,23 (default: the dense heads' layers)")
    parser.add_argument("--save-dtype", default="bf16", type=dtype_name, choices=DTYPES[1:],
                        help="dtype of the stored features (float32, bfloat16, float16 also accepted; "
                             "default: %(default)s)")
    parser.add_argument("--cameras", action="store_true", help="also store each frame's pose encoding")
    parser.add_argument("--overwrite", action="store_true",
                        help="accept an OUT made with other settings and redo its clips")
    parser.add_argument("--shard", type=_shard, default=None, metavar="K/N",
                        help="process only clips K, K+N, K+2N, ... (run N processes on one OUT)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_model_arguments(parser)


def load_prior(args: argparse.Namespace, layers: list[int] | None = None):
    """The :class:`vggt3d.GeometryPrior` the model options describe."""
    from ..prior import GeometryPrior
    from ..runtime import resolve_device

    device = resolve_device(args.device)
    dtype = None if args.dtype in ("auto", "fp32") else torch_dtype(args.dtype)
    causal = getattr(args, "causal", False)
    overlap = args.overlap if args.overlap is not None else (
        max(0, (args.window or 0) // 4) if args.window and not causal else 0)
    if causal and args.overlap:
        raise ValueError("--overlap applies to bidirectional windows; with --causal, --window N is the key/value "
                         "cache of a stream (frame 0, recent frames, keyframes): drop --overlap")
    return GeometryPrior.from_pretrained(args.weights, layers, dtype=dtype, device=device, resolution=args.resolution,
                                         window=args.window, overlap=overlap, causal=causal,
                                         merge_ratio=getattr(args, "merge", None) or 0.0)


def run(args: argparse.Namespace) -> int:
    """Cache the clips; a run that caches nothing leaves no OUT behind if it created OUT."""
    out = Path(args.out)
    created = not out.exists()
    done = [0]  # clips written or found finished
    try:
        return _run(args, done)
    finally:
        if created and not done[0] and out.is_dir():
            shutil.rmtree(out, ignore_errors=True)


def _run(args: argparse.Namespace, done: list[int]) -> int:
    from tqdm import tqdm

    from ..hub import CheckpointError
    from ..io.atomic import remove_stale_temp_files
    from ..io.video import VideoReadError
    from ..prior.cache import CacheError, FeatureCacheWriter
    from ..prior.clips import ClipError, discover_clips, load_clip

    try:
        clips = discover_clips(args.inputs)
        validate_out(args.out, args.inputs)
    except (ClipError, OptionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.shard is not None:
        k, n = args.shard
        clips = clips[k::n]
    try:
        prior = load_prior(args, args.layers)
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sampling = {"fps": args.fps, "stride": args.stride, "max_frames": args.max_frames}
    try:
        writer = FeatureCacheWriter(args.out, prior, save_dtype=torch_dtype(args.save_dtype), sampling=sampling,
                                    cameras=args.cameras, overwrite=args.overwrite)
    except CacheError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot write --out {args.out}: {e.strerror or e}", file=sys.stderr)
        return 1
    remove_stale_temp_files(args.out)  # clip files of runs killed mid-write (SIGKILL)

    written = skipped = 0
    failed: list[str] = []
    bar = tqdm(clips, unit="clip", desc="clips", disable=args.no_progress, dynamic_ncols=True)
    for source in bar:
        bar.set_postfix_str(source[-40:], refresh=False)
        try:
            if writer.is_done(source):
                writer.ensure_recorded(source)
                skipped += 1
                done[0] += 1
                continue
            clip = load_clip(source, fps=args.fps, stride=args.stride, max_frames=args.max_frames)
        except (ClipError, VideoReadError, OSError, CacheError) as e:
            log.error("%s: %s", source, e)
            failed.append(source)
            continue
        try:
            with tqdm(total=len(clip.indices), unit="frame", desc="frames", leave=False,
                      disable=args.no_progress, dynamic_ncols=True) as frames_bar:
                writer.write(clip, progress=frames_bar.update)
        except OSError as e:  # disk full, permissions: every later clip would fail the same way
            bar.close()
            print(f"error: cannot write the features of {source} into --out {args.out}: {e.strerror or e}; "
                  f"{written} clip{'s' if written != 1 else ''} written before", file=sys.stderr)
            return 1
        written += 1
        done[0] += 1
    bar.close()
    print(f"{written} clip{'s' if written != 1 else ''} written, {skipped} already cached, {len(failed)} failed "
          f"-> {args.out}", file=sys.stderr)
    for source in failed:
        print(f"failed: {source}", file=sys.stderr)
    return 1 if failed else 0
