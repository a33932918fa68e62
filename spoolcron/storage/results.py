"""The results store: one ``JobResult`` row per job, read and written only here.

SpoolerBackend writes the READY row when it enqueues; the dispatcher marks the row RUNNING
when an attempt starts (creating it for jobs of ``spoolcron.schedule()`` and periodic fires,
which enqueue without the database) and SUCCESSFUL, FAILED or READY-again (a retry) when it
ends. In the spooler a database that is down must not stop jobs: failures to record are
logged and the job goes on, as with the run history.

The recorder hands the task the row as its start will be recorded (``running_row``, from the
payload, no query) and writes it later: ``record_start`` once the task has run a moment,
or ``record_attempt`` with the end in the same transaction (see spoolcron.storage.recorder).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q

from ..core.payload import Payload
from ..core.times import to_db_datetime
from .models import JobResult

__all__ = [
    "apply_end",
    "finish",
    "forget",
    "load",
    "prune",
    "record_attempt",
    "record_enqueued",
    "record_start",
    "record_unrunnable",
    "running_row",
    "start",
    "stored_status",
    "worker_id",
]

logger = logging.getLogger("spoolcron.results")

Status = JobResult.Status


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _storable(value: Any, job_id: str) -> Any:
    # Django tasks' values are normalized already; a spoolcron task may return anything, and
    # a value JSON cannot carry is not a reason to fail a job that succeeded.
    try:
        return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    except (TypeError, ValueError):
        logger.warning("return value not stored job=%s: %r cannot be stored as JSON", job_id, value)
        return None


def _new_row(payload: Payload, *, backend: str, queue_name: str) -> JobResult:
    return JobResult(
        id=payload.job_id,
        task=payload.task,
        entry=payload.history_entry,
        status=Status.READY,
        enqueued_at=to_db_datetime(payload.enqueued_at) if payload.enqueued_at else None,
        run_after=to_db_datetime(payload.run_after),
        args=payload.args,
        kwargs=payload.kwargs,
        backend=backend,
        queue_name=queue_name,
    )


def record_enqueued(
    payload: Payload, *, backend: str, queue_name: str, run_after: datetime | None
) -> None:
    """Insert the READY row of a job SpoolerBackend enqueues; database errors propagate.

    Never overwrites: a spooler that started the job already has written a newer state.
    """
    row = _new_row(payload, backend=backend, queue_name=queue_name)
    row.run_after = run_after
    JobResult.objects.bulk_create([row], ignore_conflicts=True)


def _save(row: JobResult, *, new: bool = False) -> None:
    # A savepoint: an IntegrityError must not break a transaction the caller runs in.
    with transaction.atomic():
        row.save(force_insert=new)


def _mark_running(row: JobResult, now: datetime) -> None:
    row.status = Status.RUNNING
    row.started_at = row.started_at or now
    row.last_attempted_at = now
    row.finished_at = None
    row.attempts += 1
    row.worker_ids = [*row.worker_ids, worker_id()]


def _new_running_row(payload: Payload, *, backend: str, queue_name: str, now: float) -> JobResult:
    row = _new_row(payload, backend=backend, queue_name=queue_name)
    _mark_running(row, to_db_datetime(now))
    return row


def running_row(payload: Payload, *, backend: str, queue_name: str, now: float) -> JobResult:
    """The job's row as its first start will be recorded, built from the payload alone (no
    query, unsaved): what SpoolerBackend's READY row holds for a job enqueued by it (its
    ``run_after`` is None unless one was given), what a new row holds for the others.

    A row the database already holds differs in what only it knows: the errors and attempts
    of earlier attempts (a retry, a run again after a kill, a job put back by ``retry``).
    """
    row = _new_running_row(payload, backend=backend, queue_name=queue_name, now=now)
    if payload.framework is not None and payload.run_after == payload.enqueued_at:
        row.run_after = None  # enqueued without run_after: the backend stores none
    return row


def _merged_start(payload: Payload, *, backend: str, queue_name: str, now: float) -> JobResult:
    row = JobResult.objects.filter(pk=payload.job_id).first()
    if row is None:
        return _new_running_row(payload, backend=backend, queue_name=queue_name, now=now)
    _mark_running(row, to_db_datetime(now))
    return row


def _write_merged(
    payload: Payload,
    merge: Any,
    *,
    backend: str,
    queue_name: str,
    now: float,
    fresh: bool = False,
) -> JobResult:
    """Read the job's row (or make it), ``merge`` the attempt into it and save it; retried
    once if the READY row of the enqueuing transaction commits meanwhile.

    ``fresh``: the caller knows of no row (a first start, see ``DatabaseRecorder``): insert
    one without reading first, and read only if one exists after all.
    """
    if fresh:
        row = _new_running_row(payload, backend=backend, queue_name=queue_name, now=now)
        merge(row)
        try:
            _save(row, new=True)
        except IntegrityError:
            pass  # e.g. another host's spooler started the job and died: merge into its row
        else:
            return row
    for tries_left in (1, 0):
        # Only this job's spooler writes its row from now on (it holds the file's lock), so a
        # plain read then write will do. No transaction around both: in SQLite one that
        # reads first cannot wait for another writer's lock (the caller may run both in its
        # own, when it writes there already).
        row = _merged_start(payload, backend=backend, queue_name=queue_name, now=now)
        merge(row)
        try:
            # A row the read did not find is inserted outright: save() would try an UPDATE
            # first (the primary key is set), one statement more after every task, while a
            # job due now may wait for this spooler. One committed since raises
            # IntegrityError: read again.
            _save(row, new=row._state.adding)
        except IntegrityError:
            if not tries_left:
                raise
            continue
        return row
    raise AssertionError("unreachable")  # pragma: no cover


def record_start(payload: Payload, *, backend: str, queue_name: str, now: float) -> JobResult:
    """Mark the job RUNNING (started at ``now``) and return its saved row; DatabaseError
    propagates."""
    return _write_merged(payload, lambda row: None, backend=backend, queue_name=queue_name, now=now)


def record_attempt(
    payload: Payload,
    *,
    backend: str,
    queue_name: str,
    started: float,
    status: str,
    now: float,
    return_value: Any = None,
    error: dict[str, str] | None = None,
    retry_at: float | None = None,
    fresh: bool = False,
) -> JobResult:
    """Record an attempt's start (at ``started``) and its end (as :func:`finish`) in one
    write and return the saved row (``fresh``: see ``_write_merged``); DatabaseError
    propagates."""

    def end(row: JobResult) -> None:
        apply_end(row, status, now=now, return_value=return_value, error=error, retry_at=retry_at)

    return _write_merged(
        payload, end, backend=backend, queue_name=queue_name, now=started, fresh=fresh
    )


def start(payload: Payload, *, backend: str, queue_name: str, now: float) -> JobResult:
    """Mark the job RUNNING and return its row (unsaved if the database failed)."""
    try:
        return record_start(payload, backend=backend, queue_name=queue_name, now=now)
    except DatabaseError:
        logger.exception("could not record the start of job=%s", payload.job_id)
    return _new_running_row(payload, backend=backend, queue_name=queue_name, now=now)


def apply_end(
    row: JobResult,
    status: str,
    *,
    now: float,
    return_value: Any = None,
    error: dict[str, str] | None = None,
    retry_at: float | None = None,
) -> None:
    """Set the end of an attempt on ``row`` without saving it (see :func:`finish`)."""
    row.status = status
    if error is not None:
        row.errors = [*row.errors, error]
    if status == Status.SUCCESSFUL:
        row.return_value = _storable(return_value, row.id)
    if retry_at is not None:
        row.run_after = to_db_datetime(retry_at)
    else:
        row.finished_at = to_db_datetime(now)


def finish(
    row: JobResult,
    status: str,
    *,
    now: float,
    return_value: Any = None,
    error: dict[str, str] | None = None,
    retry_at: float | None = None,
) -> None:
    """Record the end of an attempt: SUCCESSFUL, FAILED, or READY again for a retry."""
    apply_end(row, status, now=now, return_value=return_value, error=error, retry_at=retry_at)
    try:
        _save(row)
    except DatabaseError:
        logger.exception("could not record the end of job=%s", row.id)


def record_unrunnable(payload: Payload, error: dict[str, str], *, now: float) -> None:
    """A job that could not even start (unknown task): FAILED, so no result waits forever."""
    try:
        row = JobResult.objects.filter(pk=payload.job_id).first()
        if row is None:
            row = _new_row(payload, backend="", queue_name="")
        row.status = Status.FAILED
        row.finished_at = to_db_datetime(now)
        row.errors = [*row.errors, error]
        _save(row)
    except DatabaseError:
        logger.exception("could not record the failure of job=%s", payload.job_id)


def load(job_id: str) -> JobResult | None:
    """The row of ``job_id`` or None; database errors propagate."""
    return JobResult.objects.filter(pk=job_id).first()


def stored_status(job_id: str) -> str | None:
    """The stored status of ``job_id``; None if it has no row or the database failed."""
    try:
        return JobResult.objects.filter(pk=job_id).values_list("status", flat=True).first()
    except DatabaseError:
        logger.exception("could not read the result of job=%s", job_id)
        return None


def forget(job_id: str) -> None:
    """Delete the row of a cancelled job."""
    try:
        JobResult.objects.filter(pk=job_id, status=Status.READY).delete()
    except DatabaseError:
        logger.exception("could not delete the result of job=%s", job_id)


def prune(cutoff: datetime, *, using: str = "default") -> int:
    """Delete results finished before ``cutoff``, and unfinished ones due before it that no
    attempt touched since (their job is gone: a spooler that runs it later writes a new row).
    """
    cutoff = to_db_datetime(cutoff)
    stale = Q(finished_at__lt=cutoff) | (
        Q(finished_at__isnull=True)
        & (Q(run_after__lt=cutoff) | Q(run_after__isnull=True, enqueued_at__lt=cutoff))
        & (Q(last_attempted_at__isnull=True) | Q(last_attempted_at__lt=cutoff))
    )
    deleted, _ = JobResult.objects.using(using).filter(stale).delete()
    return deleted
