"""Paths read from untrusted files (dataset annotations, output folders) kept inside their folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["UnsafePathError", "path_inside"]


class UnsafePathError(ValueError):
    """A path inside a file points outside the folder it belongs to (absolute, ``..``, or a link out)."""


def path_inside(root: str | os.PathLike, relative: Any, where: str, *, folder: str = "dataset folder") -> Path:
    """``root / relative``, refused unless it stays inside ``root`` once resolved (links followed).

    Dataset files (``cameras.json``, COLMAP ``images.bin``, CO3D annotations) are
    untrusted: an entry such as ``../../secret.png``, ``/etc/passwd`` or a link
    that leads out of the folder must not make the reader open files elsewhere.

    ``folder`` names the kind of folder in the message (a dataset folder, an output folder).

    Raises:
        UnsafePathError: naming ``where`` (the file and entry) and the path.
    """
    if not isinstance(relative, str | os.PathLike) or not os.fspath(relative):
        raise UnsafePathError(f"{where}: expected a relative file path, got {relative!r}")
    text = os.fspath(relative)
    if "\x00" in text or os.path.isabs(text) or text.startswith("~"):
        raise UnsafePathError(f"{where}: {text!r} leads outside the {folder} {root} (only paths relative "
                              "to it are allowed)")
    base = Path(root).resolve()
    target = (base / text).resolve()
    if target != base and base not in target.parents:
        raise UnsafePathError(f"{where}: {text!r} leads outside the {folder} {root}; its files may "
                              "only name files inside it")
    return Path(root) / text
