"""All-or-nothing outputs: files and directories are written under a temporary name, then renamed into place.

A reader (or a rerun after a crash) therefore sees either the previous
complete file or the new complete one, never a half-written one. Temporary
files are named ``.<name>.tmp`` next to the target, so a rerun overwrites what
a killed run left behind. Temporary output directories are named
``.<name>.tmp-<pid>-<random>`` (and ``.<name>.old-<pid>-<random>`` while an
old output is swapped out): the next :func:`atomic_output_dir` for the same
``<name>`` removes those whose process is no longer running
(:func:`remove_stale_temp_dirs`), so a run killed with SIGKILL leaves nothing
behind for long.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["OutputExistsError", "atomic_output_dir", "atomic_write", "atomic_write_text", "check_output_dir",
           "fsync_dir", "pid_alive", "remove_stale_temp_dirs", "remove_stale_temp_files"]

log = logging.getLogger(__name__)


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


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (on this machine); unknown (no permission) counts as alive."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_dirs(out: str | os.PathLike) -> list[Path]:
    """Remove ``.<name>.tmp-<pid>-*`` / ``.<name>.old-<pid>-*`` beside ``out`` left by processes that died.

    Returns the removed paths. Folders of running processes (including this
    one) and names without a process id are left alone.
    """
    out = Path(out).absolute()
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.(?:tmp|old)-(\d+)-[^/]*$")
    removed = []
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if not match or int(match.group(1)) == os.getpid() or pid_alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        if not entry.exists():
            log.info("removed %s, left by a run that did not finish", entry)
            removed.append(entry)
    return removed


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Remove the ``.<name>.tmp-<pid>`` files (:func:`atomic_write` with ``pid_tag``) of dead processes in ``folder``."""
    pattern = re.compile(r"^\..+\.tmp-(\d+)$")
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match and entry.is_file() and not pid_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                entry.unlink()
                log.info("removed %s, left by a run that did not finish", entry)
                removed.append(entry)
    return removed


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
    remove_stale_temp_dirs(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the output is an ordinary directory
    try:
        yield tmp, out
        check_output_dir(out, overwrite)  # still true at the end (nothing appeared meanwhile)
        old = None
        if out.is_dir():
            if any(out.iterdir()):
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-", dir=out.parent))
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


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], *, fsync: bool = False,
                 pid_tag: bool = False) -> Path:
    """Call ``write(temporary_path)``, then rename the result onto ``path``.

    The temporary file ``.<name>.tmp`` sits in ``path``'s folder (same file
    system, so the rename is atomic) and is removed if ``write`` fails or is
    interrupted. ``fsync``: flush the file and the folder entry (for caches and
    checkpoints that must survive a power loss). ``pid_tag``: name it
    ``.<name>.tmp-<pid>`` instead, for folders several processes write into;
    :func:`remove_stale_temp_files` then removes those of processes that died.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}" if pid_tag else f".{path.name}.tmp")
    try:
        write(os.fspath(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # some writers (safetensors) create their files private (0600)
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
