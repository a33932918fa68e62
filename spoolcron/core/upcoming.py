"""What runs next: the fires of the periodic entries merged with the jobs waiting to run.

``merge_upcoming()`` is pure: a heap holds the next fire of every entry; popping one
pushes that entry's following fire, so listing the next *n* runs costs one ``next_after`` per
entry plus about *n* more, however far apart the fires are. Entries that share a schedule
share its computations (the schedules are hashable values), so 10,000 entries spread over a
few hundred distinct schedules cost a few hundred ``next_after`` calls.

``spoolcron.operations.upcoming`` adds the I/O (the declared entries, the waiting jobs).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from django.utils import timezone

import schedules
from schedules.zones import zone_name

from .beat import fire_job_id
from .entries import ResolvedEntry
from .payload import Payload

__all__ = ["Source", "Upcoming", "UpcomingRun", "merge_upcoming"]

Source = Literal["periodic", "one-off"]


@dataclass(frozen=True)
class UpcomingRun:
    """One run to come: a periodic fire, or a job waiting in the spool directory."""

    when: datetime
    """When it is due, aware, in UTC."""
    name: str
    """The entry's name for periodic runs, the job id for one-off jobs."""
    task: str
    schedule: str
    """The schedule in plain English, or ``"one-off"`` (plus the attempt for retries)."""
    source: Source
    expression: str | None = None
    """``str(schedule)`` for periodic runs."""
    zone: str | None = None
    """The entry's time zone; None for one-off jobs."""
    entry: str | None = None
    job_id: str | None = None
    """The spool file's job id when the run is already in the spool directory."""
    attempt: int = 1
    paused: bool = False
    """The entry is paused: this fire runs only if it is resumed by then."""
    note: str = ""
    """The pause's note."""
    stored: bool = False
    """The entry is stored in the database (the admin, ``spoolcron entry-add``)."""

    def as_dict(self, now: datetime) -> dict[str, Any]:
        """JSON-ready: ``when`` in ISO 8601 in the current time zone, ``in_seconds`` counted
        from ``now``."""
        return {
            "when": timezone.localtime(self.when).isoformat(),
            "in_seconds": round((self.when - now).total_seconds(), 3),
            "name": self.name,
            "task": self.task,
            "schedule": self.schedule,
            "expression": self.expression,
            "zone": self.zone,
            "source": self.source,
            "entry": self.entry,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "paused": self.paused,
            "note": self.note,
            "origin": None if self.entry is None else ("database" if self.stored else "module"),
        }


