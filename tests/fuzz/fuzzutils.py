"""Helpers of the fuzz suite: small real files (images, a bomb header, FIFOs), deadlines, one-line checks."""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, width: int = 40, height: int = 30, seed: int = 0) -> Path:
    """A small noise PNG/JPEG (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that claims ``width x height`` pixels (IHDR, one empty IDAT, IEND): a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
                     + chunk(b"IEND", b""))
    return path


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the suite) if the body takes longer than ``seconds``."""
    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s (a hang)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def one_line_error(text: str) -> str:
    """The single error line of a command's stderr (fails on a traceback or several error lines)."""
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if "error:" in line]  # argparse: usage lines, then one error
    if not lines:
        lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "64k", readonly: bool = False):
    """A real tmpfs of ``size`` (optionally read-only) at ``path``; skips where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if readonly else "")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        if readonly and os.geteuid() != 0:  # an ordinary user: permission bits do the job
            path.chmod(0o555)
            try:
                yield path
            finally:
                path.chmod(0o755)
            return
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or result.returncode})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


