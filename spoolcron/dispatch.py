"""Runs one spool file: decode, look up the task, execute, retry with backoff or quarantine.

Used by the uWSGI spooler callable (spoolcron.uwsgi) and by ``run_due`` in plain processes.
Whatever cannot run is moved to the failed directory with its reason: never retried forever,
never silently deleted. Each attempt is recorded twice: in the run history (``history``, one
row per attempt) and in the job's result (``results``, one row per job); a Django ``@task``
also gets the framework's task_started/task_finished signals (``backends``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import close_old_connections

from . import history, results, spoolfile
from .conf import get_settings
from .exceptions import UnknownTask
from .models import JobResult, Run
from .payload import Payload, PayloadError, read_payload, write_payload
from .registry import FRAMEWORK_META_KEY, Task, get_task

__all__ = ["Outcome", "Result", "give_up", "run_spool_file"]

logger = logging.getLogger("spoolcron.dispatch")

# uWSGI's `at` is the file's mtime, compared in whole seconds: a spooler woken for one job
# also picks up the others due later in the same second. Sleeping until those are due would
# hold up the jobs behind them, so a file more than a moment early goes back to wait, and the
# waker wakes the spooler again at its own instant.
MAX_EARLY_WAIT = 0.02


class Outcome(enum.Enum):
    SUCCEEDED = "succeeded"
    RETRYING = "retrying"  # failed; a new spool file for the next attempt was written
    FAILED = "failed"  # failed its last attempt; moved to the failed directory
    QUARANTINED = "quarantined"  # could not run at all (corrupt, unknown task); moved aside
    SKIPPED = "skipped"  # a periodic fire whose previous run is still going (overlap="skip")
    NOT_DUE = "not-due"  # left in place to wait
    NOT_OURS = "not-ours"  # not a spoolcron file: someone else's spooler handles it


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    payload: Payload | None = None
    reason: str = ""


def _quarantine(path: Path, reason: str) -> None:
    conf = get_settings()
    moved = spoolfile.quarantine(path, conf.failed_dir, reason)
    logger.error("spool file quarantined path=%s reason=%s", moved, reason.splitlines()[0])


def give_up(
    file: spoolfile.SpoolFile, reason: str, *, now: Callable[[], float] = time.time
) -> None:
    """Quarantine a job that is not to be run again, closing its runs and its result first
    (whoever sees the file in the failed directory sees its history final)."""
    payload: Payload | None = None
    if file.is_ours:
        with contextlib.suppress(PayloadError):  # a corrupt file has no job to close
            payload = read_payload(file)
    if payload is not None:
        close_old_connections()
        history.mark_interrupted(payload.job_id, reason)
        results.record_unrunnable(
            payload, {"exception_class_path": "", "traceback": reason}, now=now()
        )
        close_old_connections()
    _quarantine(file.path, reason)


def _retry_delay(task: Task[..., object], attempt: int) -> float:
    conf = get_settings()
    backoff = conf.retry_backoff if task.retry_backoff is None else task.retry_backoff
    return float(min(backoff * 2 ** (attempt - 1), conf.max_retry_delay))


def _execute(task: Task[..., object], payload: Payload) -> object:
    result = task.func(*payload.args, **payload.kwargs)
    if inspect.isawaitable(result):
        # The spooler has no event loop of its own: run the coroutine to completion here.
        async def wait() -> object:
            return await result

        return asyncio.run(wait())
    return result


def _unknown(payload: Payload, exc: UnknownTask) -> str:
    if FRAMEWORK_META_KEY not in payload.meta:
        return str(exc)
    return (
        f"Unknown Django task {payload.task!r}: no @task function of a SpoolerBackend has that "
        "module path in this process (is its module imported, e.g. from an app's tasks.py?)."
    )


def _result_names(task: Task[..., object], payload: Payload) -> tuple[str, str]:
    """The backend alias and queue name of the job's result row."""
    enqueued = payload.meta.get(FRAMEWORK_META_KEY)
    if isinstance(enqueued, dict):
        return str(enqueued.get("backend", "")), str(enqueued.get("queue_name", ""))
    if task.framework is not None:  # a periodic fire of a Django task
        return str(task.framework.backend), str(task.framework.queue_name)
    return "", ""


