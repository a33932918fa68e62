"""``DatabaseRecorder``: the dispatcher's Recorder on the database, run history beside results.

Each attempt is recorded twice: in the run history (``history``, one ``Run`` row per attempt)
and in the job's result (``results``, one ``JobResult`` row per job).

No commit stands between a job's due instant and its task's first line. ``started`` returns
at once, with the job's row as it will read once the start is recorded (built from the
payload, see ``results.running_row``), and the start is written after the task has begun:

* a task still running ``start_delay`` seconds (50 ms) after it started gets its "running"
  ``Run`` row and its RUNNING ``JobResult`` row from this process's background thread, in one
  transaction, within ``IDLE_LOOK`` (250 ms) more: nothing wakes that thread as the task
  starts, since on a busy machine the thread taking the GIL (and a CPU) then delayed first
  lines by milliseconds; its end is written when it returns, as before;
* a task that returns before then gets its start and its end written together, in ONE
  transaction, after it returned (a task that ends that fast was never seen running).

What each guarantee becomes:

* **Overlap** (``overlap="skip"``): a periodic entry fires at most once a second, and a run
  that lasts has its "running" row committed at most 300 ms after it began, so the next
  fire's check (which still reads the history before its task starts) sees it. A run whose
  row is not written yet is one that began less than that before: only a fire of the same
  entry due within that window could miss it -- a missed fire caught up at once beside the
  run of the next one, with ``--spooler-processes`` above 1 (one spooler runs files one after
  another). The check always read before it wrote, with no lock: that race existed already,
  shorter.
* **Job.status "running"** and the RUNNING result: from 50-300 ms into the run; a task that
  ends sooner goes from waiting to its end.
* **Runs killed mid-run are closed on the next attempt** (``history.mark_interrupted``): a run
  killed after its row was written is closed as before; one killed before that left no
  row, so no run is left "running" for it (the start counter of the spool file still counts
  the start, and the job runs again). uWSGI's spooler passes ``restarted=False`` when that
  counter saw no earlier start of the file; if the job's result row counts no earlier
  start either (a start is written with its run, in one transaction), no run of it can be
  left, and the end of a quick task is its two INSERTs alone (the result row is inserted
  without a read first; if one exists after all, it is read and merged into).
* **Ends written later when the database was away** (``history._unrecorded``): unchanged for
  runs whose start was written. A run written whole at its end was never "running" in the
  database, so it cannot be taken for one its process abandoned; if that one transaction
  fails, neither its start nor its end is recorded (as when both failed before).
* **The Tasks framework**: the row the task's signals and context see at start is the payload's
  (exact for a first attempt; a retry's earlier errors show from its end on, when the written
  row -- read back from the database -- replaces it in ``Attempt.result``).

Django connections are per thread: the background thread closes its own after each write.
``start_delay=None`` records every start synchronously, before the task, as earlier releases.
"""

from __future__ import annotations

import collections
import enum
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, close_old_connections, connections, transaction

from ..core.payload import Payload
from ..core.protocols import Attempt
from . import history, results
from .ledger import DatabaseLedger
from .models import JobResult, Run

__all__ = ["IDLE_LOOK", "START_DELAY", "DatabaseRecorder"]

logger = logging.getLogger("spoolcron.recorder")

START_DELAY = 0.05
"""Seconds a task runs before its start is written by the background thread."""

IDLE_LOOK = 0.25
"""How often the idle background thread looks for starts to write: at a quarter second plus
an eighth (x.125, x.375, ...), away from the whole seconds periodic entries fire at. A task
running longer than START_DELAY has its start written within START_DELAY + IDLE_LOOK."""

_PENDING, _WRITING, _WRITTEN, _FAILED, _CANCELLED = range(5)


def _idle_wait(now: float) -> float:
    """Seconds until the next x.125 + k * IDLE_LOOK instant."""
    phase = (now - IDLE_LOOK / 2) % IDLE_LOOK
    return IDLE_LOOK - phase


class _Default(enum.Enum):
    START_DELAY = "START_DELAY"


