"""One-off jobs: ``schedule()`` writes a spool file due at ``run_after``; ``Job`` is its handle.

The enqueue API, an adapter over the layers below: SpoolerBackend enqueues through
``publish()`` too, and ``Task.schedule`` reaches ``schedule()`` through the registry.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.db import transaction

from .conf import DEFAULT_QUEUE, Queue, Settings, get_settings
from .core.payload import (
    META_EXPIRES,
    META_QUEUE,
    Payload,
    check_arguments,
    encode_body,
    job_file_prefix,
)
from .core.protocols import PendingStore
from .core.registry import Task, resolve_task
from .core.times import aware, timestamp_of, utc
from .exceptions import (
    InvalidArguments,
    JobNotFound,
    JobNotSucceeded,
    JobRunning,
)
from .queues import local_job_files, queue_dirs, queue_for, send, signed_requests
from .runtime.publish import Publisher
from .spool import files, locks
from .spool.payloads import payload_at
from .spool.pending import FilePendingStore

__all__ = [
    "Job",
    "JobStatus",
    "get_job",
    "pending_store",
    "publish",
    "publisher",
    "schedule",
    "schedule_many",
    "timestamp_of",
]

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

    Its state comes from the results store (spoolcron.storage.results), refined by this
    host's spool directory (a file there is waiting or running right now) and the pending
    store (the job waits there until it comes due); a job with no result yet (not started,
    or the database unreachable) is looked up in the failed directory too.
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
        for path in local_job_files(conf, self.id):
            # A RUNNING result whose file waits unlocked: its spooler died; it runs again.
            return "running" if locks.is_locked(path) else "pending"
        if stored is not None and stored != "READY":
            return _STORED_STATUS[stored]
        if publisher().store_holds(self.id, self.run_after.timestamp()):
            return "pending"
        if stored is not None:
            return _STORED_STATUS[stored]
        if files.list_quarantined(conf.failed_dir, job_file_prefix(self.id)):
            return "failed"
        return "missing"

    @property
    def return_value(self) -> Any:
        """What the task returned, as stored in its result (JSON: a tuple reads as a list;
        a value JSON cannot carry was not stored and reads as None).

        Raises :class:`JobNotSucceeded` while the job has not succeeded; the result is kept
        ``SPOOLCRON["HISTORY_DAYS"]`` days.
        """
        from .storage import results

        row = results.load(self.id)
        if row is not None and row.status == row.Status.SUCCESSFUL:
            return row.return_value
        raise JobNotSucceeded(f"Job {self.id!r} has no return value: it is {self.status}.")

    def cancel(self) -> bool:
        """Remove the pending job; False if it is gone already, JobRunning if it is running."""
        removed = publisher().cancel_stored(self.id, self.run_after.timestamp())
        for path in local_job_files(get_settings(), self.id):
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


def _payload(
    task: Task[Any, Any],
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    run_after: datetime | timedelta | float | None,
    meta: Mapping[str, Any] | None,
    current: float,
    expires: datetime | timedelta | float | None = None,
    queue: Queue | None = None,
) -> tuple[Payload, bytes]:
    """The job's payload and its encoded body: every check ``schedule()`` promises."""
    plain_args, plain_kwargs = check_arguments(task.name, args, kwargs)
    task.check_call(plain_args, plain_kwargs)
    if meta is not None and not isinstance(meta, Mapping):
        raise InvalidArguments(
            f"Cannot schedule task {task.name!r}: meta must be a dict, not {meta!r}."
        )
    due = timestamp_of(run_after, current)
    plain_meta = dict(meta or {})
    if expires is not None:
        plain_meta[META_EXPIRES] = _expiry(task, expires, due)
    if queue is not None and not queue.is_remote and queue.name != DEFAULT_QUEUE:
        plain_meta[META_QUEUE] = queue.name
    payload = Payload(
        task=task.name,
        job_id=uuid.uuid4().hex,
        run_after=due,
        args=plain_args,
        kwargs=plain_kwargs,
        meta=plain_meta,
        enqueued_at=current,
    )
    # Encode now, even when the write waits for a commit: bad arguments fail here.
    return payload, encode_body(payload)


