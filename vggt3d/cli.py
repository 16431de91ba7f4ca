"""The ``vggt3d`` command: one sub-command per job.

Each sub-command lives in its own module, which defines ``add_arguments(parser)``
and ``run(args) -> int``; this file only lists them. The CLI owns the terminal
(progress bars, summaries); library code logs through :mod:`logging`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

#: sub-command -> (module, one-line help). Add one line per sub-command.
COMMANDS: dict[str, tuple[str, str]] = {
    "reconstruct": ("vggt3d.commands.reconstruct", "cameras, depth and point clouds from images or a video"),
    "train": ("vggt3d.commands.train", "train or fine-tune a model"),
    "evaluate": ("vggt3d.commands.evaluate", "evaluate a model against ground truth"),
    "features": ("vggt3d.commands.features", "cache geometry-prior features of videos or image folders"),
    "score": ("vggt3d.commands.score", "score the 3D consistency of a video"),
    "synth": ("vggt3d.data.synthetic_cli", "write procedurally generated multi-view scenes to disk"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vggt3d", description="Feed-forward 3D geometry from images and videos.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"vggt3d {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip().split("\n\n")[0])
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