@dataclass
class _Start:
    """The start of one attempt, until it is written (or written with its end)."""

    payload: Payload
    backend: str
    queue_name: str
    started: float
    row: JobResult
    deadline: float = 0.0  # time.monotonic() from which the background thread writes it
    state: int = _PENDING
    run_id: int | None = None
    saved: JobResult | None = field(default=None, repr=False)


def _write_start(start: _Start) -> None:
    """The start's Run and JobResult rows, in one transaction; DatabaseError propagates."""
    history.flush_unrecorded()
    with transaction.atomic():
        start.run_id = history.record_started_run(start.payload, started=start.started)
        start.saved = results.record_start(
            start.payload, backend=start.backend, queue_name=start.queue_name, now=start.started
        )


class _StartWriter:
    """This process's background thread writing the starts of tasks that run a while."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: collections.deque[_Start] = collections.deque()
        self._thread = threading.Thread(
            target=self._loop, name="spoolcron-start-writer", daemon=True
        )
        self._thread.start()

    def submit(self, start: _Start, delay: float) -> None:
        start.deadline = time.monotonic() + delay
        # No notify: waking the thread now would have it take the GIL (and, on a busy
        # machine, a CPU) just as the task starts; it looks at the queue on its own.
        with self._cond:
            self._queue.append(start)

    def settle(self, start: _Start) -> bool:
        """The attempt ended: whether its start was written (waiting for a write under way);
        False means it never will be, the caller writes start and end together."""
        with self._cond:
            if start.state == _PENDING:
                start.state = _CANCELLED
                return False
            while start.state == _WRITING:
                self._cond.wait()
            return start.state == _WRITTEN

    def _next(self) -> _Start:
        with self._cond:
            while True:
                if not self._queue:
                    self._cond.wait(_idle_wait(time.time()))
                    continue
                start = self._queue[0]
                if start.state != _PENDING:
                    self._queue.popleft()
                    continue
                remaining = start.deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)  # woken early if it is settled meanwhile
                    continue
                self._queue.popleft()
                start.state = _WRITING
                return start

    def _loop(self) -> None:
        while True:
            start = self._next()
            state = _FAILED
            try:
                _write_start(start)
                state = _WRITTEN
            except DatabaseError:
                logger.exception(
                    "could not record the start of job=%s; it is written with its end",
                    start.payload.job_id,
                )
            except Exception:
                logger.exception("could not record the start of job=%s", start.payload.job_id)
            finally:
                connections.close_all()  # this thread's own: Django's are per thread
                with self._cond:
                    start.state = state
                    self._cond.notify_all()


_writer: _StartWriter | None = None
_writer_pid = 0
_writer_lock = threading.Lock()


def _start_writer() -> _StartWriter:
    """This process's writer, started on first use (a forked child starts its own)."""
    global _writer, _writer_pid
    with _writer_lock:
        if _writer is None or _writer_pid != os.getpid():
            _writer = _StartWriter()
            _writer_pid = os.getpid()
        return _writer


