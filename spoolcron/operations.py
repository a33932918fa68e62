"""What operators do from the command line, as functions: ``manage.py spoolcron`` formats them.

Entries with their last fire, next fires and last outcome; pending and failed jobs; cancelling,
retrying or deleting a failed job, running an entry now; a health verdict for monitoring
probes; the uWSGI options the project needs. The admin pages are built on the same functions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Max, OuterRef, Subquery
from django.utils import timezone

import schedules
from schedules.zones import zone_name

from . import spoolfile
from .conf import get_settings
from .entries import Problem, collect
from .exceptions import JobNotFound
from .jobs import Job, JobStatus, health, pending_jobs, schedule
from .payload import Payload, PayloadError, job_file_prefix, read_payload
from .registry import get_task
from .upcoming import MANUAL_RUN_META, UnknownEntry

__all__ = [
    "EntriesReport",
    "EntryInfo",
    "FailedJob",
    "HealthReport",
    "JobNotFound",
    "PendingJob",
    "cancel_job",
    "delete_failed",
    "failed_jobs",
    "failed_reason",
    "health_report",
    "list_entries",
    "pending",
    "retry_failed",
    "retry_job",
    "run_entry",
    "uwsgi_config",
]

logger = logging.getLogger("spoolcron.operations")


# --- entries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryInfo:
    """A declared entry with what the ledger knows about it."""

    name: str
    task: str
    expression: str
    description: str
    zone: str
    misfire: str
    misfire_limit: int
    grace: float | None
    overlap: str
    enabled: bool
    module: str
    next_fire: datetime | None
    """The next fire after now (None when disabled or a spent one-shot)."""
    last_fire: datetime | None = None
    """The newest fire the beat enqueued (its claim in the ledger)."""
    last_outcome: str | None = None
    """The outcome of the newest run: running, succeeded, retrying, failed or skipped."""
    last_run: datetime | None = None
    """When the newest run started."""
    next_fires: tuple[datetime, ...] = ()
    """The first ``fires`` fires after now (``list_entries(fires=)``); empty if none."""


@dataclass(frozen=True)
class EntriesReport:
    entries: list[EntryInfo]
    problems: list[Problem]
    ledger_error: str | None = None
    """Why the ledger could not be read (e.g. not migrated); last fires are then unknown."""


def _last_fires() -> dict[str, datetime]:
    from .models import FireClaim

    # job_id "" rows are baselines (when the beat first saw the entry), not fires.
    rows = (
        FireClaim.objects.exclude(job_id="")
        .values("entry")
        .annotate(last=Max("fire_time"))
        .values_list("entry", "last")
    )
    return dict(rows)


def _last_runs() -> dict[str, tuple[str, datetime]]:
    from .models import Run

    newest = Run.objects.filter(entry=OuterRef("entry")).order_by("-started", "-pk").values("pk")
    rows = (
        Run.objects.exclude(entry="")
        .filter(pk=Subquery(newest[:1]))
        .values_list("entry", "outcome", "started")
    )
    return {entry: (outcome, started) for entry, outcome, started in rows}


def _next_fires(schedule: schedules.Schedule, after: datetime, count: int) -> tuple[datetime, ...]:
    fires: list[datetime] = []
    fire: datetime | None = after
    while fire is not None and len(fires) < count:
        fire = schedule.next_after(fire)
        if fire is not None:
            fires.append(fire)
    return tuple(fires)


def list_entries(*, now: datetime | None = None, fires: int = 1) -> EntriesReport:
    """Every declared entry with its last fire, next fires and last outcome, and any problems.

    ``fires`` is how many of the next fires each entry lists in ``next_fires``. A ledger that
    cannot be read (not migrated, database down) does not stop the listing: ``ledger_error``
    says why the last fires and outcomes are missing.
    """
    if isinstance(fires, bool) or not isinstance(fires, int) or fires < 1:
        raise ValueError(f"fires must be a whole number >= 1, not {fires!r}.")
    current = timezone.now() if now is None else now
    # Entries sharing a schedule (schedules are hashable values) share its computation.
    computed: dict[schedules.Schedule, tuple[datetime, ...]] = {}
    entries, problems = collect()
    last_fires: dict[str, datetime] = {}
    last_runs: dict[str, tuple[str, datetime]] = {}
    ledger_error = None
    try:
        last_fires = _last_fires()
        last_runs = _last_runs()
    except DatabaseError as exc:
        ledger_error = f"The ledger could not be read (has `manage.py migrate` run?): {exc}"
    infos = []
    for entry in entries:
        outcome, started = last_runs.get(entry.name, (None, None))
        next_fires: tuple[datetime, ...] = ()
        if entry.enabled:
            if entry.schedule not in computed:
                computed[entry.schedule] = _next_fires(entry.schedule, current, fires)
            next_fires = computed[entry.schedule]
        infos.append(
            EntryInfo(
                name=entry.name,
                task=entry.task.name,
                expression=str(entry.schedule),
                description=entry.schedule.describe(),
                zone=zone_name(entry.schedule.tz),
                misfire=entry.misfire,
                misfire_limit=entry.misfire_limit,
                grace=entry.grace,
                overlap=entry.overlap,
                enabled=entry.enabled,
                module=entry.module,
                next_fire=next_fires[0] if next_fires else None,
                last_fire=last_fires.get(entry.name),
                last_outcome=outcome,
                last_run=started,
                next_fires=next_fires,
            )
        )
    return EntriesReport(entries=infos, problems=problems, ledger_error=ledger_error)


# --- jobs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingJob:
    """A job waiting in (or being run from) the spool directory."""

    id: str
    task: str
    due: datetime
    status: JobStatus
    attempt: int
    entry: str | None
    """The periodic entry that fired it; None for one-off jobs."""
    path: Path
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    """``{"entry_manual_run": NAME}`` for a run of an entry enqueued by hand."""


@dataclass(frozen=True)
class FailedJob:
    """A file in the failed directory: a job that failed its last attempt, or an unrunnable file.

    ``id``, ``task`` and ``attempt`` are None when the file cannot be decoded.
    """

    path: Path
    reason: str
    """The first line of ``<name>.reason.txt``."""
    error: str | None
    """The last line of the reason (the exception) when the reason is a traceback."""
    failed_at: datetime
    """When it was moved aside (the reason file's time)."""
    id: str | None = None
    task: str | None = None
    attempt: int | None = None
    entry: str | None = None


def pending() -> list[PendingJob]:
    """The jobs in the spool directory, one-off jobs and periodic fires, soonest first."""
    found = []
    try:
        for path, payload in pending_jobs(get_settings().spool_dir):
            found.append(
                PendingJob(
                    id=payload.job_id,
                    task=payload.task,
                    due=datetime.fromtimestamp(payload.run_after, UTC),
                    status="running" if spoolfile.is_locked(path) else "pending",
                    attempt=payload.attempt,
                    entry=payload.entry,
                    path=path,
                    args=payload.args,
                    kwargs=payload.kwargs,
                    meta=payload.meta,
                )
            )
    except FileNotFoundError:
        return []  # no spool directory: nothing was ever enqueued here
    return sorted(found, key=lambda job: (job.due, job.id))


def _reason(path: Path) -> tuple[str, str | None, datetime]:
    reason_path = path.with_name(path.name + spoolfile.REASON_SUFFIX)
    try:
        text = reason_path.read_text(encoding="utf-8", errors="replace")
        when = reason_path.stat().st_mtime
    except FileNotFoundError:
        return "(no reason was recorded)", None, datetime.fromtimestamp(path.stat().st_mtime, UTC)
    lines = [line for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else "(the reason is empty)"
    last = lines[-1].strip() if len(lines) > 1 else None
    return first, last, datetime.fromtimestamp(when, UTC)


def _payload_of(path: Path) -> Payload | None:
    try:
        file = spoolfile.read(path)
        return read_payload(file) if file.is_ours else None
    except (spoolfile.SpoolFileError, PayloadError):
        return None


def failed_jobs() -> list[FailedJob]:
    """The quarantined files in the failed directory, most recently failed first."""
    found = []
    for path in spoolfile.list_quarantined(get_settings().failed_dir):
        try:
            reason, error, failed_at = _reason(path)
            payload = _payload_of(path)
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


def _spool_files(job_id: str) -> list[Path]:
    prefix = job_file_prefix(job_id)
    try:
        return [
            p for p in spoolfile.list_files(get_settings().spool_dir) if p.name.startswith(prefix)
        ]
    except FileNotFoundError:
        return []


def cancel_job(job_id: str) -> Job:
    """Remove a pending job from the spool directory and return its handle.

    Raises :class:`JobNotFound` when no such job is pending, and
    :class:`~spoolcron.JobRunning` when a spooler is running it.
    """
    for path in _spool_files(job_id):
        payload = _payload_of(path)
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
    if spoolfile.list_quarantined(conf.failed_dir, job_file_prefix(job_id)):
        raise JobNotFound(
            f"Job {job_id!r} is not pending: it failed and is in {str(conf.failed_dir)!r}; "
            "`spoolcron retry` puts it back."
        )
    raise JobNotFound(f"No job {job_id!r} is pending in {str(conf.spool_dir)!r}.")


def retry_job(job_id: str, *, now: datetime | None = None) -> Job:
    """Put a failed job back in the spool directory, due now, as attempt 1.

    The new spool file gets a fresh name, so it never collides with a file of the job still
    in the spool; the failed file(s) and their reasons are removed once it is written.
    Raises :class:`JobNotFound` when no failed file of that job exists, and
    :class:`~spoolcron.UnknownTask` when its task is not registered (it would fail again).
    """
    conf = get_settings()
    files = spoolfile.list_quarantined(conf.failed_dir, job_file_prefix(job_id))
    readable = [(p, payload) for p in files if (payload := _payload_of(p)) is not None]
    if not readable:
        if files:
            raise JobNotFound(
                f"Job {job_id!r} cannot be retried: its file {str(files[0])!r} is corrupt."
            )
        raise JobNotFound(f"No failed job {job_id!r} in {str(conf.failed_dir)!r}.")
    # The highest attempt is the most recent version of the job.
    _, payload = max(readable, key=lambda item: item[1].attempt)
    get_task(payload.task)  # raises UnknownTask: it would only be quarantined again
    current = (timezone.now() if now is None else now).timestamp()
    again = replace(payload, attempt=1, run_after=current, enqueued_at=current)
    name = f"{job_file_prefix(job_id)}1-retry-{uuid.uuid4().hex[:8]}"
    spoolfile.ensure_dir(conf.spool_dir)
    spoolfile.write(
        conf.spool_dir,
        name,
        again.spool_args(),
        again.to_body(),
        at=current,
        fsync=conf.fsync,
        exclusive=True,
    )
    # Only once the new file exists: a crash in between leaves the job twice, never zero times.
    for path in files:
        for stale in (path, path.with_name(path.name + spoolfile.REASON_SUFFIX)):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
    logger.info("failed job put back job=%s task=%s", job_id, payload.task)
    return Job(id=job_id, task=payload.task, run_after=datetime.fromtimestamp(current, UTC))


def failed_reason(job: FailedJob) -> str:
    """The whole of a failed file's reason (e.g. the traceback), not only its first line."""
    reason_path = job.path.with_name(job.path.name + spoolfile.REASON_SUFFIX)
    try:
        return reason_path.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return "(no reason was recorded)"


def _failed_file(name: str) -> Path:
    # Only a name the failed directory lists: never a path a form could point elsewhere.
    failed_dir = get_settings().failed_dir
    for path in spoolfile.list_quarantined(failed_dir):
        if path.name == name:
            return path
    raise JobNotFound(f"No failed file {name!r} in {str(failed_dir)!r}.")


def retry_failed(name: str, *, now: datetime | None = None) -> Job:
    """:func:`retry_job` for the job of the failed file called ``name`` (as listed).

    Raises :class:`JobNotFound` when the failed directory has no such file or the file is
    corrupt (it has no job to retry), and :class:`~spoolcron.UnknownTask` like ``retry_job``.
    """
    path = _failed_file(name)
    payload = _payload_of(path)
    if payload is None:
        raise JobNotFound(
            f"Failed file {name!r} cannot be retried: it is corrupt, so it holds no job to run."
        )
    return retry_job(payload.job_id, now=now)


def delete_failed(name: str) -> Path:
    """Delete the failed file called ``name`` (as listed) and its reason; return its path.

    Raises :class:`JobNotFound` when the failed directory has no such file.
    """
    path = _failed_file(name)
    for stale in (path, path.with_name(path.name + spoolfile.REASON_SUFFIX)):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    logger.info("failed file deleted file=%s", name)
    return path


def run_entry(name: str) -> Job:
    """Enqueue one run of the entry ``name`` now, as a one-off job (disabled entries too).

    The job's ``meta`` holds ``{"entry_manual_run": name}``. Raises :class:`UnknownEntry`
    when no usable entry has that name.
    """
    entries, problems = collect()
    for entry in entries:
        if entry.name == name:
            job = schedule(
                entry.task,
                args=list(entry.args),
                kwargs=dict(entry.kwargs),
                meta={MANUAL_RUN_META: name},
            )
            logger.info("entry run by hand entry=%s job=%s", name, job.id)
            return job
    for problem in problems:
        if problem.entry == name:
            raise UnknownEntry(f"Entry {name!r} cannot be used: {problem.message}")
    raise UnknownEntry(f"Unknown entry {name!r}: no schedules module declares it.")


# --- health --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthReport:
    numbers: dict[str, Any]
    """What :func:`spoolcron.health` returns."""
    reasons: list[str] = field(default_factory=list)
    """Why it is unhealthy, one sentence each; empty when healthy."""

    @property
    def healthy(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, Any]:
        return {**self.numbers, "healthy": self.healthy, "reasons": list(self.reasons)}


def health_report(*, max_overdue: float = 60.0, now: float | None = None) -> HealthReport:
    """:func:`spoolcron.health` and a verdict for monitoring probes.

    Unhealthy when no spooler is attached (no fresh heartbeat from the spoolcron mule), when
    a job waits more than ``max_overdue`` seconds past its due time, or when jobs are
    quarantined in the failed directory.
    """
    conf = get_settings()
    if not conf.spool_dir.is_dir():
        numbers: dict[str, Any] = {
            "spool_dir": str(conf.spool_dir),
            "failed_dir": str(conf.failed_dir),
            "pending": 0,
            "overdue": 0,
            "oldest_overdue_seconds": None,
            "failed": len(spoolfile.list_quarantined(conf.failed_dir)),
            "spooler_attached": False,
            "spooler_pids": [],
        }
        reasons = [
            f"The spool directory {str(conf.spool_dir)!r} does not exist: "
            "is uWSGI running with this --spooler?"
        ]
    else:
        numbers = health(overdue_after=max_overdue, now=now)
        reasons = []
        if not numbers["spooler_attached"]:
            reasons.append(
                "No spooler is attached: the spoolcron mule's heartbeat in "
                f"{str(conf.spool_dir)!r} is missing or stale (is uWSGI running with the "
                "options `spoolcron uwsgi-config` prints?)."
            )
    if numbers["overdue"]:
        reasons.append(
            f"{numbers['overdue']} job(s) are overdue by more than {max_overdue:g} s, the "
            f"oldest by {numbers['oldest_overdue_seconds']:.0f} s."
        )
    if numbers["failed"]:
        reasons.append(
            f"{numbers['failed']} job(s) are quarantined in {str(conf.failed_dir)!r}: see "
            "`spoolcron jobs --failed`."
        )
    return HealthReport(numbers=numbers, reasons=reasons)


# --- uWSGI configuration -----------------------------------------------------------------


def uwsgi_config(
    *, http: str | None = "127.0.0.1:8000", socket: str | None = None, processes: int = 4
) -> str:
    """The uWSGI options this project needs, as an ini file with a comment on each line.

    ``http`` (uWSGI's HTTP router) or ``socket`` (uwsgi protocol, behind nginx) says where
    to listen.
    """
    conf = get_settings()
    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE") or settings.SETTINGS_MODULE
    lines = ["[uwsgi]"]
    wsgi = getattr(settings, "WSGI_APPLICATION", None)
    if wsgi:
        module, _, callable_name = str(wsgi).rpartition(".")
        target = module if callable_name == "application" else f"{module}:{callable_name}"
        lines += ["; the Django project (WSGI_APPLICATION)", f"module = {target}"]
    if settings_module:
        lines += [
            "; the settings the spooler and the mule load too",
            f"env = DJANGO_SETTINGS_MODULE={settings_module}",
        ]
    base_dir = getattr(settings, "BASE_DIR", None)
    if base_dir:
        lines += ["; where the project's modules import from", f"chdir = {Path(base_dir)}"]
    if sys.prefix != sys.base_prefix:
        lines += [
            "; this virtualenv (a pip-built uwsgi embeds the base interpreter)",
            f"virtualenv = {sys.prefix}",
        ]
    lines += [
        "; one master process supervises the workers, the spooler and the mule",
        "master = true",
        "; stop on SIGTERM (uWSGI 2.0 reloads on it otherwise)",
        "die-on-term = true",
        "; web workers: size them for your traffic",
        f"processes = {processes}",
    ]
    if socket:
        lines += ["; uwsgi protocol, behind a web server such as nginx", f"socket = {socket}"]
    elif http:
        lines += ["; where to listen for HTTP", f"http = {http}"]
    lines += [
        "; the same directory as SPOOLCRON['SPOOL_DIR']",
        f"spooler = {conf.spool_dir.resolve()}",
        "; installs the spooler callable (it chains to uwsgidecorators' for files not ours);",
        "; imported in the master before the fork, so the spooler has it under lazy-apps too",
        "shared-import = spoolcron.uwsgi",
        "; the beat and the waker, one mule per uWSGI instance; a script path, because the",
        "; module:function form crashes the mule under lazy-apps",
        f"mule = {Path(__file__).resolve().parent / 'mule.py'}",
    ]
    return "\n".join(lines) + "\n"