def _expiry(task: Task[Any, Any], expires: datetime | timedelta | float, due: float) -> float:
    """The Unix time a job due at ``due`` expires: an aware datetime as it is, a timedelta or a
    number of seconds after the due time."""
    if isinstance(expires, datetime) or (
        isinstance(expires, timedelta)
        or (isinstance(expires, int | float) and not isinstance(expires, bool) and expires > 0)
    ):
        try:
            at = timestamp_of(expires, due)
        except InvalidArguments as exc:  # it names run_after
            raise InvalidArguments(str(exc).replace("run_after", "expires", 1)) from None
    else:
        raise InvalidArguments(
            f"Cannot schedule task {task.name!r}: expires must be an aware datetime, a "
            f"timedelta or a number of seconds > 0 after run_after, not {expires!r}."
        )
    if not at > due:
        raise InvalidArguments(
            f"Cannot schedule task {task.name!r}: expires={expires!r} is not after its "
            "run_after, so the job could never run."
        )
    return at


def _job(payload: Payload) -> Job:
    return Job(id=payload.job_id, task=payload.task, run_after=utc(payload.run_after))


def schedule(
    function: Task[Any, Any] | Callable[..., Any] | str,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    run_after: datetime | timedelta | float | None = None,
    meta: Mapping[str, Any] | None = None,
    *,
    on_commit: bool | None = None,
    now: Callable[[], float] = time.time,
    expires: datetime | timedelta | float | None = None,
    queue: str | None = None,
) -> Job:
    """Enqueue one run of a registered task, due at ``run_after`` (default: now).

    ``expires`` (an aware datetime, or a timedelta or seconds after ``run_after``; default:
    the task's ``expires`` option) drops the job if it has not started by then.

    ``run_after`` is an aware datetime, a timedelta or a number of seconds from now. A job due
    within ``SPOOLCRON["HORIZON"]`` is written to the spool directory, a later one to the
    pending store. Inside a database transaction a file is written when it commits, unless
    ``on_commit=False`` (or ``SPOOLCRON["ON_COMMIT"] = False``); the database store writes in
    the transaction itself.

    ``queue`` (default: the task's ``queue``, else the default queue) names a queue of
    ``SPOOLCRON["QUEUES"]``; a remote queue's job is sent to its uWSGI instance (when the
    transaction commits, likewise), and :class:`~spoolcron.RemoteSpoolError` says if it could
    not take it.
    """
    task = resolve_task(function)
    target = queue_for(task, queue)
    current = now()
    payload, body = _payload(task, args, kwargs, run_after, meta, current, expires, target)
    _deliver([(payload, body)], on_commit=on_commit, now=current, queue=target)
    return _job(payload)


def schedule_many(
    function: Task[Any, Any] | Callable[..., Any] | str,
    jobs: Iterable[Mapping[str, Any]],
    *,
    on_commit: bool | None = None,
    now: Callable[[], float] = time.time,
    queue: str | None = None,
) -> list[Job]:
    """Enqueue many runs of one task: ``jobs`` holds dicts with any of ``args``, ``kwargs``,
    ``run_after``, ``meta`` and ``expires``, as for :func:`schedule`.

    Every job is checked before any is written; the store's share is written in one batch
    (one transaction for the database store). ``queue`` as for :func:`schedule`.
    """
    task = resolve_task(function)
    target = queue_for(task, queue)
    current = now()
    batch = []
    for number, job in enumerate(jobs):
        if not isinstance(job, Mapping) or set(job) - _JOB_KEYS:
            raise InvalidArguments(
                f"Cannot schedule task {task.name!r}: jobs[{number}] must be a dict with keys "
                f"from {', '.join(sorted(_JOB_KEYS))}, not {job!r}."
            )
        batch.append(
            _payload(
                task,
                job.get("args"),
                job.get("kwargs"),
                job.get("run_after"),
                job.get("meta"),
                current,
                job.get("expires"),
                target,
            )
        )
    _deliver(batch, on_commit=on_commit, now=current, queue=target)
    return [_job(payload) for payload, _ in batch]


_JOB_KEYS = frozenset({"args", "kwargs", "run_after", "meta", "expires"})


def publish(
    payload: Payload,
    body: bytes,
    *,
    on_commit: bool | None = None,
    then: Callable[[], object] | None = None,
    queue: Queue | None = None,
) -> None:
    """Put ``payload`` (``body``, encoded by the caller) in the spool directory or the pending
    store (see :class:`Publisher`), or send it to ``queue``'s remote instance, at once or when
    the current transaction commits if ``on_commit`` (default ``SPOOLCRON["ON_COMMIT"]``);
    then call ``then``."""
    _deliver([(payload, body)], on_commit=on_commit, then=then, queue=queue)