class DatabaseRecorder:
    """Writes through Django's ORM on the default database (see the module doc for when)."""

    def __init__(
        self,
        *,
        start_delay: float | _Default | None = _Default.START_DELAY,
        restarted: bool = True,
    ) -> None:
        # The module's START_DELAY read now, so a test can set it for recorders made elsewhere.
        if isinstance(start_delay, _Default):
            start_delay = START_DELAY
        self.start_delay = start_delay
        # False: the caller counted no earlier start of the job's spool file (uWSGI's spooler,
        # see spool.starts), so no run of it can be left "running" and the end of a fast task
        # skips closing such runs -- one statement less in the moment after each task, while
        # a job due now may wait for this spooler.
        self.restarted = restarted
        # Started here, before the job is due, so the first job does not pay for it.
        self._writer = _start_writer() if start_delay is not None else None

    def refresh(self) -> None:
        # A forked spooler must not reuse its parent's connections, nor a task's broken one.
        close_old_connections()

    def previous_still_running(self, payload: Payload) -> str | None:
        run = history.previous_still_running(payload)
        return None if run is None else run.job_id

    def skipped(self, payload: Payload, reason: str) -> None:
        history.record_skipped(payload, reason)

    def started(self, payload: Payload, *, backend: str, queue_name: str, now: float) -> Attempt:
        row = results.running_row(payload, backend=backend, queue_name=queue_name, now=now)
        start = _Start(payload, backend, queue_name, now, row)
        if self._writer is None or self.start_delay is None:
            start.run_id = history.start_run(payload, started=now)
            start.saved = results.start(payload, backend=backend, queue_name=queue_name, now=now)
            start.state = _WRITTEN
            return Attempt(run=start, result=start.saved)
        self._writer.submit(start, self.start_delay)
        return Attempt(run=start, result=row)

    def _end(
        self,
        attempt: Attempt,
        outcome: str,
        status: str,
        *,
        now: float,
        error: dict[str, str] | None = None,
        **end: Any,
    ) -> None:
        start: _Start = attempt.run
        traceback = "" if error is None else error["traceback"]
        written = start.state == _WRITTEN or (
            self._writer is not None and self._writer.settle(start)
        )
        if written:
            history.finish_run(start.run_id, outcome, traceback)
            if start.saved is not None:
                attempt.result = start.saved
            results.finish(attempt.result, status, now=now, error=error, **end)
            return
        history.flush_unrecorded()
        try:
            payload = start.payload
            # No row to read first, unless a process started the job before, or it is a
            # retry, or the Tasks backend wrote its READY row at enqueue.
            fresh = not self.restarted and payload.attempt == 1 and payload.framework is None

            def result() -> JobResult:
                return results.record_attempt(
                    payload,
                    backend=start.backend,
                    queue_name=start.queue_name,
                    started=start.started,
                    status=status,
                    now=now,
                    error=error,
                    fresh=fresh,
                    **end,
                )

            def run(close_interrupted: bool) -> int:
                return history.record_ended_run(
                    payload,
                    started=start.started,
                    outcome=outcome,
                    error=traceback,
                    close_interrupted=close_interrupted,
                )

            # Each order writes before it reads: in SQLite a transaction that reads first
            # cannot wait for another writer's lock, it fails at once.
            with transaction.atomic():
                if fresh:
                    row = result()  # an INSERT, or on a conflict the read of the row there
                    # A row that counts an earlier start holds one some process recorded,
                    # maybe with a run it left "running" (its host's spooler died, another
                    # host's store took the job over): close those.
                    start.run_id = run(close_interrupted=row.attempts > 1)
                else:
                    start.run_id = run(close_interrupted=True)
                    row = result()
            attempt.result = row
        except DatabaseError:
            logger.exception("could not record the run of job=%s", start.payload.job_id)
            results.apply_end(attempt.result, status, now=now, error=error, **end)

    def succeeded(self, attempt: Attempt, value: object, *, now: float) -> None:
        self._end(
            attempt,
            Run.Outcome.SUCCEEDED,
            JobResult.Status.SUCCESSFUL,
            now=now,
            return_value=value,
        )
        _count_outcome(attempt.run.payload, failed=False)

    def retrying(
        self, attempt: Attempt, error: dict[str, str], *, now: float, retry_at: float
    ) -> None:
        self._end(
            attempt,
            Run.Outcome.RETRYING,
            JobResult.Status.READY,
            now=now,
            error=error,
            retry_at=retry_at,
        )

    def failed(self, attempt: Attempt, error: dict[str, str], *, now: float) -> None:
        self._end(attempt, Run.Outcome.FAILED, JobResult.Status.FAILED, now=now, error=error)
        _count_outcome(attempt.run.payload, failed=True)

    def unrunnable(self, payload: Payload, error: dict[str, str], *, now: float) -> None:
        history.mark_interrupted(payload.job_id, error["traceback"])
        results.record_unrunnable(payload, error, now=now)


def _count_outcome(payload: Payload, *, failed: bool) -> None:
    """``pause_after_failures``: a periodic fire of an entry that has it failed for good (its
    last attempt) or succeeded. Counted in the database, so every host's runs add up."""
    limit = payload.pause_after_failures
    if payload.entry is None or limit is None:
        return
    try:
        if failed:
            # Paused at the time of the pause (after the run's end was written).
            DatabaseLedger().fire_failed(payload.entry, limit)
        else:
            DatabaseLedger().fire_succeeded(payload.entry)
    except DatabaseError:
        logger.exception("could not count the outcome of entry=%s", payload.entry)
