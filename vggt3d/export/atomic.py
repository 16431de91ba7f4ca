"""All-or-nothing output directories: write into a temporary sibling, rename into place at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["OutputExistsError", "atomic_output_dir", "check_output_dir"]


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