def _deliver(
    batch: list[tuple[Payload, bytes]],
    *,
    on_commit: bool | None,
    then: Callable[[], object] | None = None,
    now: float | None = None,
    queue: Queue | None = None,
) -> None:
    """Route ``batch`` by due time as seen at ``now`` (the enqueuer's clock), or to a remote
    queue's instance."""
    if _recording is not None:
        # spoolcron.testing: kept in memory at once, whatever transaction is open.
        _recording.publish_many(batch, now=now)
        if then is not None:
            then()
        return
    conf = get_settings()
    in_transaction = transaction.get_connection().in_atomic_block
    defer = conf.on_commit if on_commit is None else on_commit
    if queue is not None and queue.is_remote:
        requests = signed_requests(batch, queue, conf, now)

        def send_now() -> None:
            send(queue, requests)
            if then is not None:
                then()

        if defer and in_transaction:
            transaction.on_commit(send_now)
        else:
            send_now()
        return
    router = publisher()
    if router.store is not None and router.store.name == "database":
        # Rows are transactional: written now, they exist exactly when the caller commits.
        batch, stored = router.split(batch, now=now)
        if stored:
            router.store.add(stored)

    def write_now() -> None:
        router.publish_many(batch, now=now)
        if then is not None:
            then()

    if defer and in_transaction:
        transaction.on_commit(write_now)
    else:
        write_now()


_publisher: tuple[Settings, Publisher] | None = None
_recording: Publisher | None = None
"""While ``spoolcron.testing.recording()`` is on: the Publisher that keeps jobs in memory."""


def pending_store() -> PendingStore:
    """The pending store ``SPOOLCRON["PENDING_STORE"]`` names."""
    return publisher().store or _make_store(get_settings())


def _make_store(conf: Settings) -> PendingStore:
    if conf.pending_store == "database":
        from .spool.payloads import write_payload
        from .storage.pending import DatabasePendingStore  # models: only once apps are ready

        return DatabasePendingStore(
            conf.spool_dir,
            write=write_payload,
            fsync=conf.fsync,
            lease=conf.pending_lease,
            dirs=queue_dirs(conf),
        )
    return FilePendingStore(
        conf.pending_dir, conf.spool_dir, fsync=conf.fsync, dirs=queue_dirs(conf)
    )


def publisher() -> Publisher:
    """The Publisher for the current settings (made again when they change)."""
    global _publisher
    if _recording is not None:
        return _recording
    conf = get_settings()
    if _publisher is None or _publisher[0] is not conf:
        router = Publisher(
            conf.spool_dir,
            _make_store(conf),
            horizon=conf.horizon,
            fsync=conf.fsync,
            dirs=queue_dirs(conf),
        )
        _publisher = (conf, router)
    return _publisher[1]


def get_job(job_id: str) -> Job:
    """The handle of the job ``job_id``, wherever it is: this host's spool directory, the
    pending store, the results store (a job that ran) or the failed directory.

    Raises :class:`~spoolcron.JobNotFound` when none of them knows the job (never enqueued,
    cancelled, or its result pruned after ``SPOOLCRON["HISTORY_DAYS"]``).
    """
    conf = get_settings()
    for path in local_job_files(conf, job_id):
        payload = payload_at(path)
        if payload is not None:
            return _job(payload)
    store = publisher().store
    waiting = store.get(job_id) if store is not None else None
    if waiting is not None:
        return _job(waiting)
    from .storage import results  # models: only once Django's apps are ready

    row = results.load(job_id)
    if row is not None:
        due = row.run_after or row.enqueued_at or row.started_at
        return Job(id=row.id, task=row.task, run_after=aware(due) if due else utc(0))
    failed = [
        payload
        for path in files.list_quarantined(conf.failed_dir, job_file_prefix(job_id))
        if (payload := payload_at(path)) is not None
    ]
    if failed:
        return _job(max(failed, key=lambda payload: payload.attempt))
    raise JobNotFound(
        f"No job {job_id!r}: neither the spool directory, the pending store, the job results "
        "nor the failed directory know it."
    )
