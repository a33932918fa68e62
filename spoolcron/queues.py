"""Queues: where a job goes (``SPOOLCRON["QUEUES"]``): a local queue's spool directory, or a
remote queue's uWSGI instance, sent a signed spool request over the uwsgi protocol."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .conf import DEFAULT_QUEUE, Queue, Settings, get_settings
from .core.payload import Payload
from .core.registry import Task
from .core.remote import request_args
from .core.routing import check_queue_name
from .exceptions import InvalidArguments, SpoolcronImproperlyConfigured
from .spool import codec, remote
from .spool.payloads import job_files, pending_payloads

__all__ = [
    "local_job_files",
    "local_spool_dirs",
    "local_spooled",
    "queue_dirs",
    "queue_for",
    "send",
    "signed_requests",
]


def queue_dirs(conf: Settings) -> dict[str, Path]:
    """The spool directory of each local queue but the default, by name."""
    return {name: path for name, path in local_spool_dirs(conf).items() if name != DEFAULT_QUEUE}


def local_spool_dirs(conf: Settings) -> dict[str, Path]:
    """The spool directory of each local queue, by name, the default first."""
    return {
        queue.name: queue.spool_dir for queue in conf.local_queues if queue.spool_dir is not None
    }


def local_spooled(conf: Settings) -> Iterator[tuple[str, Path, Payload]]:
    """(queue, path, payload) of every readable spoolcron file in each local queue's spool
    directory; a directory not made yet holds none."""
    for name, directory in local_spool_dirs(conf).items():
        try:
            for path, payload in pending_payloads(directory):
                yield name, path, payload
        except FileNotFoundError:
            continue


def local_job_files(conf: Settings, job_id: str) -> list[Path]:
    """The job's files in the spool directory of each local queue."""
    return [
        path
        for directory in local_spool_dirs(conf).values()
        for path in job_files(directory, job_id)
    ]


def queue_for(task: Task[Any, Any], queue: str | None = None) -> Queue:
    """The queue a job of ``task`` goes to: ``queue``, else the task's, else the default;
    InvalidArguments for a queue ``SPOOLCRON["QUEUES"]`` does not have."""
    owner = f"Cannot schedule task {task.name!r}:"
    name = check_queue_name(owner, queue) or task.routing.queue or DEFAULT_QUEUE
    conf = get_settings()
    try:
        return conf.queue(name)
    except KeyError:
        raise InvalidArguments(
            f"{owner} unknown queue {name!r}; SPOOLCRON['QUEUES'] has "
            f"{', '.join(map(repr, conf.queues))}."
        ) from None


def signed_requests(
    batch: list[tuple[Payload, bytes]], queue: Queue, conf: Settings, now: float | None
) -> list[tuple[Payload, dict[bytes, bytes]]]:
    """The signed spool requests of ``batch`` for the remote ``queue``, each checked against
    the protocol's size limit before any is sent."""
    if not conf.remote_keys:
        raise SpoolcronImproperlyConfigured(
            f"Cannot send jobs to the remote queue {queue.name!r}: SPOOLCRON['REMOTE_KEYS'] is "
            "empty, and remote jobs must be signed."
        )
    sent_at = time.time() if now is None else now
    requests = []
    for payload, body in batch:
        args = request_args(
            payload,
            body,
            key=conf.remote_keys[0],
            expires=max(sent_at, payload.run_after) + conf.remote_ttl,
            spooler=queue.spooler,
        )
        try:
            codec.encode(args)
        except ValueError:
            size = sum(4 + len(key) + len(value) for key, value in args.items())
            raise InvalidArguments(
                f"Cannot schedule task {payload.task!r} on the remote queue {queue.name!r}: its "
                f"request takes {size} bytes, and a uwsgi spool request carries at most "
                f"{codec.MAX_ARGS_SIZE} (no body); pass a reference (a database id) instead."
            ) from None
        requests.append((payload, args))
    return requests


def send(queue: Queue, requests: Sequence[tuple[Payload, dict[bytes, bytes]]]) -> None:
    """Send each request to the remote ``queue``'s instance, in order; the first that it
    does not take raises RemoteSpoolError (the ones before it were taken)."""
    for payload, args in requests:
        remote.send(str(queue.address), args, timeout=queue.timeout, job=payload.job_id)
