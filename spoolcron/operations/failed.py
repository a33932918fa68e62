"""Operations on failed jobs: list them with their reasons, retry, delete, purge."""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.utils import timezone

from ..conf import get_settings
from ..core.payload import job_file_prefix, spool_at
from ..core.registry import get_task
from ..core.times import now as current_time
from ..exceptions import JobNotFound
from ..jobs import Job, publisher
from ..spool import files
from ..spool.payloads import job_files, payload_at

__all__ = [
    "FailedJob",
    "delete_failed",
    "delete_job",
    "failed_jobs",
    "failed_reason",
    "purge_failed",
    "reason_line",
    "retry_failed",
    "retry_job",
    "split_reason",
]

logger = logging.getLogger("spoolcron.operations")


@dataclass(frozen=True)
class FailedJob:
    """A file in the failed directory: a job that failed its last attempt, or an unrunnable file.

    ``id``, ``task`` and ``attempt`` are None when the file cannot be decoded.
    """

    path: Path
    reason: str
    """The first line of ``<name>.reason.txt``."""
    error: str | None
    """The exception (``ValueError: x``) when the reason holds a traceback, else None."""
    failed_at: datetime
    """When it was moved aside (the reason file's time)."""
    id: str | None = None
    task: str | None = None
    attempt: int | None = None
    entry: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``failed_at`` in ISO 8601 in the current time zone, ``path`` a str."""
        return {
            "id": self.id,
            "task": self.task,
            "attempt": self.attempt,
            "entry": self.entry,
            "failed_at": timezone.localtime(self.failed_at).isoformat(),
            "reason": self.reason,
            "error": self.error,
            "path": str(self.path),
        }


TRACEBACK = "Traceback (most recent call last):"


def split_reason(text: str) -> tuple[str, str | None]:
    """A reason's first line and, when it holds a traceback, the exception (``ValueError: x``).

    The exception is the line after the frames of the last traceback (the one raised last, in
    a chain), not the text's last line, which may be a note or a message's second line. A
    reason that is only a traceback reads as its exception.
    """
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "(the reason is empty)", None
    starts = [number for number, line in enumerate(lines) if line.startswith(TRACEBACK)]
    error = None
    if starts:
        after = lines[starts[-1] + 1 :]
        error = next((line for line in after if not line[0].isspace()), None)
    first = lines[0].strip()
    if first.startswith(TRACEBACK):
        return error or first, None
    return first, error


def reason_line(text: str) -> str:
    """A reason in one line: its first line, then the exception when it holds a traceback."""
    first, error = split_reason(text)
    return first if error is None else f"{first} {error}"


def _failed_at(path: Path) -> float:
    """When the file at ``path`` was moved aside: its reason file's time, else its own."""
    try:
        return files.reason_path(path).stat().st_mtime
    except FileNotFoundError:
        return path.stat().st_mtime


def _reason(path: Path) -> tuple[str, str | None, datetime]:
    reason_path = files.reason_path(path)
    try:
        text = reason_path.read_text(encoding="utf-8", errors="replace")
        when = reason_path.stat().st_mtime
    except FileNotFoundError:
        return "(no reason was recorded)", None, datetime.fromtimestamp(path.stat().st_mtime, UTC)
    first, error = split_reason(text)
    return first, error, datetime.fromtimestamp(when, UTC)


def failed_jobs() -> list[FailedJob]:
    """The quarantined files in the failed directory, most recently failed first."""
    found = []
    for path in files.list_quarantined(get_settings().failed_dir):
        try:
            reason, error, failed_at = _reason(path)
            payload = payload_at(path)
        except FileNotFoundError:
            continue  # retried or removed meanwhile
        found.append(
            FailedJob(
                path=path,
                reason=reason,
                error=error,
                failed_at=failed_at,
                id=payload.job_id if payload else None,
                task=payload.task if payload else None,
                attempt=payload.attempt if payload else None,
                entry=payload.entry if payload else None,
            )
        )
    return sorted(found, key=lambda job: job.failed_at, reverse=True)


