"""Run history in the ledger, written by the dispatcher; and the overlap check it needs.

A database that is down must not stop jobs from running: failures to record are logged and
the job goes on.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime, timedelta

from django.db import DatabaseError

from .models import Run
from .payload import Payload

__all__ = [
    "finish_run",
    "mark_interrupted",
    "previous_still_running",
    "record_skipped",
    "start_run",
]

logger = logging.getLogger("spoolcron.history")

# A run on another host whose process we cannot see counts as running for this long.
FOREIGN_RUN_STALE_AFTER = timedelta(hours=6)


def _entry_of(payload: Payload) -> str:
    # A run enqueued by hand (`manage.py spoolcron run ENTRY`) is in its entry's history too.
    manual = payload.meta.get("entry_manual_run")
    return payload.entry or (manual if isinstance(manual, str) else "")


def _due(payload: Payload) -> datetime:
    return datetime.fromtimestamp(payload.run_after, UTC)


def mark_interrupted(job_id: str, error: str) -> None:
    """Close the runs of ``job_id`` left "running" by a process that died during them."""
    try:
        Run.objects.filter(job_id=job_id, outcome=Run.Outcome.RUNNING).update(
            outcome=Run.Outcome.FAILED, finished=datetime.now(UTC), error=error
        )
    except DatabaseError:
        logger.exception("could not close the interrupted runs of job=%s", job_id)


def start_run(payload: Payload) -> int | None:
    # A run of this job still "running" is one a killed spooler left (at-least-once: the job
    # runs again now), one-off jobs and entries alike.
    mark_interrupted(
        payload.job_id, "The process running it ended before it finished; it ran again."
    )
    try:
        run = Run.objects.create(
            job_id=payload.job_id,
            entry=_entry_of(payload),
            task=payload.task,
            attempt=payload.attempt,
            due=_due(payload),
            started=datetime.now(UTC),
            outcome=Run.Outcome.RUNNING,
            host=socket.gethostname(),
            pid=os.getpid(),
        )
    except DatabaseError:
        logger.exception("could not record the start of job=%s", payload.job_id)
        return None
    return int(run.pk)


def finish_run(run_id: int | None, outcome: str, error: str = "") -> None:
    if run_id is None:
        return
    try:
        Run.objects.filter(pk=run_id).update(
            outcome=outcome, finished=datetime.now(UTC), error=error
        )
    except DatabaseError:
        logger.exception("could not record the end of run=%s", run_id)


def record_skipped(payload: Payload, reason: str) -> None:
    now = datetime.now(UTC)
    try:
        Run.objects.create(
            job_id=payload.job_id,
            entry=_entry_of(payload),
            task=payload.task,
            attempt=payload.attempt,
            due=_due(payload),
            started=now,
            finished=now,
            outcome=Run.Outcome.SKIPPED,
            error=reason,
            host=socket.gethostname(),
            pid=os.getpid(),
        )
    except DatabaseError:
        logger.exception("could not record the skip of job=%s", payload.job_id)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def previous_still_running(payload: Payload) -> Run | None:
    """The unfinished run of the same entry, if one is really still going.

    Runs left "running" by a process that died (kill -9, a reload) are marked failed here.
    """
    if not payload.entry:
        return None
    host = socket.gethostname()
    now = datetime.now(UTC)
    try:
        candidates = list(
            Run.objects.filter(entry=payload.entry, outcome=Run.Outcome.RUNNING).exclude(
                job_id=payload.job_id
            )
        )
        for run in candidates:
            if run.host == host:
                gone = run.pid is None or run.pid == os.getpid() or not _alive(run.pid)
            else:
                gone = now - run.started > FOREIGN_RUN_STALE_AFTER
            if not gone:
                return run
            Run.objects.filter(pk=run.pk, outcome=Run.Outcome.RUNNING).update(
                outcome=Run.Outcome.FAILED,
                finished=now,
                error="The process running it ended before it finished.",
            )
    except DatabaseError:
        logger.exception("could not check for overlapping runs of entry=%s", payload.entry)
    return None
