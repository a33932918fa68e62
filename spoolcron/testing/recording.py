"""Recording mode: enqueueing keeps jobs in memory instead of writing spool files.

``recording()`` swaps the Publisher that ``spoolcron.jobs`` uses for a
:class:`RecordingPublisher` until the block ends; ``schedule()``, ``schedule_many()``,
``Task.delay()``, the Tasks backend and the dispatcher's retries then put their jobs in its
list. Nothing changes while it is off (one ``is None`` test per enqueue).

Jobs are recorded when ``schedule()`` is called, inside a transaction or not: a test's
transaction never commits, so waiting for it (as ``SPOOLCRON["ON_COMMIT"]`` does in production)
would record nothing.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import jobs as _jobs
from ..core.payload import Payload
from ..core.registry import Task, resolve_task
from ..core.times import utc
from ..runtime.dispatch import Result
from ..runtime.publish import Publisher
from ..runtime.runner import run_file
from ..spool import files
from ..spool.payloads import write_payload

__all__ = [
    "EnqueuedJob",
    "RecordingPublisher",
    "TaskLike",
    "clear",
    "enqueued_jobs",
    "recording",
    "run_enqueued",
]

MAX_ROUNDS = 1000
"""How many rounds of jobs enqueueing jobs :func:`run_enqueued` runs before it gives up."""


@dataclass(frozen=True)
class EnqueuedJob:
    """One job enqueued while recording: what its spool file would have held."""

    payload: Payload

    @property
    def id(self) -> str:
        return self.payload.job_id

    @property
    def task(self) -> str:
        """The task's name (its dotted path)."""
        return self.payload.task

    @property
    def args(self) -> list[Any]:
        return list(self.payload.args)

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.payload.kwargs)

    @property
    def run_after(self) -> datetime:
        """When it is due, an aware datetime in UTC."""
        return utc(self.payload.run_after)

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self.payload.meta)

    @property
    def entry(self) -> str | None:
        """The periodic entry whose fire this is (``run_due`` in recording mode), else None."""
        return self.payload.entry

    @property
    def attempt(self) -> int:
        return self.payload.attempt


TaskLike = Task[Any, Any] | Callable[..., Any] | str
"""A task, its function or its dotted name."""


def task_name(task: TaskLike) -> str:
    """The registered name of ``task`` (a task, its function or its dotted name)."""
    if isinstance(task, str):
        return task
    return resolve_task(task).name


def _recorder() -> Any:
    # models: only once Django's apps are ready. A synchronous start: no writer thread, which
    # would wait on a clock that freezegun may have stopped.
    from ..storage.recorder import DatabaseRecorder

    return DatabaseRecorder(start_delay=None)


