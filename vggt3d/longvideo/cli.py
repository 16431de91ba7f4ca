"""``--chunk``, ``--overlap``, ``--no-loop-closure`` and ``--merge`` of ``vggt3d reconstruct`` (light: no torch)."""

from __future__ import annotations

import argparse
from typing import Any

from ..commands.options import nonnegative_int, positive_int


def _chunk(text: str) -> int:
    """``--chunk N``: a whole number of frames >= 2 (a chunk needs a reference frame and one more)."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be >= 2 frames, got {value}")
    return value


def merge_ratio(text: str) -> float:
    """``--merge RATIO``: a number in [0, 0.95] (the fraction of global-attention tokens merged away)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 0.95:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be in [0, 0.95], got {text}")
    return value


def add_merge_argument(parser: Any) -> None:
    """``--merge RATIO`` (shared by reconstruct, features and score)."""
    parser.add_argument("--merge", type=merge_ratio, default=None, metavar="RATIO",
                        help="merge away this fraction (0-0.95) of the tokens in the global attention: faster with "
                             "many frames, slightly less accurate (docs/long_videos.md); default: exact")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "long videos", "Without --chunk the memory planner runs one exact pass when it fits --max-memory, else "
                       "overlapping chunks aligned by Sim(3) (the summary says which and why).")
    group.add_argument("--chunk", type=_chunk, default=None, metavar="N",
                       help="predict overlapping chunks of N frames, aligned into one reconstruction")
    group.add_argument("--overlap", type=nonnegative_int, default=None, metavar="K",
                       help="frames shared by consecutive chunks (default: a quarter of --chunk, at least 4)")
    group.add_argument("--no-loop-closure", action="store_true",
                       help="do not look for revisits (loop closure costs one extra pass per verified candidate)")
    add_merge_argument(group)


def validate(args: argparse.Namespace) -> None:
    """Chunk options that cannot work, before any work (raises ``ChunkPlanError``, a ValueError)."""
    if args.overlap is not None and args.chunk is None:
        raise ValueError("--overlap needs --chunk (automatic chunking picks its own overlap)")
    if args.chunk is not None:
        from .chunks import check_chunking

        overlap = args.overlap if args.overlap is not None else max(4, args.chunk // 4) if args.chunk > 4 \
            else args.chunk - 1
        check_chunking(args.chunk, overlap, loop_closure=not args.no_loop_closure)
        if getattr(args, "tracks", None) is not None:
            raise ValueError("--tracks follows points from the first frame through one pass over all frames; it "
                             "cannot run in chunks: drop --chunk or --tracks")


def reconstruct_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"chunk": args.chunk, "overlap": args.overlap, "loop_closure": not args.no_loop_closure,
            "merge_ratio": args.merge}


def summary_lines(info: dict) -> list[str]:
    """``strategy: ...`` and, for chunked runs, the chunks and loops."""
    lines = [f"strategy: {info.get('strategy_reason', info.get('strategy', 'exact'))}"
             + (f"; tokens merged in the global attention (--merge {info['merge_ratio']:g})"
                if info.get("merge_ratio") else "")]
    report = info.get("chunks")
    if report:
        worst = max((e["relative_residual"] for e in report["alignment"]), default=0.0)
        lines.append(f"chunks: {report['chunks']} of {report['chunk']} frames ({report['overlap']} shared), "
                     f"worst alignment residual {worst:.3f} of the scene size; loops closed: "
                     f"{len(report['loops_closed'])}, rejected: {len(report['loops_rejected'])}")
    return lines
