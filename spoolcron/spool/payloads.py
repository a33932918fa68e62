"""Payloads as spool files: write one (atomic, due at its ``run_after``), read one back, find
the files of a job, and list every readable job waiting in a directory."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..core.payload import Payload, directory_for, encode_body, job_file_prefix, spool_at
from ..exceptions import PayloadError, SpoolFileError, SpoolWriteError
from . import files, locks
from .codec import SpoolFile

__all__ = [
    "SpoolFireWriter",
    "job_files",
    "payload_at",
    "pending_payloads",
    "read_payload",
    "write_payload",
]


def write_payload(
    spool_dir: Path,
    payload: Payload,
    *,
    body: bytes | None = None,
    fsync: bool = False,
    exclusive: bool = False,
) -> Path:
    """Write ``payload`` as a spool file due at its ``run_after`` (atomic; see files.write).

    The file's ``at`` is :func:`~spoolcron.core.payload.spool_at`, a second that begins at
    least 0.1 s before the due instant, so uWSGI's coarse clock does not hold it back; its
    arguments carry the precise due time for the waker, and the dispatcher runs nothing
    before it.

    ``body`` is ``encode_body(payload)`` when the caller encoded it already. A full, read-only
    or unwritable spool directory raises :class:`SpoolWriteError` (nothing is left behind);
    a missing directory raises ``FileNotFoundError`` and a name taken with ``exclusive``
    ``FileExistsError``, which callers handle.
    """
    data = encode_body(payload) if body is None else body
    try:
        return files.write(
            spool_dir,
            payload.file_name,
            payload.spool_args(),
            data,
            at=spool_at(payload.run_after),
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


def read_payload(file: SpoolFile) -> Payload:
    return Payload.from_body(file.body, name=str(file.path))


def job_files(directory: Path, job_id: str) -> list[Path]:
    """The spool files of ``job_id`` in ``directory`` (one per attempt), sorted; [] if the
    directory does not exist."""
    prefix = job_file_prefix(job_id)
    try:
        return [p for p in files.list_files(directory) if p.name.startswith(prefix)]
    except FileNotFoundError:
        return []


def payload_at(path: Path) -> Payload | None:
    """The payload of the spoolcron file at ``path``; None if it is gone, corrupt or someone
    else's. A file this process's spooler runs is read from what uWSGI passed in (see
    ``locks.hold``)."""
    try:
        file = files.read(path)
        return read_payload(file) if file.is_ours else None
    except (FileNotFoundError, SpoolFileError, PayloadError):
        return None


def pending_payloads(directory: Path) -> Iterator[tuple[Path, Payload]]:
    """Every readable spoolcron file in ``directory`` with its payload; FileNotFoundError if
    the directory does not exist."""
    for path in files.list_files(directory):
        payload = payload_at(path)
        if payload is not None:
            yield path, payload


class SpoolFireWriter:
    """The beat's FireWriter: each fire an exclusive spool file in ``spool_dir``, or in its
    queue's directory (``dirs``)."""

    def __init__(
        self, spool_dir: Path, *, fsync: bool = False, dirs: Mapping[str, Path] | None = None
    ) -> None:
        self.spool_dir = spool_dir
        self.fsync = fsync
        self.dirs = dict(dirs or {})

    def write(self, payload: Payload) -> Path:
        directory = directory_for(payload, self.spool_dir, self.dirs)
        try:
            return write_payload(directory, payload, fsync=self.fsync, exclusive=True)
        except FileExistsError:
            # Written by an earlier attempt whose claim did not commit: it is this fire.
            return directory / payload.file_name

    def discard(self, path: Path) -> None:
        locks.remove_if_unlocked(path)
