"""One-off jobs: ``schedule()`` writes a spool file due at ``run_after``; ``Job`` is its handle.

The enqueue API, an adapter over the layers below: SpoolerBackend enqueues through
``publish()`` too, and ``Task.schedule`` reaches ``schedule()`` through the registry.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from .conf import get_settings
from .core.payload import Payload, check_arguments, encode_body, job_file_prefix
from .core.registry import Task, resolve_task
from .core.times import utc
from .exceptions import InvalidArguments, JobRunning
from .spool import files, locks
from .spool.payloads import job_files, write_payload

__all__ = ["Job", "JobStatus", "publish", "schedule", "timestamp_of"]

JobStatus = Literal["pending", "running", "succeeded", "failed", "missing"]

# JobResult.status -> Job.status, for jobs with no file in this host's spool directory.
_STORED_STATUS: dict[str, JobStatus] = {
    "READY": "pending",
    "RUNNING": "running",
    "SUCCESSFUL": "succeeded",
    "FAILED": "failed",
}


@dataclass(frozen=True)
class Job:
    """A handle on a one-off job.

    Its state comes from the results store (spoolcron.results), refined by this host's spool
    directory (a file there is waiting or running right now); a job with no result yet (not
    started, or the database unreachable) is looked up in the spool and failed directories.
    """

    id: str
    task: str
    run_after: datetime

    @property
    def status(self) -> JobStatus:
        """pending, running, succeeded, failed, or missing (cancelled, pruned, never written)."""
        from .storage import results  # models: not importable before Django's apps are

        stored = results.stored_status(self.id)
        if stored == "SUCCESSFUL":
            return "succeeded"
        conf = get_settings()
        for path in job_files(conf.spool_dir, self.id):
            # A RUNNING result whose file waits unlocked: its spooler died; it runs again.
            return "running" if locks.is_locked(path) else "pending"
        if stored is not None:
            return _STORED_STATUS[stored]
        if files.list_quarantined(conf.failed_dir, job_file_prefix(self.id)):
            return "failed"
        return "missing"

    def cancel(self) -> bool:
        """Remove the pending job; False if it is gone already, JobRunning if it is running."""
        removed = False
        for path in job_files(get_settings().spool_dir, self.id):
            if locks.remove_if_unlocked(path):
                removed = True
            elif path.exists():
                raise JobRunning(
                    f"Cannot cancel job {self.id!r}: a spooler is running it right now."
                )
        if removed:
            from .storage import results

            results.forget(self.id)
        return removed


def timestamp_of(run_after: datetime | timedelta | float | None, now: float) -> float:
    """The Unix time of a ``run_after`` (default: ``now``); InvalidArguments if unusable.

    Naive datetimes are local time, and refused while USE_TZ is on.
    """
    if run_after is None:
        return now
    if isinstance(run_after, datetime):
        if timezone.is_naive(run_after):
            if django_settings.USE_TZ:
                raise InvalidArguments(
                    f"run_after={run_after!r} is a naive datetime while USE_TZ is on; pass an "
                    "aware one, e.g. timezone.now() + timedelta(minutes=5)."
                )
            run_after = timezone.make_aware(run_after)
        value = run_after.timestamp()
        if not math.isfinite(value):
            raise InvalidArguments(f"run_after={run_after!r} is not a usable time.")
        return value
    if isinstance(run_after, timedelta):
        return now + run_after.total_seconds()
    if isinstance(run_after, int | float) and not isinstance(run_after, bool):
        if not math.isfinite(run_after):
            raise InvalidArguments(
                f"run_after must be a finite number of seconds, not {run_after!r}."
            )
        return now + run_after
    raise InvalidArguments(
        f"run_after must be a datetime, a timedelta or a number of seconds, not {run_after!r}."
    )


def schedule(
    function: Task[Any, Any] | Callable[..., Any] | str,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    run_after: datetime | timedelta | float | None = None,
    meta: Mapping[str, Any] | None = None,
    *,
    on_commit: bool | None = None,
    now: Callable[[], float] = time.time,
) -> Job:
    """Enqueue one run of a registered task, due at ``run_after`` (default: now).

    ``run_after`` is an aware datetime, a timedelta or a number of seconds from now. Inside a
    database transaction the spool file is written when it commits, unless ``on_commit=False``
    (or ``SPOOLCRON["ON_COMMIT"] = False``); outside one it is written at once.
    """
    task = resolve_task(function)
    plain_args, plain_kwargs = check_arguments(task.name, args, kwargs)
    if meta is not None and not isinstance(meta, Mapping):
        raise InvalidArguments(
            f"Cannot schedule task {task.name!r}: meta must be a dict, not {meta!r}."
        )
    current = now()
    payload = Payload(
        task=task.name,
        job_id=uuid.uuid4().hex,
        run_after=timestamp_of(run_after, current),
        args=plain_args,
        kwargs=plain_kwargs,
        meta=dict(meta or {}),
        enqueued_at=current,
    )
    # Encode now, even when the write waits for a commit: bad arguments fail here.
    publish(payload, encode_body(payload), on_commit=on_commit)
    return Job(
        id=payload.job_id,
        task=task.name,
        run_after=utc(payload.run_after),
    )


def publish(
    payload: Payload,
    body: bytes,
    *,
    on_commit: bool | None = None,
    then: Callable[[], object] | None = None,
) -> None:
    """Write ``payload``'s spool file (``body``, encoded by the caller) at once, or when the
    current transaction commits if ``on_commit`` (default ``SPOOLCRON["ON_COMMIT"]``); then
    call ``then``."""
    conf = get_settings()

    def write_now() -> None:
        write = partial(write_payload, conf.spool_dir, payload, body=body, fsync=conf.fsync)
        try:
            write()
        except FileNotFoundError:
            # Like uWSGI's --spooler, create the directory on first use (mode 0700).
            files.ensure_dir(conf.spool_dir)
            write()
        if then is not None:
            then()

    defer = conf.on_commit if on_commit is None else on_commit
    if defer and transaction.get_connection().in_atomic_block:
        transaction.on_commit(write_now)
    else:
        write_now()