def retry_job(job_id: str, *, now: datetime | None = None) -> Job:
    """Put a failed job back in the spool directory, due now, as attempt 1.

    The new spool file gets a fresh name, so it never collides with a file of the job still
    in the spool; the failed file(s) and their reasons are removed once it is written.
    Raises :class:`JobNotFound` when no failed file of that job exists, and
    :class:`~spoolcron.UnknownTask` when its task is not registered (it would fail again).
    """
    conf = get_settings()
    failed = files.list_quarantined(conf.failed_dir, job_file_prefix(job_id))
    readable = [(p, payload) for p in failed if (payload := payload_at(p)) is not None]
    if not readable:
        if failed:
            raise JobNotFound(
                f"Job {job_id!r} cannot be retried: its file {str(failed[0])!r} is corrupt."
            )
        raise JobNotFound(f"No failed job {job_id!r} in {str(conf.failed_dir)!r}.")
    # The highest attempt is the most recent version of the job.
    _, payload = max(readable, key=lambda item: item[1].attempt)
    get_task(payload.task)  # raises UnknownTask: it would only be quarantined again
    current = (current_time() if now is None else now).timestamp()
    again = replace(payload, attempt=1, run_after=current, enqueued_at=current)
    name = f"{job_file_prefix(job_id)}1-retry-{uuid.uuid4().hex[:8]}"
    files.ensure_dir(conf.spool_dir)
    files.write(
        conf.spool_dir,
        name,
        again.spool_args(),
        again.to_body(),
        at=spool_at(current),
        fsync=conf.fsync,
        exclusive=True,
    )
    # Only once the new file exists: a crash in between leaves the job twice, never zero times.
    for path in failed:
        for stale in (path, files.reason_path(path)):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
    logger.info("failed job put back job=%s task=%s", job_id, payload.task)
    return Job(id=job_id, task=payload.task, run_after=datetime.fromtimestamp(current, UTC))


def failed_reason(job: FailedJob) -> str:
    """The whole of a failed file's reason (e.g. the traceback), not only its first line."""
    reason_path = files.reason_path(job.path)
    try:
        return reason_path.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return "(no reason was recorded)"


def _failed_file(name: str) -> Path:
    # Only a name the failed directory lists: never a path a form could point elsewhere.
    failed_dir = get_settings().failed_dir
    for path in files.list_quarantined(failed_dir):
        if path.name == name:
            return path
    raise JobNotFound(f"No failed file {name!r} in {str(failed_dir)!r}.")


def retry_failed(name: str, *, now: datetime | None = None) -> Job:
    """:func:`retry_job` for the job of the failed file called ``name`` (as listed).

    Raises :class:`JobNotFound` when the failed directory has no such file or the file is
    corrupt (it has no job to retry), and :class:`~spoolcron.UnknownTask` like ``retry_job``.
    """
    path = _failed_file(name)
    payload = payload_at(path)
    if payload is None:
        raise JobNotFound(
            f"Failed file {name!r} cannot be retried: it is corrupt, so it holds no job to run."
        )
    return retry_job(payload.job_id, now=now)


def _remove_failed(path: Path, why: str) -> None:
    """Delete a failed file and its reason: what every delete, purge and prune does."""
    for stale in (path, files.reason_path(path)):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    logger.info("failed file deleted file=%s by=%s", path.name, why)


def delete_failed(name: str) -> Path:
    """Delete the failed file called ``name`` (as listed) and its reason; return its path.

    Raises :class:`JobNotFound` when the failed directory has no such file.
    """
    path = _failed_file(name)
    _remove_failed(path, "delete")
    return path


def delete_job(key: str) -> list[Path]:
    """Delete the failed files of job ``key`` (every attempt there) and their reasons, or the
    failed file named ``key`` (an unreadable one, listed by its name); return their paths.

    The job will not run again. Raises :class:`JobNotFound` when the failed directory has
    neither; a job that is pending is not deleted (cancelling removes it).
    """
    conf = get_settings()
    failed = files.list_quarantined(conf.failed_dir, job_file_prefix(key))
    named = [path for path in files.list_quarantined(conf.failed_dir) if path.name == key]
    paths = named or failed
    if not paths:
        if job_files(conf.spool_dir, key) or publisher().store_holds(key):
            raise JobNotFound(
                f"Job {key!r} is not in the failed directory: it is pending; "
                "`spoolcron cancel` removes it."
            )
        raise JobNotFound(f"No failed job {key!r} in {str(conf.failed_dir)!r}.")
    for path in paths:
        _remove_failed(path, "delete")
    return paths


def purge_failed(*, older_than: datetime | None = None) -> list[Path]:
    """Delete every failed file (and its reason) moved aside before ``older_than`` (default:
    all of them); return their paths, oldest first."""
    cutoff = None if older_than is None else older_than.timestamp()
    aged: list[tuple[float, Path]] = []
    for path in files.list_quarantined(get_settings().failed_dir):
        try:
            when = _failed_at(path)
        except FileNotFoundError:
            continue  # retried or deleted meanwhile
        if cutoff is None or when < cutoff:
            aged.append((when, path))
    aged.sort()
    for _, path in aged:
        _remove_failed(path, "purge" if older_than is None else "age")
    return [path for _, path in aged]