@dataclass(frozen=True)
class Upcoming:
    """The first ``count`` runs after ``now`` (and not after ``until``), in time order."""

    runs: list[UpcomingRun]
    more: bool
    """Whether more runs follow (within ``until``) than ``count`` allowed."""
    now: datetime
    until: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times in ISO 8601 in the current time zone, each run's ``in_seconds``
        counted from ``now``."""
        until = None if self.until is None else timezone.localtime(self.until).isoformat()
        return {
            "now": timezone.localtime(self.now).isoformat(),
            "until": until,
            "runs": [run.as_dict(self.now) for run in self.runs],
            "more": self.more,
        }


def _describe(entry: ResolvedEntry) -> str:
    return entry.schedule.describe()


def _spooled_run(payload: Payload, by_name: dict[str, ResolvedEntry]) -> UpcomingRun:
    entry = by_name.get(payload.entry) if payload.entry is not None else None
    source: Source
    if payload.entry is not None:
        base = _describe(entry) if entry is not None else "periodic fire"
        name, source = payload.entry, "periodic"
    else:
        manual = payload.manual_entry
        base = f"manual run of {manual!r}" if manual is not None else "one-off"
        name, source = payload.job_id, "one-off"
    return UpcomingRun(
        when=datetime.fromtimestamp(payload.run_after, UTC),
        name=name,
        task=payload.task,
        schedule=base if payload.attempt == 1 else f"{base}, attempt {payload.attempt}",
        source=source,
        expression=str(entry.schedule) if entry is not None else None,
        zone=zone_name(entry.schedule.tz) if entry is not None else None,
        entry=payload.entry,
        job_id=payload.job_id,
        attempt=payload.attempt,
        stored=entry is not None and entry.from_database,
    )


def merge_upcoming(
    entries: Sequence[ResolvedEntry],
    spooled: Iterable[Payload] = (),
    *,
    now: datetime,
    count: int = 20,
    until: datetime | None = None,
    paused: Mapping[str, str] | None = None,
) -> Upcoming:
    """The next ``count`` runs after ``now``: fires of the enabled ``entries`` and ``spooled`` jobs.

    A fire is listed at its jittered instant (``ResolvedEntry.due``). ``paused`` maps the
    names of paused entries to their notes: their fires are listed, marked paused.

    Spooled jobs are listed whenever they are due, overdue ones first; a periodic fire that
    the beat already wrote to the spool is listed once. Runs due at the same instant are
    ordered by name. With ``until``, nothing later than it is listed.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a whole number >= 1, not {count!r}.")
    if now.tzinfo is None or (until is not None and until.tzinfo is None):
        raise ValueError(f"now and until must be aware datetimes, not {now!r} and {until!r}.")
    limit = math.inf if until is None else until.timestamp()
    active = [e for e in entries if e.enabled]
    by_name = {e.name: e for e in entries}
    # Entries sharing a schedule share its fires: number the distinct schedules once (hashing
    # a schedule costs more than hashing its number), then compute each (schedule, instant)
    # only once.
    numbers: dict[schedules.Schedule, int] = {}
    number_of = [numbers.setdefault(e.schedule, len(numbers)) for e in active]
    distinct = list(numbers)
    known: dict[tuple[int, float], float | None] = {}

    def next_fire(number: int, after: float) -> float | None:
        key = (number, after)
        try:
            return known[key]
        except KeyError:
            pass
        fire = distinct[number].next_after(datetime.fromtimestamp(after, UTC))
        value = None if fire is None else fire.timestamp()
        known[key] = value
        return value

    paused = paused or {}
    # (due, name, 0 = periodic fire / 1 = spooled job, index, fire time): a total order,
    # ties by name.
    heap: list[tuple[float, str, int, int, float]] = []
    start = now.timestamp()
    for index, entry in enumerate(active):
        fire = next_fire(number_of[index], start)
        if fire is not None and entry.due(fire) <= limit:
            heap.append((entry.due(fire), entry.name, 0, index, fire))
    jobs = [p for p in spooled if p.run_after <= limit]
    for index, payload in enumerate(jobs):
        heap.append((payload.run_after, payload.entry or payload.job_id, 1, index, 0.0))
    heapq.heapify(heap)
    in_spool = {p.job_id for p in jobs if p.entry is not None}

    runs: list[UpcomingRun] = []
    while heap and len(runs) <= count:  # one more than asked: is there more?
        due, name, kind, index, fire = heapq.heappop(heap)
        if kind == 1:
            runs.append(_spooled_run(jobs[index], by_name))
            continue
        entry = active[index]
        following = next_fire(number_of[index], fire)
        if following is not None and entry.due(following) <= limit:
            heapq.heappush(heap, (entry.due(following), name, 0, index, following))
        if in_spool and fire_job_id(name, fire) in in_spool:
            continue  # the beat wrote this fire already: its spool file is listed instead
        runs.append(
            UpcomingRun(
                when=datetime.fromtimestamp(due, UTC),
                name=name,
                task=entry.task.name,
                schedule=_describe(entry),
                source="periodic",
                expression=str(entry.schedule),
                zone=zone_name(entry.schedule.tz),
                entry=name,
                paused=name in paused,
                note=paused.get(name, ""),
                stored=entry.from_database,
            )
        )
    return Upcoming(runs=runs[:count], more=len(runs) > count, now=now, until=until)
