"""The wire format: what a spoolcron spool file carries, its file name, and every meta key.

The body holds the job as JSON (no 64 KiB limit); the uWSGI args block keeps only the marker
that the file is ours, the task name and the job id, so ``uwsgi.parsefile`` and operators can
see them without decoding JSON. Pure: the bytes of the file are spoolcron.spool's business.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from ..exceptions import InvalidArguments, PayloadError

__all__ = [
    "DUE_ARG",
    "FORMAT_VERSION",
    "MARKER",
    "MAX_BODY_SIZE",
    "META_DJANGO_TASK",
    "META_EXPIRES",
    "META_MANUAL_RUN",
    "META_OVERLAP",
    "META_PAUSE_AFTER_FAILURES",
    "META_QUEUE",
    "PREFIX",
    "Payload",
    "PayloadError",
    "check_arguments",
    "directory_for",
    "due_of",
    "encode_body",
    "first_unencodable",
    "job_file_prefix",
    "spool_at",
    "unencodable",
]

PREFIX = "uwsgi_spoolfile_on_"
"""The spooler ignores every file name that does not start with this."""

MARKER = b"spoolcron"
"""Argument key that marks a spool file as written by spoolcron; its value is the format version."""

DUE_ARG = b"due"
"""Argument key holding the job's precise due time (``run_after``, a float in ASCII), so the
waker knows the instant from the header without decoding the body: the file's mtime (uWSGI's
``at``) is set earlier than that (:func:`spool_at`). Files written before it existed have
none and are due at their mtime."""

# Every key spoolcron puts in Payload.meta; users' own meta keys live beside them.
META_OVERLAP = "overlap"
"""A periodic fire's overlap policy ("skip" or "allow")."""
META_MANUAL_RUN = "entry_manual_run"
"""The entry a job enqueued by ``spoolcron run ENTRY`` runs for."""
META_PAUSE_AFTER_FAILURES = "pause_after_failures"
"""A periodic fire's entry's ``pause_after_failures`` (a whole number), so the recorder
counts the entry's consecutive failures without looking the entry up."""
META_DJANGO_TASK = "django_task"
"""``{"backend": alias, "queue_name": name}`` of a job SpoolerBackend enqueued."""

META_EXPIRES = "expires"
"""The Unix time after which the job, not started yet, is dropped (``schedule(expires=...)``);
without it the task's ``expires`` option counts from the job's due time."""

META_QUEUE = "queue"
"""The queue a job runs in (``schedule(queue=...)``, the task's ``queue``); absent: the
default queue."""

FORMAT_VERSION = 1
MAX_BODY_SIZE = 16 * 1024 * 1024
"""The largest payload body spoolcron writes or reads: uWSGI reads a whole spool file into the
spooler's memory before any Python code runs, so a bigger job is refused at enqueue and a bigger
file found in the spool directory is moved aside unread."""
_NAME_PREFIX = PREFIX + "spoolcron_"


# One encoder for every body (it keeps no state between calls): building one per job is a
# measurable share of a bulk enqueue.
_BODY_ENCODER = DjangoJSONEncoder(separators=(",", ":"), allow_nan=False)

AT_MARGIN = 0.1
"""How long before its due instant a spool file's ``at`` second must have begun."""


def spool_at(run_after: float) -> int:
    """The ``at`` (the mtime, in whole seconds) of a spool file due at ``run_after``.

    uWSGI runs a file once ``time(NULL)`` -- the kernel's coarse clock, which turns each
    second 1-10 ms (more on a busy virtual machine) after the precise one -- has reached its
    ``at``. The second that begins at least :data:`AT_MARGIN` before the due instant: the
    spooler woken a few milliseconds before it (``spoolcron.spool.waker``) never passes the
    file over while the coarse clock lags, and a woken spooler does not look at the file
    much earlier than that (it passes every file whose ``at`` has come: a job due now would
    wait behind them). Nothing runs early for it: the dispatcher compares the precise
    ``run_after`` of the payload and leaves a file that is not due yet in place.
    """
    return math.floor(run_after - AT_MARGIN)


