"""Runs one spool file: decode, look up the task, execute, retry with backoff or quarantine.

Used by the uWSGI spooler callable (spoolcron.uwsgi) and by the runner in plain processes.
Whatever cannot run is moved to the failed directory with its reason: never retried forever,
never silently deleted. What happens to each job is told to a ``Recorder``
(``core.protocols``); how a task is called is its ``Execution`` (a Django task's carries the
framework's signals). This module imports neither the ORM nor the Tasks framework.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import random
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from django.dispatch import Signal

from ..conf import get_settings
from ..core import signals
from ..core.logging import one_line
from ..core.payload import Payload, due_of
from ..core.protocols import Attempt, Recorder
from ..core.registry import Task, get_task
from ..exceptions import PayloadError, UnknownTask
from ..spool import files
from ..spool.codec import SpoolFile
from ..spool.payloads import read_payload
from .admission import admit
from .publish import Publisher
from .timeout import call_with_timeout

__all__ = ["Outcome", "Result", "error_of", "give_up", "not_due_yet", "run_spool_file"]

logger = logging.getLogger("spoolcron.dispatch")

# uWSGI's `at` is the file's mtime, compared in whole seconds: a spooler woken for one job
# also picks up the others due later in the same second. Sleeping until those are due would
# hold up the jobs behind them -- a job due now among them --, so a file more than a moment
# early goes back to wait, and the waker wakes the spooler again at its own instant. The
# moment: the waker's lead (2 ms) and a little for uWSGI's scan; every millisecond more is a
# millisecond a job due now can wait behind a sleeping spooler.
MAX_EARLY_WAIT = 0.005


def not_due_yet(args: Mapping[bytes, bytes], now: float) -> bool:
    """Whether a spool file with these arguments is due later than a dispatcher would wait
    for: told from its due argument alone, before anything else is read or written, since
    a woken spooler passes every file whose ``at`` second has come."""
    # Without a readable due argument: due "now", so dispatch handles it (and its reason).
    return due_of(args, now) - now > MAX_EARLY_WAIT


class Outcome(enum.Enum):
    SUCCEEDED = "succeeded"
    RETRYING = "retrying"  # failed; a new spool file for the next attempt was written
    FAILED = "failed"  # failed its last attempt; moved to the failed directory
    QUARANTINED = "quarantined"  # could not run at all (corrupt, unknown task); moved aside
    SKIPPED = "skipped"  # a periodic fire whose previous run is still going (overlap="skip")
    EXPIRED = "expired"  # not started before its expiry (the task's expires): dropped, not run
    NOT_DUE = "not-due"  # left in place to wait
    NOT_OURS = "not-ours"  # not a spoolcron file: someone else's spooler handles it

    @property
    def removes_file(self) -> bool:
        """Whether the caller deletes the file now: it ran (or was skipped) and is done.

        Otherwise it waits in place (NOT_DUE), was moved to the failed directory already
        (FAILED, QUARANTINED), or is not ours to touch (NOT_OURS).
        """
        return self in (Outcome.SUCCEEDED, Outcome.RETRYING, Outcome.SKIPPED, Outcome.EXPIRED)

    @property
    def is_failure(self) -> bool:
        """Whether the job did not do its work this time: it failed (for good or before a
        retry), could not run at all, or expired before it started. Commands exit 1 on it."""
        return self in (Outcome.FAILED, Outcome.RETRYING, Outcome.QUARANTINED, Outcome.EXPIRED)


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    payload: Payload | None = None
    reason: str = ""


def error_of(exc: BaseException) -> dict[str, str]:
    """The framework's TaskError of ``exc``: its class path and its traceback."""
    kind = type(exc)
    return {
        "exception_class_path": f"{kind.__module__}.{kind.__qualname__}",
        "traceback": "".join(traceback.format_exception(exc)),
    }


def _quarantine(path: Path, reason: str) -> None:
    moved = files.quarantine(path, get_settings().failed_dir, reason)
    logger.error("spool file quarantined path=%s reason=%s", moved, reason.splitlines()[0])


def give_up(
    file: SpoolFile,
    reason: str,
    recorder: Recorder,
    *,
    publisher: Publisher | None = None,
    now: Callable[[], float] = time.time,
) -> None:
    """Quarantine a job that is not to be run again, closing its runs and its result first
    (whoever sees the file in the failed directory sees its history final)."""
    payload: Payload | None = None
    if file.is_ours:
        with contextlib.suppress(PayloadError):  # a corrupt file has no job to close
            payload = read_payload(file)
    if payload is not None:
        recorder.refresh()
        recorder.unrunnable(payload, {"exception_class_path": "", "traceback": reason}, now=now())
        recorder.refresh()
        if publisher is not None:
            publisher.settled(payload.job_id)
    _quarantine(file.path, reason)


