"""A small file in the spool dir by which processes outside uWSGI see that a spooler is attached.

The spoolcron mule rewrites it every second with the spooler pids it can see alive (a
``spoolcron worker`` with its own pid, and ``"worker": true``); readers treat a heartbeat older
than a few seconds as "no spooler attached".
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["FILE_NAME", "STALE_AFTER", "read", "wake_spoolers", "working_in", "write"]

# Not prefixed uwsgi_spoolfile_on_, so the spooler never tries to run it.
FILE_NAME = ".spoolcron-heartbeat"
STALE_AFTER = 5.0


def write(
    spool_dir: Path, *, spooler_pids: list[int], frequency: int | None, worker: bool = False
) -> None:
    """``worker``: written by ``manage.py spoolcron worker``, whose own pid runs the jobs."""
    document = {
        "time": time.time(),
        "pid": os.getpid(),
        "spooler_pids": spooler_pids,
        "spooler_frequency": frequency,
        "worker": worker,
    }
    tmp = spool_dir / f"{FILE_NAME}.{os.getpid()}"
    tmp.write_text(json.dumps(document))
    os.replace(tmp, spool_dir / FILE_NAME)


def read(spool_dir: Path, *, now: float | None = None) -> dict[str, Any] | None:
    """The last heartbeat if it is fresh, else None."""
    try:
        document = json.loads((spool_dir / FILE_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    age = (time.time() if now is None else now) - float(document.get("time", 0))
    if age > STALE_AFTER:
        return None
    document["age"] = age
    return document


def working_in(pids: Iterable[int], spool_dir: Path) -> list[int]:
    """The ``pids`` whose process works in ``spool_dir``: a uWSGI spooler changes into its
    directory as it starts, so this tells each queue's spoolers apart (``/proc``, Linux)."""
    try:
        wanted = os.stat(spool_dir)
    except OSError:
        return []
    found = []
    for pid in pids:
        try:
            cwd = os.stat(f"/proc/{int(pid)}/cwd")
        except (OSError, ValueError):
            continue
        if (cwd.st_dev, cwd.st_ino) == (wanted.st_dev, wanted.st_ino):
            found.append(int(pid))
    return found


def wake_spoolers(heartbeat_dir: Path, spool_dir: Path) -> int:
    """Signal the uWSGI spoolers of ``spool_dir`` (SIGUSR1: look now), as ``uwsgi.spool()``
    does, from any process; how many were signalled.

    For a job due now: otherwise the mule notices the file (inotify) and signals them, one
    process more between the write and the run. The pids come from the mule's fresh
    heartbeat in ``heartbeat_dir``, and a pid is signalled only if that process works in
    ``spool_dir`` (:func:`working_in`), so a pid reused by another process is left alone.
    Never a ``spoolcron worker``'s (it watches by itself).
    """
    beat = read(heartbeat_dir)
    if beat is None or beat.get("worker"):
        return 0
    woken = 0
    for pid in working_in(beat.get("spooler_pids") or [], spool_dir):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGUSR1)
            woken += 1
    return woken
