"""Health: the numbers ``spoolcron.health()`` returns and the verdict for monitoring probes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..conf import get_settings
from ..core.entries import DATABASE
from ..core.payload import due_of
from ..core.times import utc
from ..exceptions import SpoolFileError
from ..jobs import publisher
from ..queues import local_spool_dirs
from ..spool import files, heartbeat
from .entries import silent_entries
from .stored import all_entries
from .when import relative

__all__ = ["HealthReport", "health", "health_report"]


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


def _failed_since(failed_dir: Path, since: float) -> int:
    """How many files in the failed directory were moved there at ``since`` or later."""
    count = 0
    for path in files.list_quarantined(failed_dir):
        try:
            reason = files.reason_path(path)
            when = reason.stat().st_mtime if reason.exists() else path.stat().st_mtime
        except FileNotFoundError:
            continue  # retried or deleted meanwhile
        count += when >= since
    return count


def health(
    *, overdue_after: float = 5.0, failed_since: float | None = None, now: float | None = None
) -> dict[str, Any]:
    """Numbers for monitoring: pending, overdue, quarantined jobs and whether a spooler is attached.

    A job is overdue when it is due more than ``overdue_after`` seconds ago and still waits.
    ``failed`` counts every file in the failed directory; ``failed_recent`` those moved there
    in the last ``failed_since`` seconds (all of them when None).
    """
    conf = get_settings()
    current = time.time() if now is None else now
    pending = overdue = 0
    oldest: float | None = None
    queues: dict[str, dict[str, int]] = {}
    for name, directory in local_spool_dirs(conf).items():
        counts = queues[name] = {"pending": 0, "overdue": 0}
        for due in _spooled_due(directory):
            counts["pending"] += 1
            if current - due > overdue_after:
                counts["overdue"] += 1
                oldest = max(oldest or 0.0, current - due)
        pending += counts["pending"]
        overdue += counts["overdue"]
    beat = heartbeat.read(conf.spool_dir, now=current)
    failed = len(files.list_quarantined(conf.failed_dir))
    recent = failed
    if failed_since is not None:
        recent = _failed_since(conf.failed_dir, current - failed_since)
    store = publisher().store
    stored = store.count() if store is not None else 0
    # Jobs still in the store past their time: no mule publishes them.
    stored_overdue = store.count(due_before=current - overdue_after) if store is not None else 0
    return {
        "spool_dir": str(conf.spool_dir),
        "failed_dir": str(conf.failed_dir),
        "pending": pending + stored,
        "pending_spool": pending,
        "pending_store": stored,
        "store": conf.pending_store,
        "overdue": overdue,
        "overdue_in_store": stored_overdue,
        "oldest_overdue_seconds": oldest,
        "failed": failed,
        "failed_recent": recent,
        "failed_since_seconds": failed_since,
        "spooler_attached": bool(beat and beat.get("spooler_pids")),
        "spooler_pids": list(beat.get("spooler_pids", [])) if beat else [],
        "queues": queues,
    }


def _spooled_due(directory: Path) -> Iterator[float]:
    """The due time of each spool file in ``directory`` (any file: uwsgi.spool()'s too)."""
    try:
        paths = files.list_files(directory)
    except FileNotFoundError:  # nothing was ever enqueued, and no uWSGI created it
        return
    for path in paths:
        try:
            file = files.read(path)
        except (FileNotFoundError, SpoolFileError):
            continue
        yield due_of(file.args, file.at)


def health_report(
    *, max_overdue: float = 60.0, failed_since: float | None = None, now: float | None = None
) -> HealthReport:
    """:func:`spoolcron.health` and a verdict for monitoring probes.

    Unhealthy when no spooler is attached (no fresh heartbeat from the spoolcron mule), when
    a job waits more than ``max_overdue`` seconds past its due time, or when jobs are
    quarantined in the failed directory (only those moved there in the last ``failed_since``
    seconds, if given: older failures stop paging), or when an entry with ``alert_after`` has
    not succeeded for longer than that (the dead-man switch; paused entries excepted).
    """
    conf = get_settings()
    numbers = health(overdue_after=max_overdue, failed_since=failed_since, now=now)
    reasons = []
    if not conf.spool_dir.is_dir():
        reasons.append(
            f"The spool directory {str(conf.spool_dir)!r} does not exist: "
            "is uWSGI running with this --spooler?"
        )
    elif not numbers["spooler_attached"]:
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
    if numbers["overdue_in_store"]:
        reasons.append(
            f"{numbers['overdue_in_store']} job(s) are still in the {conf.pending_store} pending "
            f"store more than {max_overdue:g} s past their time: no spoolcron mule publishes "
            "them (is uWSGI running with the options `spoolcron uwsgi-config` prints?)."
        )
    entries, problems = all_entries()
    current = time.time() if now is None else now
    silent = silent_entries(entries, now=utc(current))
    numbers["silent_entries"] = [entry.name for entry, _ in silent]
    for entry, since in silent:
        assert entry.alert_after is not None
        reasons.append(
            f"Entry {entry.name!r} has not succeeded for "
            f"{relative(current - since.timestamp()).removeprefix('in ')} (alert_after "
            f"{relative(entry.alert_after).removeprefix('in ')})."
        )
    if problems:
        # Stored entries' problems are not system checks: `entries` lists every problem.
        stored = any(p.module == DATABASE for p in problems)
        reasons.append(
            f"{len(problems)} periodic entr{'y is' if len(problems) == 1 else 'ies are'} invalid "
            f"and not run ({', '.join(sorted({p.id for p in problems}))}): see "
            f"{'`spoolcron entries`' if stored else '`manage.py check`'}."
        )
    if numbers["failed_recent"]:
        within = (
            ""
            if failed_since is None
            else f" (failed in the last {relative(failed_since).removeprefix('in ')})"
        )
        reasons.append(
            f"{numbers['failed_recent']} job(s) are quarantined in {str(conf.failed_dir)!r}"
            f"{within}: see `spoolcron jobs --failed`."
        )
    return HealthReport(numbers=numbers, reasons=reasons)
