"""Operations on periodic entries: list them with what the ledger knows, run one now."""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.db import DatabaseError
from django.db.models import Max, OuterRef, Subquery
from django.utils import timezone

import schedules
from schedules.zones import zone_name

from ..core.entries import Problem, ResolvedEntry
from ..core.payload import META_MANUAL_RUN
from ..core.protocols import EntryPause
from ..core.times import aware, utc
from ..core.times import now as current_time
from ..exceptions import UnknownEntry
from ..jobs import Job, schedule
from .stored import all_entries

__all__ = [
    "EntriesReport",
    "EntryInfo",
    "list_entries",
    "paused_entries",
    "run_entry",
    "silent_entries",
    "unknown_entry",
]

logger = logging.getLogger("spoolcron.operations")


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
    jitter: float = 0.0
    alert_after: float | None = None
    paused: bool = False
    """Paused now (``spoolcron pause``): its fires are not enqueued."""
    pause_note: str = ""
    paused_since: datetime | None = None
    paused_until: datetime | None = None
    """When the pause ends by itself (None: when resumed)."""
    last_success: datetime | None = None
    """When the newest successful run finished."""
    overdue: bool = False
    """``alert_after`` is set and the last success (or, never succeeded, the first time
    the beat saw the entry) is older than that: ``health`` reports it."""
    pause_after_failures: int | None = None
    origin: str = "module"
    """``"module"``: declared in ``module``; ``"database"``: stored in the database (the
    admin, ``spoolcron entry-add``)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, times in ISO 8601 in the current time zone (``next_fires`` left out)."""

        def iso(value: datetime | None) -> str | None:
            return None if value is None else timezone.localtime(value).isoformat()

        return {
            "name": self.name,
            "task": self.task,
            "expression": self.expression,
            "description": self.description,
            "zone": self.zone,
            "misfire": self.misfire,
            "misfire_limit": self.misfire_limit,
            "grace": self.grace,
            "overlap": self.overlap,
            "enabled": self.enabled,
            "module": self.module,
            "last_fire": iso(self.last_fire),
            "next_fire": iso(self.next_fire),
            "last_outcome": self.last_outcome,
            "last_run": iso(self.last_run),
            "jitter": self.jitter,
            "alert_after": self.alert_after,
            "paused": self.paused,
            "pause_note": self.pause_note,
            "paused_since": iso(self.paused_since),
            "paused_until": iso(self.paused_until),
            "last_success": iso(self.last_success),
            "overdue": self.overdue,
            "pause_after_failures": self.pause_after_failures,
            "origin": self.origin,
        }


@dataclass(frozen=True)
class EntriesReport:
    entries: list[EntryInfo]
    problems: list[Problem]
    ledger_error: str | None = None
    """Why the ledger could not be read (e.g. not migrated); last fires are then unknown."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the entries' ``as_dict()``, the problems' fields, the ledger error."""
        return {
            "entries": [entry.as_dict() for entry in self.entries],
            "problems": [asdict(problem) for problem in self.problems],
            "ledger_error": self.ledger_error,
        }


def _last_fires() -> dict[str, datetime]:
    # Models import lazily: spoolcron/__init__ reaches this package before Django's apps load.
    from ..storage.models import FireClaim

    # job_id "" rows are baselines (when the beat first saw the entry), not fires.
    rows = (
        FireClaim.objects.exclude(job_id="")
        .values("entry")
        .annotate(last=Max("fire_time"))
        .values_list("entry", "last")
    )
    return {entry: aware(last) for entry, last in rows}


def _last_runs() -> dict[str, tuple[str, datetime]]:
    from ..storage.models import Run

    newest = Run.objects.filter(entry=OuterRef("entry")).order_by("-started", "-pk").values("pk")
    rows = (
        Run.objects.exclude(entry="")
        .filter(pk=Subquery(newest[:1]))
        .values_list("entry", "outcome", "started")
    )
    return {entry: (outcome, aware(started)) for entry, outcome, started in rows}


def _last_successes() -> dict[str, datetime]:
    from ..storage.models import Run

    rows = (
        Run.objects.exclude(entry="")
        .filter(outcome=Run.Outcome.SUCCEEDED)
        .values("entry")
        .annotate(last=Max("finished"))
        .values_list("entry", "last")
    )
    return {entry: aware(last) for entry, last in rows if last is not None}


def _watched_since() -> dict[str, datetime]:
    """When the beat first saw each entry (its oldest claim, a baseline or a fire)."""
    from django.db.models import Min

    from ..storage.models import FireClaim

    rows = FireClaim.objects.values("entry").annotate(first=Min("fire_time"))
    return {row["entry"]: aware(row["first"]) for row in rows}


def silent_since(
    entry: ResolvedEntry,
    successes: dict[str, datetime],
    watched: dict[str, datetime],
) -> datetime | None:
    """Since when the entry has not succeeded: its last success, else since the beat watches
    it (None: the beat never saw it)."""
    return successes.get(entry.name) or watched.get(entry.name)


def paused_entries(*, now: float | None = None) -> tuple[dict[str, EntryPause], str | None]:
    """The entries paused now, and why the states could not be read (None when they were)."""
    from ..storage.ledger import DatabaseLedger

    current = time.time() if now is None else now
    try:
        states = DatabaseLedger().pause_states()
    except (DatabaseError, RuntimeError) as exc:  # RuntimeError: no database access allowed
        return {}, f"The pause states could not be read (has `manage.py migrate` run?): {exc}"
    return {name: state for name, state in states.items() if state.active(current)}, None