def due_of(args: Mapping[bytes, bytes], at: float) -> float:
    """The precise due time of a spool file from its arguments (:data:`DUE_ARG`); its ``at``
    (the mtime) for a file without one, or with one that is not a finite number."""
    raw = args.get(DUE_ARG)
    if raw is None:
        return at
    try:
        due = float(raw)
    except ValueError:
        return at
    return due if math.isfinite(due) else at


def directory_for(payload: Payload, default: Path, dirs: Mapping[str, Path]) -> Path:
    """The spool directory of the job's queue (``dirs``: each local queue's); ``default`` for
    the default queue, or a queue this host does not know (its jobs then run here rather than
    nowhere: the system checks name such queues)."""
    queue = payload.queue
    return default if queue is None else dirs.get(queue, default)


def job_file_prefix(job_id: str) -> str:
    """The start of every spool file name of one job (one file per attempt)."""
    return f"{_NAME_PREFIX}{job_id}_"


@dataclass(frozen=True)
class Payload:
    task: str
    job_id: str
    run_after: float  # Unix time with sub-second precision; uWSGI's `at` is only its second
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    enqueued_at: float = 0.0
    entry: str | None = None  # the periodic entry that fired, None for one-off jobs

    @property
    def file_name(self) -> str:
        return f"{job_file_prefix(self.job_id)}{self.attempt}"

    @property
    def overlap(self) -> str:
        value = self.meta.get(META_OVERLAP, "skip")
        return value if isinstance(value, str) else "skip"

    @property
    def pause_after_failures(self) -> int | None:
        value = self.meta.get(META_PAUSE_AFTER_FAILURES)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def queue(self) -> str | None:
        """The queue the job was routed to; None for the default queue."""
        value = self.meta.get(META_QUEUE)
        return value if isinstance(value, str) else None

    @property
    def history_entry(self) -> str:
        """The entry whose history this job belongs to: the one that fired, or the one run
        by hand; "" for plain one-off jobs."""
        manual = self.meta.get(META_MANUAL_RUN)
        return self.entry or (manual if isinstance(manual, str) else "")

    @property
    def manual_entry(self) -> str | None:
        manual = self.meta.get(META_MANUAL_RUN)
        return manual if isinstance(manual, str) else None

    def expires_at(self, task_expires: float | None) -> float | None:
        """When this job, not started yet, is dropped: its own :data:`META_EXPIRES`, else
        ``task_expires`` seconds after its due time; None for never. A retry never expires:
        its job has started already."""
        if self.attempt > 1:
            return None
        own = self.meta.get(META_EXPIRES)
        if isinstance(own, int | float) and not isinstance(own, bool) and math.isfinite(own):
            return float(own)
        return None if task_expires is None else self.run_after + task_expires

    @property
    def framework(self) -> dict[str, str] | None:
        """The backend alias and queue name of a job enqueued by SpoolerBackend, else None."""
        enqueued = self.meta.get(META_DJANGO_TASK)
        if not isinstance(enqueued, dict):
            return None
        return {
            "backend": str(enqueued.get("backend", "")),
            "queue_name": str(enqueued.get("queue_name", "")),
        }

    def spool_args(self) -> dict[bytes, bytes]:
        return {
            MARKER: str(FORMAT_VERSION).encode(),
            b"task": self.task.encode(),
            b"job": self.job_id.encode(),
            DUE_ARG: repr(float(self.run_after)).encode(),
        }

    def to_body(self) -> bytes:
        document = {
            "v": FORMAT_VERSION,
            "task": self.task,
            "job": self.job_id,
            "run_after": self.run_after,
            "args": self.args,
            "kwargs": self.kwargs,
            "meta": self.meta,
            "attempt": self.attempt,
            "enqueued_at": self.enqueued_at,
            "entry": self.entry,
        }
        # No NaN or Infinity: they are not JSON, and databases refuse them in result rows.
        return _BODY_ENCODER.encode(document).encode()

    def next_attempt(self, run_after: float) -> Payload:
        return replace(self, attempt=self.attempt + 1, run_after=run_after)

    @classmethod
    def from_body(cls, body: bytes, *, name: str) -> Payload:
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PayloadError(f"Spool file {name!r} has a body that is not JSON: {exc}.") from None
        if not isinstance(document, dict) or document.get("v") != FORMAT_VERSION:
            version = document.get("v") if isinstance(document, dict) else None
            raise PayloadError(
                f"Spool file {name!r} has an unsupported payload version {version!r}."
            )
        try:
            payload = cls(
                task=_typed(document, "task", str),
                job_id=_typed(document, "job", str),
                run_after=float(_typed(document, "run_after", int | float)),
                args=_typed(document, "args", list),
                kwargs=_typed(document, "kwargs", dict),
                meta=_typed(document, "meta", dict),
                attempt=_typed(document, "attempt", int),
                enqueued_at=float(_typed(document, "enqueued_at", int | float)),
                entry=document.get("entry"),
            )
        except KeyError as exc:
            raise PayloadError(
                f"Spool file {name!r} payload lacks the field {exc.args[0]!r}."
            ) from None
        except TypeError as exc:
            raise PayloadError(f"Spool file {name!r} payload {exc.args[0]}.") from None
        return payload


