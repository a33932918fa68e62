"""Operations on pending jobs: list them (a page at a time from the store), cancel one."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

from django.utils import timezone

from ..conf import DEFAULT_QUEUE, get_settings
from ..core.payload import Payload, job_file_prefix
from ..core.times import utc
from ..exceptions import JobNotFound
from ..jobs import Job, JobStatus, publisher
from ..queues import local_job_files, local_spooled
from ..spool import files, locks
from ..spool.payloads import payload_at

__all__ = ["PendingJob", "PendingList", "cancel_job", "pending", "spooled"]

logger = logging.getLogger("spoolcron.operations")


@dataclass(frozen=True)
class PendingJob:
    """A job waiting in (or being run from) the spool directory, or waiting in the store."""

    id: str
    task: str
    due: datetime
    status: JobStatus
    attempt: int
    entry: str | None
    """The periodic entry that fired it; None for one-off jobs."""
    path: Path | None
    """Its spool file; None while it waits in the pending store."""
    place: str = "spool"
    """Where it waits: "spool" (due soon, or running; "spool:NAME" in a queue other than the
    default), or the store: "files", "database"."""
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    """``{"entry_manual_run": NAME}`` for a run of an entry enqueued by hand."""
    queue: str = DEFAULT_QUEUE

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``due`` in ISO 8601 in the current time zone, ``path`` a str or None
        (None while the job waits in the pending store)."""
        return {
            "id": self.id,
            "task": self.task,
            "due": timezone.localtime(self.due).isoformat(),
            "status": self.status,
            "attempt": self.attempt,
            "entry": self.entry,
            "place": self.place,
            "queue": self.queue,
            "path": None if self.path is None else str(self.path),
        }


def _pending_job(payload: Payload, path: Path | None, place: str) -> PendingJob:
    return PendingJob(
        id=payload.job_id,
        task=payload.task,
        due=datetime.fromtimestamp(payload.run_after, UTC),
        status="running" if path is not None and locks.is_locked(path) else "pending",
        attempt=payload.attempt,
        entry=payload.entry,
        path=path,
        place=place,
        args=payload.args,
        kwargs=payload.kwargs,
        meta=payload.meta,
        queue=payload.queue or DEFAULT_QUEUE,
    )


def spooled() -> list[PendingJob]:
    """The jobs in each local queue's spool directory, one-off jobs and periodic fires,
    soonest first."""
    found = [
        _pending_job(payload, path, "spool" if name == DEFAULT_QUEUE else f"spool:{name}")
        for name, path, payload in local_spooled(get_settings())
    ]
    return sorted(found, key=lambda job: (job.due, job.id))


class PendingList(Sequence[PendingJob]):
    """Every pending job -- the spool directory's, then the store's, each soonest first --
    read a page at a time: a million jobs in the store are never all loaded (Paginator
    takes its ``count()`` and slices)."""

    def __init__(self) -> None:
        self.spooled = spooled()
        self.store = publisher().store
        self._count: int | None = None

    def count(self, value: object = None) -> int:
        if value is not None:
            return super().count(value)
        if self._count is None:
            stored = self.store.count() if self.store is not None else 0
            self._count = len(self.spooled) + stored
        return self._count

    def __len__(self) -> int:
        return self.count()

    @overload
    def __getitem__(self, index: int) -> PendingJob: ...
    @overload
    def __getitem__(self, index: slice) -> list[PendingJob]: ...
    def __getitem__(self, index: int | slice) -> PendingJob | list[PendingJob]:
        if isinstance(index, int):
            found = self[index : index + 1] if index >= 0 else list(self)[index:]
            if not found:
                raise IndexError(index)
            return found[0]
        start, stop, step = index.indices(len(self))
        if step != 1:
            return list(self)[index]
        head = self.spooled[start:stop]
        if self.store is None or stop <= len(self.spooled):
            return head
        offset = max(0, start - len(self.spooled))
        rest = self.store.waiting(offset=offset, limit=stop - start - len(head))
        return head + [_pending_job(p, None, self.store.name) for p in rest]


def pending(*, limit: int | None = None) -> list[PendingJob]:
    """Pending jobs: the spool directory's, then the pending store's, each soonest first;
    at most ``limit``."""
    jobs = PendingList()
    return jobs[: len(jobs) if limit is None else limit]


def cancel_job(job_id: str) -> Job:
    """Remove a pending job from the spool directory and return its handle.

    Raises :class:`JobNotFound` when no such job is pending, and
    :class:`~spoolcron.JobRunning` when a spooler is running it.
    """
    router = publisher()
    waiting = router.store.get(job_id) if router.store is not None else None
    if waiting is not None and router.cancel_stored(job_id, waiting.run_after):
        from ..storage import results  # models: only once Django's apps are ready

        logger.info("job cancelled job=%s task=%s", job_id, waiting.task)
        results.forget(job_id)
        return Job(id=job_id, task=waiting.task, run_after=utc(waiting.run_after))
    for path in local_job_files(get_settings(), job_id):
        payload = payload_at(path)
        if payload is None:
            continue
        job = Job(
            id=job_id,
            task=payload.task,
            run_after=datetime.fromtimestamp(payload.run_after, UTC),
        )
        if job.cancel():
            logger.info("job cancelled job=%s task=%s", job_id, payload.task)
            return job
    conf = get_settings()
    if files.list_quarantined(conf.failed_dir, job_file_prefix(job_id)):
        raise JobNotFound(
            f"Job {job_id!r} is not pending: it failed and is in {str(conf.failed_dir)!r}; "
            "`spoolcron retry` puts it back."
        )
    raise JobNotFound(f"No job {job_id!r} is pending in {str(conf.spool_dir)!r}.")
