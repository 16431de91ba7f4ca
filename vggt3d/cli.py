"""The ``vggt3d`` command: one sub-command per job.

Each sub-command lives in its own module, which defines ``add_arguments(parser)``
and ``run(args) -> int``; this file only lists them. The CLI owns the terminal
(progress bars, summaries); library code logs through :mod:`logging`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

#: sub-command -> (module, one-line help). Add one line per sub-command.
COMMANDS: dict[str, tuple[str, str]] = {
    "reconstruct": ("vggt3d.commands.reconstruct", "cameras, depth and point clouds from images or a video"),
    "train": ("vggt3d.commands.train", "train or fine-tune a model"),
    "evaluate": ("vggt3d.commands.evaluate", "evaluate a model against ground truth"),
    "features": ("vggt3d.commands.features", "cache geometry-prior features of videos or image folders"),
    "score": ("vggt3d.commands.score", "score the 3D consistency of a video"),
    "synth": ("vggt3d.data.synthetic_cli", "write procedurally generated multi-view scenes to disk"),
    "view": ("vggt3d.commands.view", "look at a result in the browser, or export a self-contained HTML page"),
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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every ``finally`` and ``except BaseException`` cleanup runs."""


def run_command(run: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a sub-command with SIGINT and SIGTERM turned into exceptions; the exit status it should have.

    Both signals raise (``KeyboardInterrupt`` / :class:`Terminated`) wherever the
    command is, so temporary outputs are removed on the way out; the exit status is
    128 + the signal number (130, 143). A signal that a library swallowed (some
    catch ``BaseException`` around imports) still ends the run with that status.
    """
    received: list[int] = []
    owner = os.getpid()

    def handler(signum: int, frame) -> None:
        if os.getpid() != owner:  # a forked worker (data loading) inherited this: behave as by default there
            signal.signal(signum, signal.SIG_DFL if signum == signal.SIGTERM else signal.default_int_handler)
            os.kill(os.getpid(), signum)
            return
        received.append(signum)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, OSError):
                previous[signum] = signal.signal(signum, handler)
    try:
        status = int(run(args) or 0)
    except KeyboardInterrupt as exc:
        signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
        print("terminated" if signum == signal.SIGTERM else "interrupted", file=sys.stderr)
        return 128 + int(signum)
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
    if received:
        print("interrupted", file=sys.stderr)
        return 128 + int(received[0])
    return status


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    return run_command(args._run, args)


if __name__ == "__main__":
    sys.exit(main())
