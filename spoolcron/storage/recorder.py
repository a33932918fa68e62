"""``DatabaseRecorder``: the dispatcher's Recorder on the database, run history beside results.

Each attempt is recorded twice: in the run history (``history``, one ``Run`` row per attempt)
and in the job's result (``results``, one ``JobResult`` row per job).
"""

from __future__ import annotations

from django.db import close_old_connections

from ..core.payload import Payload
from ..core.protocols import Attempt
from . import history, results
from .models import JobResult, Run

__all__ = ["DatabaseRecorder"]


class DatabaseRecorder:
    """Writes through Django's ORM on the default database."""

    def refresh(self) -> None:
        # A forked spooler must not reuse its parent's connections, nor a task's broken one.
        close_old_connections()

    def previous_still_running(self, payload: Payload) -> str | None:
        run = history.previous_still_running(payload)
        return None if run is None else run.job_id

    def skipped(self, payload: Payload, reason: str) -> None:
        history.record_skipped(payload, reason)

    def started(self, payload: Payload, *, backend: str, queue_name: str, now: float) -> Attempt:
        run_id = history.start_run(payload)
        row = results.start(payload, backend=backend, queue_name=queue_name, now=now)
        return Attempt(run=run_id, result=row)

    def succeeded(self, attempt: Attempt, value: object, *, now: float) -> None:
        history.finish_run(attempt.run, Run.Outcome.SUCCEEDED)
        results.finish(attempt.result, JobResult.Status.SUCCESSFUL, now=now, return_value=value)

    def retrying(
        self, attempt: Attempt, error: dict[str, str], *, now: float, retry_at: float
    ) -> None:
        history.finish_run(attempt.run, Run.Outcome.RETRYING, error["traceback"])
        results.finish(
            attempt.result, JobResult.Status.READY, now=now, error=error, retry_at=retry_at
        )

    def failed(self, attempt: Attempt, error: dict[str, str], *, now: float) -> None:
        history.finish_run(attempt.run, Run.Outcome.FAILED, error["traceback"])
        results.finish(attempt.result, JobResult.Status.FAILED, now=now, error=error)

    def unrunnable(self, payload: Payload, error: dict[str, str], *, now: float) -> None:
        history.mark_interrupted(payload.job_id, error["traceback"])
        results.record_unrunnable(payload, error, now=now)
