"""Run history (one ``Run`` row per attempt), written through the DatabaseRecorder; and the
overlap check it needs.

A database that is down must not stop jobs from running: failures to record are logged and
the job goes on. The end of a run that could not be recorded is kept in this process and
written before its next run starts, so a run that ended while the database was away is not
later mistaken for one its process abandoned.

The recorder writes a run's start after the task has begun (``record_started_run``, from its
background thread, if the task is still running a moment later) or together with its end in
one transaction (``record_ended_run``, for a task that returned by then): see
``spoolcron.storage.recorder`` for what each keeps.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
from datetime import UTC, datetime, timedelta

from django.db import DatabaseError, connections, router

from ..core.payload import Payload
from ..core.times import to_db_datetime
from .models import Run

__all__ = [
    "finish_run",
    "flush_unrecorded",
    "mark_interrupted",
    "previous_still_running",
    "record_ended_run",
    "record_skipped",
    "record_started_run",
    "start_run",
]

logger = logging.getLogger("spoolcron.history")

# A run on another host whose process we cannot see counts as running for this long.
FOREIGN_RUN_STALE_AFTER = timedelta(hours=6)
# Ends of runs not recorded yet (run id -> outcome, finished, error), oldest first; bounded,
# as an outage could outlast any number of jobs.
MAX_UNRECORDED = 1000
_unrecorded: dict[int, tuple[str, datetime, str]] = {}
# The recorder's background thread writes starts (and flushes) while the spooler's thread runs
# the task: one at a time through the buffer.
_unrecorded_lock = threading.Lock()
RAN_AGAIN = "The process running it ended before it finished; it ran again."


def _record_end(run_id: int, outcome: str, finished: datetime, error: str) -> None:
    Run.objects.filter(pk=run_id).update(outcome=outcome, finished=finished, error=error)


def _flush_unrecorded() -> None:
    """Write the ends of runs the database missed; DatabaseError if it is still away."""
    with _unrecorded_lock:
        while _unrecorded:
            run_id, (outcome, finished, error) = next(iter(_unrecorded.items()))
            _record_end(run_id, outcome, finished, error)
            del _unrecorded[run_id]


def flush_unrecorded() -> None:
    """Write the ends of runs the database missed, if it is back (each in its own commit);
    nothing to do, no query."""
    if _unrecorded:
        with contextlib.suppress(DatabaseError):  # still away: the next write logs it
            _flush_unrecorded()


def _now() -> datetime:
    return to_db_datetime(datetime.now(UTC))


def mark_interrupted(job_id: str, error: str) -> None:
    """Close the runs of ``job_id`` left "running" by a process that died during them."""
    try:
        Run.objects.filter(job_id=job_id, outcome=Run.Outcome.RUNNING).update(
            outcome=Run.Outcome.FAILED, finished=_now(), error=error
        )
    except DatabaseError:
        logger.exception("could not close the interrupted runs of job=%s", job_id)


def _new_run(payload: Payload, started: datetime, outcome: str, **fields: object) -> Run:
    return Run.objects.create(
        job_id=payload.job_id,
        entry=payload.history_entry,
        task=payload.task,
        attempt=payload.attempt,
        due=to_db_datetime(payload.run_after),
        started=started,
        outcome=outcome,
        host=socket.gethostname(),
        pid=os.getpid(),
        **fields,
    )


def _close_interrupted(job_id: str, now: datetime) -> None:
    # A run of this job still "running" is one a killed spooler left (at-least-once: the job
    # runs again now), one-off jobs and entries alike.
    Run.objects.filter(job_id=job_id, outcome=Run.Outcome.RUNNING).update(
        outcome=Run.Outcome.FAILED, finished=now, error=RAN_AGAIN
    )


def record_started_run(payload: Payload, *, started: float) -> int:
    """Insert the "running" run of an attempt that started at ``started``, closing the runs
    of the same job a dead process left; DatabaseError propagates (the caller's transaction)."""
    _close_interrupted(payload.job_id, _now())
    return int(_new_run(payload, to_db_datetime(started), Run.Outcome.RUNNING).pk)


def record_ended_run(
    payload: Payload,
    *,
    started: float,
    outcome: str,
    error: str = "",
    close_interrupted: bool = True,
) -> int:
    """Insert an attempt's run whose start was not recorded, with its end (``outcome``, now),
    closing the runs of the same job a dead process left (``close_interrupted=False``: the
    caller knows no earlier start of it); DatabaseError propagates."""
    now = _now()
    if close_interrupted:
        _close_interrupted(payload.job_id, now)
    run = _new_run(payload, to_db_datetime(started), outcome, finished=now, error=error)
    return int(run.pk)


def start_run(payload: Payload, *, started: float | None = None) -> int | None:
    """Record the start of an attempt now (in autocommit); None if the database failed."""
    flush_unrecorded()
    mark_interrupted(payload.job_id, RAN_AGAIN)
    try:
        begun = _now() if started is None else to_db_datetime(started)
        run = _new_run(payload, begun, Run.Outcome.RUNNING)
    except DatabaseError:
        logger.exception("could not record the start of job=%s", payload.job_id)
        return None
    return int(run.pk)


def finish_run(run_id: int | None, outcome: str, error: str = "") -> None:
    if run_id is None:
        return
    finished = _now()
    try:
        _record_end(run_id, outcome, finished, error)
    except DatabaseError:
        logger.exception("could not record the end of run=%s; it is written later", run_id)
        with _unrecorded_lock:
            if len(_unrecorded) >= MAX_UNRECORDED:
                _unrecorded.pop(next(iter(_unrecorded)))
            _unrecorded[run_id] = (outcome, finished, error)


def record_skipped(payload: Payload, reason: str) -> None:
    now = _now()
    try:
        Run.objects.create(
            job_id=payload.job_id,
            entry=payload.history_entry,
            task=payload.task,
            attempt=payload.attempt,
            due=to_db_datetime(payload.run_after),
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


@functools.cache
def _running_runs_sql(alias: str) -> str:
    """The overlap check's query, written out: it runs between a fire's wake and its instant,
    where the ORM's compilation of the same filter costs ten times the query (~0.2 ms of CPU;
    over a millisecond in a spooler woken cold on a busy host)."""
    quote = connections[alias].ops.quote_name
    columns = {f.name: f.column for f in Run._meta.concrete_fields if f.column is not None}

    def column(name: str) -> str:
        return quote(columns[name])

    selected = ", ".join(column(name) for name in ("id", "job_id", "host", "pid", "started"))
    return (
        f"SELECT {selected} FROM {quote(Run._meta.db_table)} "
        f"WHERE {column('entry')} = %s AND {column('outcome')} = %s AND {column('job_id')} <> %s"
    )


def previous_still_running(payload: Payload) -> Run | None:
    """The unfinished run of the same entry, if one is really still going.

    Runs left "running" by a process that died (kill -9, a reload) are marked failed here.
    """
    if not payload.entry:
        return None
    host = socket.gethostname()
    now = _now()
    try:
        _flush_unrecorded()  # this process's own runs that ended while the database was away
        candidates = list(
            Run.objects.raw(
                _running_runs_sql(router.db_for_read(Run)),
                [payload.entry, Run.Outcome.RUNNING, payload.job_id],
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
