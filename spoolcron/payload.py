"""What a spoolcron spool file carries: the job payload as JSON in the body, plus a few args.

The body holds everything (no 64 KiB limit); the uWSGI args block keeps only the marker that
the file is ours, the task name and the job id, so ``uwsgi.parsefile`` and operators can see
them without decoding JSON.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from . import spoolfile
from .exceptions import InvalidArguments, SpoolWriteError

__all__ = [
    "FORMAT_VERSION",
    "MAX_BODY_SIZE",
    "Payload",
    "PayloadError",
    "check_arguments",
    "encode_body",
    "job_file_prefix",
    "read_payload",
    "unencodable",
    "write_payload",
]

FORMAT_VERSION = 1
MAX_BODY_SIZE = 16 * 1024 * 1024
"""The largest payload body spoolcron writes or reads: uWSGI reads a whole spool file into the
spooler's memory before any Python code runs, so a bigger job is refused at enqueue and a bigger
file found in the spool directory is moved aside unread."""
_NAME_PREFIX = spoolfile.PREFIX + "spoolcron_"


class PayloadError(ValueError):
    """A spool file marked as ours whose body is not a payload we can run."""


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

    def spool_args(self) -> dict[bytes, bytes]:
        return {
            spoolfile.MARKER: str(FORMAT_VERSION).encode(),
            b"task": self.task.encode(),
            b"job": self.job_id.encode(),
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
        return json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":")).encode()

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


def unencodable(payload: Payload) -> InvalidArguments:
    """Name the first argument (or meta value) that JSON cannot carry."""
    places: list[tuple[str, Any]] = [(f"args[{i}]", v) for i, v in enumerate(payload.args)]
    places += [(f"kwargs[{k!r}]", v) for k, v in payload.kwargs.items()]
    places += [(f"meta[{k!r}]", v) for k, v in payload.meta.items()]
    for place, value in places:
        try:
            json.dumps(value, cls=DjangoJSONEncoder)
        except (TypeError, ValueError):
            return InvalidArguments(
                f"Cannot schedule task {payload.task!r}: {place} = {value!r} cannot be "
                "stored as JSON."
            )
    return InvalidArguments(f"Cannot schedule task {payload.task!r}: its arguments are not JSON.")


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


def write_payload(
    spool_dir: Path,
    payload: Payload,
    *,
    body: bytes | None = None,
    fsync: bool = False,
    exclusive: bool = False,
) -> Path:
    """Write ``payload`` as a spool file due at its ``run_after`` (atomic; see spoolfile.write).

    ``body`` is ``encode_body(payload)`` when the caller encoded it already. A full, read-only
    or unwritable spool directory raises :class:`SpoolWriteError` (nothing is left behind);
    a missing directory raises ``FileNotFoundError`` and a name taken with ``exclusive``
    ``FileExistsError``, which callers handle.
    """
    data = encode_body(payload) if body is None else body
    try:
        return spoolfile.write(
            spool_dir,
            payload.file_name,
            payload.spool_args(),
            data,
            at=payload.run_after,
            fsync=fsync,
            exclusive=exclusive,
        )
    except (FileNotFoundError, FileExistsError):
        raise
    except OSError as exc:
        reason = exc.strerror or os.strerror(exc.errno or errno.EIO)
        raise SpoolWriteError(
            f"Cannot write the spool file for job {payload.job_id!r} in "
            f"{os.fspath(spool_dir)!r}: {reason}.",
            exc.errno,
            os.path.join(os.fspath(spool_dir), payload.file_name),
        ) from exc


def read_payload(file: spoolfile.SpoolFile) -> Payload:
    return Payload.from_body(file.body, name=str(file.path))