def _typed(document: Mapping[str, Any], key: str, kind: Any) -> Any:
    value = document[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"field {key!r} has the wrong type: {value!r}")
    return value


def check_arguments(
    task: str, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None
) -> tuple[list[Any], dict[str, Any]]:
    """Check the shape of args/kwargs; JSON itself is checked once, when the body is encoded."""
    if args is None:
        args = []
    if kwargs is None:
        kwargs = {}
    if isinstance(args, str | bytes) or not isinstance(args, Sequence):
        raise InvalidArguments(f"Cannot schedule task {task!r}: args must be a list, not {args!r}.")
    if not isinstance(kwargs, Mapping):
        raise InvalidArguments(
            f"Cannot schedule task {task!r}: kwargs must be a dict, not {kwargs!r}."
        )
    for key in kwargs:
        if not isinstance(key, str):
            raise InvalidArguments(
                f"Cannot schedule task {task!r}: kwargs keys must be strings, not {key!r}."
            )
    return list(args), dict(kwargs)


def first_unencodable(
    args: Sequence[Any], kwargs: Mapping[str, Any], meta: Mapping[str, Any] | None = None
) -> str | None:
    """``"args[1] = <object …>"``: the first argument (or meta value) JSON cannot carry."""
    places: list[tuple[str, Any]] = [(f"args[{i}]", v) for i, v in enumerate(args)]
    places += [(f"kwargs[{k!r}]", v) for k, v in kwargs.items()]
    places += [(f"meta[{k!r}]", v) for k, v in (meta or {}).items()]
    for place, value in places:
        try:
            json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False)
        except (TypeError, ValueError):
            return f"{place} = {value!r}"
    return None


def unencodable(payload: Payload) -> InvalidArguments:
    """Name the first argument (or meta value) that JSON cannot carry."""
    place = first_unencodable(payload.args, payload.kwargs, payload.meta)
    if place is None:
        return InvalidArguments(
            f"Cannot schedule task {payload.task!r}: its arguments are not JSON."
        )
    return InvalidArguments(
        f"Cannot schedule task {payload.task!r}: {place} cannot be stored as JSON."
    )


def encode_body(payload: Payload) -> bytes:
    """The spool file body of ``payload``; InvalidArguments names what JSON cannot carry."""
    try:
        body = payload.to_body()
    except (TypeError, ValueError):
        raise unencodable(payload) from None
    if len(body) > MAX_BODY_SIZE:
        raise InvalidArguments(
            f"Cannot schedule task {payload.task!r}: its arguments take {len(body)} bytes as "
            f"JSON; the limit is {MAX_BODY_SIZE} bytes, so pass a reference (a database id, "
            "a file path) instead."
        )
    return body
