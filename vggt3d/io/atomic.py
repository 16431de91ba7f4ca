"""All-or-nothing outputs: files and directories are written under a temporary name, then renamed into place.

A reader (or a rerun after a crash) therefore sees either the previous
complete file or the new complete one, never a half-written one. Temporary
files are named ``.<name>.tmp`` next to the target, so a rerun overwrites what
a killed run left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["OutputExistsError", "atomic_output_dir", "atomic_write", "atomic_write_text", "check_output_dir", "fsync_dir"]


class OutputExistsError(FileExistsError):
    """The output directory exists and is not empty (and overwriting was not asked for)."""


def check_output_dir(out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Raise unless ``out`` can receive the output: absent, an empty directory, or ``overwrite``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"output {out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(f"output directory {out} exists and is not empty; pass --overwrite "
                                "(overwrite=True) to replace it, or choose another --out")
    return out


@contextlib.contextmanager
def atomic_output_dir(out: str | os.PathLike, overwrite: bool = False) -> Iterator[tuple[Path, Path]]:
    """Yield ``(temporary directory, final path)``; on success the temporary one becomes ``out``.

    On any exception the temporary directory, and parent directories created for
    it, are removed and ``out`` is left as it was.
    """
    out = check_output_dir(out, overwrite).absolute()
    created = []
    parent = out.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the output is an ordinary directory
    try:
        yield tmp, out
        check_output_dir(out, overwrite)  # still true at the end (nothing appeared meanwhile)
        old = None
        if out.is_dir():
            if any(out.iterdir()):
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
                os.replace(out, old / out.name)
            else:
                out.rmdir()
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for directory in created:  # innermost first
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise


def fsync_dir(directory: str | os.PathLike) -> None:
    """Flush a directory entry (after a rename) to disk where the OS allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], *, fsync: bool = False) -> Path:
    """Call ``write(temporary_path)``, then rename the result onto ``path``.

    The temporary file ``.<name>.tmp`` sits in ``path``'s folder (same file
    system, so the rename is atomic) and is removed if ``write`` fails or is
    interrupted. ``fsync``: flush the file and the folder entry (for caches and
    checkpoints that must survive a power loss).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(os.fspath(tmp))
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if fsync:
        fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, *, fsync: bool = False) -> Path:
    """:func:`atomic_write` of a UTF-8 text file."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), fsync=fsync)