def _retry_delay(
    task: Task[..., object], attempt: int, *, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before the retry after ``attempt``: the backoff doubling each attempt, capped
    by MAX_RETRY_DELAY, then lengthened by a uniform random fraction of itself from 0 to the
    task's ``retry_jitter`` (``rand`` returns a float in [0, 1))."""
    conf = get_settings()
    backoff = conf.retry_backoff if task.retry_backoff is None else task.retry_backoff
    delay = float(min(backoff * 2 ** (attempt - 1), conf.max_retry_delay))
    return delay * (1 + task.retry_jitter * rand()) if task.retry_jitter else delay


def _unknown(payload: Payload, exc: UnknownTask) -> str:
    if payload.framework is None:
        return str(exc)
    return (
        f"Unknown Django task {payload.task!r}: no @task function of a SpoolerBackend has that "
        "module path in this process (is its module imported, e.g. from an app's tasks.py?)."
    )


def _result_names(task: Task[..., object], payload: Payload) -> tuple[str, str]:
    """The backend alias and queue name of the job's result row."""
    enqueued = payload.framework
    if enqueued is not None:
        return enqueued["backend"], enqueued["queue_name"]
    # A periodic fire of a Django task carries its task's; a plain task has none.
    return task.execution.backend, task.execution.queue_name


def run_spool_file(
    file: SpoolFile,
    recorder: Recorder,
    *,
    publisher: Publisher | None = None,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    as_of: float | None = None,
) -> Result:
    """Run the job in ``file``; the caller removes the file if ``outcome.removes_file``.

    ``as_of`` runs a job due by then at once, as if it were that late (``run-due --until``);
    the times recorded and a retry's due time still follow ``now``.

    Retries are new jobs with a later due time, published like any job (``publisher``:
    default, straight into the spool directory), since uWSGI's own retry would re-run the file
    on every scan, forever; quarantined and failed files are moved to the failed directory.
    Once a job has settled (ran, failed for good, skipped) the publisher's store forgets it.
    """
    if publisher is None:
        conf = get_settings()
        publisher = Publisher(conf.spool_dir, fsync=conf.fsync)
    due_by = now if as_of is None else (lambda: max(now(), as_of))
    # _dispatch opens the recorder's connections as it needs them; they are let go once, at
    # the very end, after the store forgot the job (with CONN_MAX_AGE=0 a refresh in between
    # would cost a new database connection for that one delete).
    try:
        result = _dispatch(file, recorder, publisher, now, sleep, due_by)
        if result.payload is not None and result.outcome in _SETTLED:
            publisher.settled(result.payload.job_id)
    finally:
        recorder.refresh()
    return result


_SETTLED = (
    Outcome.SUCCEEDED,
    Outcome.FAILED,
    Outcome.QUARANTINED,
    Outcome.SKIPPED,
    Outcome.EXPIRED,
)


def _dispatch(
    file: SpoolFile,
    recorder: Recorder,
    publisher: Publisher,
    now: Callable[[], float],
    sleep: Callable[[float], None],
    due_by: Callable[[], float],
) -> Result:
    if not file.is_ours:
        return Result(Outcome.NOT_OURS)
    try:
        payload = admit(file, now=now())
    except PayloadError as exc:
        _quarantine(file.path, str(exc))
        return Result(Outcome.QUARANTINED, reason=str(exc))
    try:
        task = get_task(payload.task)
    except UnknownTask as exc:
        reason = _unknown(payload, exc)
        _quarantine(file.path, reason)
        recorder.refresh()
        recorder.unrunnable(payload, error_of(exc), now=now())
        return Result(Outcome.QUARANTINED, payload, reason)

    if payload.run_after - due_by() > MAX_EARLY_WAIT:
        return Result(Outcome.NOT_DUE, payload)

    expires = payload.expires_at(task.expires)
    recorder.refresh()  # a forked spooler must not use its parent's connections
    if expires is not None and now() > expires:
        return _expired(payload, task, recorder, expires, now)
    return _run(file, payload, task, recorder, publisher, now, sleep, due_by)


def _run(
    file: SpoolFile,
    payload: Payload,
    task: Task[..., object],
    recorder: Recorder,
    publisher: Publisher,
    now: Callable[[], float],
    sleep: Callable[[float], None],
    due_by: Callable[[], float],
) -> Result:
    # The overlap check (a query) runs in the moment the waker leaves before the instant;
    # the task starts at the instant, never before.
    if payload.entry and payload.overlap == "skip":
        running = recorder.previous_still_running(payload)
        if running is not None:
            reason = (
                f"Entry {payload.entry!r} skipped its fire: its previous run "
                f"(job {running!r}) is still running."
            )
            logger.warning(
                "fire skipped entry=%s job=%s reason=overlap", payload.entry, payload.job_id
            )
            recorder.skipped(payload, reason)
            return Result(Outcome.SKIPPED, payload, reason)

    early = payload.run_after - due_by()
    if early > 0:
        sleep(early)
    started = now()
    logger.info(
        "job started job=%s task=%s attempt=%d late_ms=%.1f",
        payload.job_id,
        payload.task,
        payload.attempt,
        (started - payload.run_after) * 1000,
    )
    backend, queue_name = _result_names(task, payload)
    attempt = recorder.started(payload, backend=backend, queue_name=queue_name, now=started)
    _signal(signals.job_started, task, payload)
    try:
        value = call_with_timeout(
            lambda: task.execution.run(task, payload, attempt.result), task.name, task.timeout
        )
    except Exception as exc:
        return _failed(file, payload, task, recorder, publisher, attempt, exc, now)
    recorder.succeeded(attempt, value, now=now())
    task.execution.finished(task, attempt.result)
    duration = now() - started
    logger.info(
        "job succeeded job=%s task=%s attempt=%d duration_ms=%.1f",
        payload.job_id,
        payload.task,
        payload.attempt,
        duration * 1000,
    )
    _signal(signals.job_succeeded, task, payload, value=value, duration=duration)
    return Result(Outcome.SUCCEEDED, payload)


def _signal(signal: Signal, task: Task[..., object], payload: Payload, **kwargs: object) -> None:
    """Send one of spoolcron's job signals for a ``@spoolcron.task`` (a Django task has the
    framework's own)."""
    if task.framework is None:
        signals.send(
            signal, task, job_id=payload.job_id, payload=payload, attempt=payload.attempt, **kwargs
        )


def _expired(
    payload: Payload,
    task: Task[..., object],
    recorder: Recorder,
    expires: float,
    now: Callable[[], float],
) -> Result:
    """Drop a job not started by its expiry: a skipped run in the history, a failed result
    (``Job.status`` "failed"), no file in the failed directory (nothing to act on)."""
    current = now()
    reason = (
        f"Job {payload.job_id!r} of task {payload.task!r} expired before it started (due "
        f"{current - payload.run_after:.1f} s ago, expired {current - expires:.1f} s ago): "
        "dropped, not run."
    )
    logger.warning(
        "job expired job=%s task=%s late_ms=%.1f expired_ms=%.1f",
        payload.job_id,
        payload.task,
        (current - payload.run_after) * 1000,
        (current - expires) * 1000,
    )
    recorder.skipped(payload, reason)
    recorder.unrunnable(payload, {"exception_class_path": "", "traceback": reason}, now=current)
    _signal(signals.job_expired, task, payload, expires=expires, reason=reason)
    return Result(Outcome.EXPIRED, payload, reason)


def _failed(
    file: SpoolFile,
    payload: Payload,
    task: Task[..., object],
    recorder: Recorder,
    publisher: Publisher,
    attempt: Attempt,
    exc: Exception,
    now: Callable[[], float],
) -> Result:
    """The end of an attempt that raised ``exc`` (called in the handler, so the execution's
    receivers see ``exc_info``)."""
    error = error_of(exc)
    unwritten = ""
    retried = task.retries_on(exc)
    if payload.attempt <= task.retries and retried:
        delay = _retry_delay(task, payload.attempt)
        retry_at = now() + delay
        try:
            publisher.publish(payload.next_attempt(retry_at))
        except Exception as write_error:  # a full disk, a database that is away...
            # No next attempt exists: this one is the last, or the job would wait forever.
            unwritten = f" Its retry could not be written: {write_error}"
        else:
            # With the exception and its traceback, so log-based alerting (Sentry's logging
            # integration, ...) sees every failed attempt.
            logger.warning(
                "job failed, will retry job=%s task=%s attempt=%d retry_in_s=%.1f error=%s",
                payload.job_id,
                payload.task,
                payload.attempt,
                delay,
                one_line(exc),
                exc_info=exc,
            )
            recorder.retrying(attempt, error, now=now(), retry_at=retry_at)
            _signal(
                signals.job_retrying, task, payload, exception=exc, retry_at=retry_at, delay=delay
            )
            return Result(Outcome.RETRYING, payload, error["traceback"])
    if not retried and payload.attempt <= task.retries:
        unwritten = f" {type(exc).__qualname__} is not in its retry_on: not retried."
    reason = (
        f"Task {payload.task!r} failed on attempt {payload.attempt} of "
        f"{task.retries + 1}.{unwritten}\n{error['traceback']}"
    )
    logger.error(
        "job failed job=%s task=%s attempt=%d of %d error=%s",
        payload.job_id,
        payload.task,
        payload.attempt,
        task.retries + 1,
        one_line(exc),
        exc_info=exc,
    )
    _quarantine(file.path, reason)
    if unwritten:
        error = {**error, "traceback": f"{unwritten.strip()}\n{error['traceback']}"}
    recorder.failed(attempt, error, now=now())
    task.execution.finished(task, attempt.result)
    _signal(signals.job_failed, task, payload, exception=exc, reason=reason)
    return Result(Outcome.FAILED, payload, reason)
