"""Counting the starts of a spool file, so a task whose spooler dies every time stops.

uWSGI re-runs a file whose spooler was killed mid-task (kill -9, a reload, or
``--spooler-harakiri``, which SIGKILLs it): a task that never returns would run forever.
The spooler callable counts each start in a small file beside the spool dir's entries and
removes it when the task returns; a count that survives says how often it died.
"""

from __future__ import annotations

import contextlib
import os

from .files import ensure_dir

__all__ = ["STARTS_DIR", "clear_starts", "record_start"]

STARTS_DIR = ".spoolcron-starts"


def _starts_path(path: str | os.PathLike[str]) -> str:
    directory, name = os.path.split(os.fspath(path))
    return os.path.join(directory, STARTS_DIR, name)


def record_start(path: str | os.PathLike[str]) -> int:
    """Count one more start of the spool file at *path*; return how many came before.

    Never opens *path* itself (see :func:`hold`).
    """
    counter = _starts_path(path)
    try:
        with open(counter, encoding="ascii") as fh:
            before = int(fh.read() or 0)
    except FileNotFoundError:
        before = 0
    except ValueError:
        before = 0
    ensure_dir(os.path.dirname(counter))
    with open(counter, "w", encoding="ascii") as fh:
        fh.write(str(before + 1))
    return before


def clear_starts(path: str | os.PathLike[str]) -> None:
    """Forget the starts of the spool file at *path*: its task returned."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_starts_path(path))