def silent_entries(
    entries: Sequence[ResolvedEntry], *, now: datetime
) -> list[tuple[ResolvedEntry, datetime]]:
    """The dead-man switch: each enabled, unpaused entry with ``alert_after`` whose last
    success (or, never succeeded, the first time the beat saw it) is older than that, with
    that time. Reads the database only if some entry sets ``alert_after``."""
    watching = [e for e in entries if e.enabled and e.alert_after is not None]
    if not watching:
        return []
    successes = _last_successes()
    watched = _watched_since()
    paused, _ = paused_entries(now=now.timestamp())
    found = []
    for entry in watching:
        silent = silent_since(entry, successes, watched)
        assert entry.alert_after is not None
        if (
            entry.name not in paused
            and silent is not None
            and (now - silent).total_seconds() > entry.alert_after
        ):
            found.append((entry, silent))
    return found


def _next_fires(schedule: schedules.Schedule, after: datetime, count: int) -> tuple[datetime, ...]:
    fires: list[datetime] = []
    fire: datetime | None = after
    while fire is not None and len(fires) < count:
        fire = schedule.next_after(fire)
        if fire is not None:
            fires.append(fire)
    return tuple(fires)


def list_entries(*, now: datetime | None = None, fires: int = 1) -> EntriesReport:
    """Every entry (declared, then stored in the database) with its last fire, next fires
    and last outcome, and any problems.

    ``fires`` is how many of the next fires each entry lists in ``next_fires``. A ledger that
    cannot be read (not migrated, database down) does not stop the listing: ``ledger_error``
    says why the last fires and outcomes are missing.
    """
    if isinstance(fires, bool) or not isinstance(fires, int) or fires < 1:
        raise ValueError(f"fires must be a whole number >= 1, not {fires!r}.")
    current = current_time() if now is None else now
    # Entries sharing a schedule (schedules are hashable values) share its computation.
    computed: dict[schedules.Schedule, tuple[datetime, ...]] = {}
    entries, problems = all_entries()
    last_fires: dict[str, datetime] = {}
    last_runs: dict[str, tuple[str, datetime]] = {}
    successes: dict[str, datetime] = {}
    watched: dict[str, datetime] = {}
    ledger_error = None
    try:
        last_fires = _last_fires()
        last_runs = _last_runs()
        successes = _last_successes()
        if any(e.alert_after is not None for e in entries):
            watched = _watched_since()
    except DatabaseError as exc:
        ledger_error = f"The ledger could not be read (has `manage.py migrate` run?): {exc}"
    paused, _ = paused_entries(now=current.timestamp())
    infos = []
    for entry in entries:
        outcome, started = last_runs.get(entry.name, (None, None))
        next_fires: tuple[datetime, ...] = ()
        if entry.enabled:
            if entry.schedule not in computed:
                computed[entry.schedule] = _next_fires(entry.schedule, current, fires)
            next_fires = computed[entry.schedule]
        pause = paused.get(entry.name)
        silent = silent_since(entry, successes, watched)
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
                jitter=entry.jitter,
                alert_after=entry.alert_after,
                paused=pause is not None,
                pause_note=pause.note if pause is not None else "",
                paused_since=utc(pause.since) if pause and pause.since is not None else None,
                paused_until=utc(pause.until) if pause and pause.until is not None else None,
                last_success=successes.get(entry.name),
                overdue=(
                    pause is None
                    and entry.enabled
                    and entry.alert_after is not None
                    and silent is not None
                    and (current - silent).total_seconds() > entry.alert_after
                ),
                pause_after_failures=entry.pause_after_failures,
                origin="database" if entry.from_database else "module",
            )
        )
    return EntriesReport(entries=infos, problems=problems, ledger_error=ledger_error)


def run_entry(name: str) -> Job:
    """Enqueue one run of the entry ``name`` now, as a one-off job (disabled entries too).

    The job's ``meta`` holds ``{"entry_manual_run": name}``. Raises :class:`UnknownEntry`
    when no usable entry has that name.
    """
    entries, problems = all_entries()
    for entry in entries:
        if entry.name == name:
            job = schedule(
                entry.task,
                args=list(entry.args),
                kwargs=dict(entry.kwargs),
                meta={META_MANUAL_RUN: name},
            )
            logger.info("entry run by hand entry=%s job=%s", name, job.id)
            return job
    raise unknown_entry(name, entries, problems)


def unknown_entry(
    name: str, entries: Sequence[ResolvedEntry], problems: Sequence[Problem]
) -> UnknownEntry:
    """The error for an entry ``name`` that is not among ``entries``: its problem if it has
    one, else the declared names close to it (``heartbeat`` suggests ``myapp.tasks.heartbeat``,
    the name ``@spoolcron.periodic`` gives)."""
    for problem in problems:
        if problem.entry == name:
            return UnknownEntry(f"Entry {name!r} cannot be used: {problem.message}")
    names = sorted({entry.name for entry in entries})
    close = [n for n in names if n.rpartition(".")[2] == name]
    close += [n for n in difflib.get_close_matches(name, names, n=3) if n not in close]
    if close:
        hint = " or ".join(repr(n) for n in close[:3])
        return UnknownEntry(
            f"Unknown entry {name!r}: no schedules module declares it; did you mean {hint}?"
        )
    return UnknownEntry(f"Unknown entry {name!r}: no schedules module declares it.")