class RecordingPublisher(Publisher):
    """A Publisher that keeps jobs in :attr:`jobs` (oldest enqueued first); with
    ``immediate`` it runs each job at once instead, whatever its ``run_after``."""

    def __init__(self, *, immediate: bool = False) -> None:
        self._scratch = Path(tempfile.mkdtemp(prefix="spoolcron-recorded-"))
        super().__init__(self._scratch, None, horizon=float("inf"))
        self.immediate = immediate
        self.jobs: list[EnqueuedJob] = []
        self.results: list[Result] = []
        """What ran while recording (``run_enqueued``, ``run_due``, immediate mode)."""
        self._running = False

    def close(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)

    # --- the Publisher's side ---------------------------------------------------------------

    def publish_many(
        self, jobs: Sequence[tuple[Payload, bytes]], *, now: float | None = None
    ) -> None:
        self.jobs.extend(EnqueuedJob(payload) for payload, _ in jobs)
        if self.immediate and not self._running:
            # Jobs a running job enqueues (its retry included) run after it, not inside it.
            self.run_selected(lambda job: True, clock=lambda: time.time(), as_if_due=True)

    def store_holds(self, job_id: str, due: float | None = None) -> bool:
        return any(job.id == job_id for job in self.jobs)

    def cancel_stored(self, job_id: str, due: float | None = None) -> bool:
        before = len(self.jobs)
        self.jobs = [job for job in self.jobs if job.id != job_id]
        return len(self.jobs) < before

    # --- the test's side -----------------------------------------------------------------

    def all(self, task: TaskLike | None = None) -> list[EnqueuedJob]:
        """The jobs enqueued and not run yet, oldest first; only ``task``'s if given."""
        if task is None:
            return list(self.jobs)
        name = task_name(task)
        return [job for job in self.jobs if job.task == name]

    def clear(self) -> None:
        """Forget the recorded jobs."""
        self.jobs.clear()

    def run(self, task: TaskLike | None = None) -> list[Result]:
        """Run the recorded jobs (only ``task``'s if given), oldest due first, each as if its
        ``run_after`` had come; then the jobs they enqueue (retries too) until none is left."""
        name = None if task is None else task_name(task)
        return self.run_selected(
            lambda job: name is None or job.task == name, clock=lambda: time.time(), as_if_due=True
        )

    def __len__(self) -> int:
        return len(self.jobs)

    def __iter__(self) -> Iterator[EnqueuedJob]:
        return iter(list(self.jobs))

    def run_selected(
        self,
        select: Callable[[EnqueuedJob], bool],
        *,
        clock: Callable[[], float],
        as_if_due: bool,
    ) -> list[Result]:
        """Run the recorded jobs ``select`` picks, oldest due first, and then those that they
        enqueue and ``select`` picks, until none is left. ``as_if_due``: each runs as if the
        clock said its due time (else one not due by ``clock()`` is not picked)."""
        ran: list[Result] = []
        self._running = True
        try:
            for _ in range(MAX_ROUNDS):
                chosen = [
                    job
                    for job in self.jobs
                    if select(job) and (as_if_due or job.payload.run_after <= clock())
                ]
                if not chosen:
                    return ran
                chosen.sort(key=lambda job: job.payload.run_after)
                picked = {job.id for job in chosen}
                self.jobs = [job for job in self.jobs if job.id not in picked]
                for job in chosen:
                    result = self._run_one(job, clock, as_if_due=as_if_due)
                    if result is not None:
                        ran.append(result)
                        self.results.append(result)
        finally:
            self._running = False
        raise RuntimeError(
            f"Recorded jobs still enqueue jobs after {MAX_ROUNDS} rounds: a task that "
            "enqueues itself forever?"
        )

    def _run_one(
        self, job: EnqueuedJob, clock: Callable[[], float], *, as_if_due: bool
    ) -> Result | None:
        # Through a real spool file, locked and run by the same code as the worker's, so
        # a failed job lands in the failed directory with its reason, as it would.
        files.ensure_dir(self._scratch)
        path = write_payload(self._scratch, job.payload)
        due = job.payload.run_after

        def now() -> float:
            current = clock()
            return max(current, due) if as_if_due else current

        try:
            return run_file(path, _recorder(), self, now=now)
        finally:
            path.unlink(missing_ok=True)


def active() -> RecordingPublisher:
    """The recording publisher in use; a clear error when recording is off."""
    current = _jobs._recording
    if not isinstance(current, RecordingPublisher):
        raise RuntimeError(
            "spoolcron.testing: recording mode is off; use `with spoolcron.testing.recording():`"
            " or the spoolcron_jobs pytest fixture."
        )
    return current


@contextlib.contextmanager
def recording(*, immediate: bool = False) -> Iterator[RecordingPublisher]:
    """Record jobs instead of writing spool files until the block ends (``immediate``: run
    each at once, as Django's ImmediateBackend does). Blocks nest; the outer one comes back."""
    previous = _jobs._recording
    publisher = RecordingPublisher(immediate=immediate)
    _jobs._recording = publisher
    try:
        yield publisher
    finally:
        _jobs._recording = previous
        publisher.close()


def enqueued_jobs(task: TaskLike | None = None) -> list[EnqueuedJob]:
    """The jobs enqueued and not run yet, oldest first; only ``task``'s if given."""
    return active().all(task)


def clear() -> None:
    """Forget the recorded jobs."""
    active().clear()


def run_enqueued(task: TaskLike | None = None) -> list[Result]:
    """Run the recorded jobs (only ``task``'s if given) oldest due first, each as if its
    ``run_after`` had come, then the jobs they enqueue (retries too) until none is left."""
    return active().run(task)
