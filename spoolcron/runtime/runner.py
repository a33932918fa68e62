"""Running due spool files in this process, without uWSGI (``manage.py spoolcron run-due``).

For development machines, users' own test suites and CI. Each file is locked the way uWSGI's
spooler locks it, so a spooler running at the same time never runs the same file too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from ..conf import get_settings
from ..core.payload import due_of
from ..core.protocols import Recorder
from ..exceptions import SpoolFileError
from ..spool import files, locks
from .dispatch import Outcome, Result, run_spool_file
from .publish import Publisher

__all__ = ["run_due", "run_file"]

logger = logging.getLogger("spoolcron.runner")


def run_file(
    path: Path,
    recorder: Recorder,
    publisher: Publisher,
    *,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    until: float | None = None,
) -> Result | None:
    """Run one spool file as uWSGI's spooler would, under its lock; None if it is not ours
    to run now (gone, locked by a spooler, still being written, someone else's file, or due
    after ``until``).

    Without ``until`` the caller decides whether it is due (the dispatcher leaves a file that
    is not in place); with it, a job due by then runs as if it were then.
    """
    try:
        file = files.read(path)
    except FileNotFoundError:
        return None
    except SpoolFileError as exc:
        if locks.is_locked(path):
            return None  # uwsgi.spool() is still writing it
        try:
            files.quarantine(path, get_settings().failed_dir, str(exc))
        except (FileNotFoundError, BlockingIOError):
            return None
        logger.error("spool file quarantined path=%s reason=%s", path, exc)
        return Result(Outcome.QUARANTINED, reason=str(exc))
    if not file.is_ours or (until is not None and due_of(file.args, file.at) > until):
        return None
    with locks.locked(path) as ok:
        if not ok:
            return None  # a spooler runs it, or it is gone
        # hold(): closing another descriptor of the file would drop the lock we hold.
        with locks.hold(path, file.args, file.body) as held:
            result = run_spool_file(
                held, recorder, publisher=publisher, now=now, sleep=sleep, as_of=until
            )
            if result.outcome.removes_file:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
    return result


def run_due(
    recorder: Recorder,
    publisher: Publisher | None = None,
    *,
    until: float | None = None,
    clock: Callable[[], float] = time.time,
) -> list[Result]:
    """Run every spoolcron file due by ``until`` (default: now), oldest first.

    Jobs due later than now but before ``until`` run at once, as if it were ``until``; what
    they record and their retries' due times follow the real ``clock`` (a retry due after
    ``until`` is left for the next call).
    """
    deadline = clock() if until is None else until
    conf = get_settings()
    if publisher is None:
        publisher = Publisher(conf.spool_dir, fsync=conf.fsync)
    if publisher.store is not None:
        # What waits in the store until `until` runs now too: publish it first.
        while len(publisher.store.publish_due(deadline)) >= 1000:
            pass
    spool_dir = conf.spool_dir
    try:
        paths = files.list_files(spool_dir)
    except FileNotFoundError:
        return []
    due = []
    for path in paths:
        try:
            due.append((path.stat().st_mtime, path))
        except FileNotFoundError:
            continue
    results = []
    for at, path in sorted(due):
        if at > deadline:
            continue
        result = run_file(path, recorder, publisher, now=clock, until=deadline)
        if result is not None:
            results.append(result)
    return results