def run_spool_file(
    file: spoolfile.SpoolFile,
    *,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Result:
    """Run the job in ``file``. The caller removes the file unless the outcome is NOT_DUE/NOT_OURS.

    Retries are new spool files with a later ``at`` (uWSGI's own retry would re-run the file on
    every scan, forever); quarantined and failed files are moved to the failed directory.
    """
    if not file.is_ours:
        return Result(Outcome.NOT_OURS)
    try:
        payload = read_payload(file)
    except PayloadError as exc:
        _quarantine(file.path, str(exc))
        return Result(Outcome.QUARANTINED, reason=str(exc))
    try:
        task = get_task(payload.task)
    except UnknownTask as exc:
        reason = _unknown(payload, exc)
        _quarantine(file.path, reason)
        close_old_connections()
        results.record_unrunnable(payload, results.error_of(exc), now=now())
        close_old_connections()
        return Result(Outcome.QUARANTINED, payload, reason)

    early = payload.run_after - now()
    if early > MAX_EARLY_WAIT:
        return Result(Outcome.NOT_DUE, payload)
    if early > 0:
        sleep(early)

    close_old_connections()  # a forked spooler must not reuse the parent's connections
    if payload.entry and payload.meta.get("overlap", "skip") == "skip":
        running = history.previous_still_running(payload)
        if running is not None:
            reason = (
                f"Entry {payload.entry!r} skipped its fire: its previous run "
                f"(job {running.job_id!r}) is still running."
            )
            logger.warning(
                "fire skipped entry=%s job=%s reason=overlap", payload.entry, payload.job_id
            )
            history.record_skipped(payload, reason)
            close_old_connections()
            return Result(Outcome.SKIPPED, payload, reason)

    started = now()
    logger.info(
        "job started job=%s task=%s attempt=%d late_ms=%.1f",
        payload.job_id,
        payload.task,
        payload.attempt,
        (started - payload.run_after) * 1000,
    )
    run_id = history.start_run(payload)
    backend, queue_name = _result_names(task, payload)
    state = results.start(payload, backend=backend, queue_name=queue_name, now=started)
    framework: Any = None  # the framework's TaskResult, for a Django task
    try:
        if task.framework is None:
            value = _execute(task, payload)
        else:
            from . import backends

            framework = backends.run_started(task, state)
            value = backends.run_task(framework, payload.args, payload.kwargs)
    except Exception as exc:
        error = traceback.format_exc()
        if payload.attempt <= task.retries:
            delay = _retry_delay(task, payload.attempt)
            retry_at = now() + delay
            write_payload(
                get_settings().spool_dir,
                payload.next_attempt(retry_at),
                fsync=get_settings().fsync,
            )
            logger.warning(
                "job failed, will retry job=%s task=%s attempt=%d retry_in_s=%.1f",
                payload.job_id,
                payload.task,
                payload.attempt,
                delay,
            )
            history.finish_run(run_id, Run.Outcome.RETRYING, error)
            results.finish(
                state,
                JobResult.Status.READY,
                now=now(),
                error=results.error_of(exc),
                retry_at=retry_at,
            )
            return Result(Outcome.RETRYING, payload, error)
        reason = (
            f"Task {payload.task!r} failed on attempt {payload.attempt} of "
            f"{task.retries + 1}.\n{error}"
        )
        _quarantine(file.path, reason)
        history.finish_run(run_id, Run.Outcome.FAILED, error)
        results.finish(state, JobResult.Status.FAILED, now=now(), error=results.error_of(exc))
        if framework is not None:
            from . import backends

            backends.run_finished(framework, state)  # in the handler: receivers see exc_info
        return Result(Outcome.FAILED, payload, reason)
    else:
        history.finish_run(run_id, Run.Outcome.SUCCEEDED)
        results.finish(state, JobResult.Status.SUCCESSFUL, now=now(), return_value=value)
        if framework is not None:
            from . import backends

            backends.run_finished(framework, state)
    finally:
        close_old_connections()
    logger.info(
        "job succeeded job=%s task=%s attempt=%d duration_ms=%.1f",
        payload.job_id,
        payload.task,
        payload.attempt,
        (now() - started) * 1000,
    )
    return Result(Outcome.SUCCEEDED, payload)
