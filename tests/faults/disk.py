"""A small tmpfs the test mounts, fills, frees and remounts read-only: a full or read-only
spool directory without touching the machine's disks.

Mounting needs root (CI runs as root). Elsewhere the tests that need it are skipped with the
reason -- except on CI (CI=true), where they fail: CI must never pass by skipping them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["SmallDisk", "small_disk"]


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(why: str) -> None:
    if _on_ci():
        pytest.fail(f"the disk fault tests need a tmpfs mount and CI must run them: {why}")
    pytest.skip(f"the disk fault tests need to mount a tmpfs: {why}")


class SmallDisk:
    def __init__(self, mount_point: Path) -> None:
        self.path = mount_point
        self._filler = mount_point / "filler"

    def fill(self) -> None:
        """Take every free byte."""
        with open(self._filler, "ab") as out:
            chunk = b"\0" * 65536
            try:
                while True:
                    out.write(chunk)
                    out.flush()
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        # The last partial page may still take a small write: take it too.
        with open(self._filler, "ab", buffering=0) as out, contextlib.suppress(OSError):
            while out.write(b"\0"):
                pass

    def free(self) -> None:
        self._filler.unlink()

    @contextlib.contextmanager
    def kept_full(self) -> Iterator[None]:
        """Full for the duration of the block, though others delete files meanwhile: a
        thread takes every page freed (a spooler deleting the file it ran frees one)."""
        stop = threading.Event()

        def hog() -> None:
            with open(self._filler, "ab", buffering=0) as out:
                while not stop.wait(0.001):
                    with contextlib.suppress(OSError):
                        while out.write(b"\0" * 512):
                            pass

        self.fill()
        thread = threading.Thread(target=hog, name="disk-hog", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)
            self.free()

    def read_only(self, flag: bool) -> None:
        mode = "ro" if flag else "rw"
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], check=True)


@contextlib.contextmanager
def small_disk(directory: Path, size: str = "512k") -> Iterator[SmallDisk]:
    if os.geteuid() != 0:
        _unavailable(f"they run as root only (euid {os.geteuid()})")
    directory.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        _unavailable(f"mount failed: {result.stderr.strip()}")
    try:
        yield SmallDisk(directory)
    finally:
        if subprocess.run(["umount", str(directory)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(directory)], check=True)
