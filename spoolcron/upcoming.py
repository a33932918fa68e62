"""What runs next: the fires of the periodic entries merged with the jobs waiting in the spool.

``merge_upcoming()`` is the pure part: a heap holds the next fire of every entry; popping one
pushes that entry's following fire, so listing the next *n* runs costs one ``next_after`` per
entry plus about *n* more, however far apart the fires are. Entries that share a schedule
share its computations (the schedules are hashable values), so 10,000 entries spread over a
few hundred distinct schedules cost a few hundred ``next_after`` calls.

``upcoming()`` adds the I/O: it collects the declared entries and reads the spool directory,
where one-off jobs wait and where the beat writes each periodic fire half a second ahead (a
fire found there is listed once). It needs neither uWSGI nor the database.

``parse_when()`` reads the ``WHEN`` of the command line: an ISO date-time or ``+2h``,
``today``, ``tomorrow``...
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Literal

from django.utils import timezone

import schedules
from schedules.zones import zone_name

from .beat import fire_job_id
from .entries import Problem, ResolvedEntry, collect
from .exceptions import BadWhen, UnknownEntry
from .jobs import pending_jobs
from .payload import Payload

__all__ = [
    "MANUAL_RUN_META",
    "BadWhen",
    "Source",
    "UnknownEntry",
    "Upcoming",
    "UpcomingRun",
    "merge_upcoming",
    "parse_when",
    "relative",
    "upcoming",
]

Source = Literal["periodic", "one-off"]

MANUAL_RUN_META = "entry_manual_run"
"""The ``meta`` key of a job enqueued by ``spoolcron run ENTRY``: the entry's name."""


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


@dataclass(frozen=True)
class Upcoming:
    """The first ``count`` runs after ``now`` (and not after ``until``), in time order."""

    runs: list[UpcomingRun]
    more: bool
    """Whether more runs follow (within ``until``) than ``count`` allowed."""
    now: datetime
    until: datetime | None


def _describe(entry: ResolvedEntry) -> str:
    return entry.schedule.describe()


def _spooled_run(payload: Payload, by_name: dict[str, ResolvedEntry]) -> UpcomingRun:
    entry = by_name.get(payload.entry) if payload.entry is not None else None
    source: Source
    if payload.entry is not None:
        base = _describe(entry) if entry is not None else "periodic fire"
        name, source = payload.entry, "periodic"
    else:
        manual = payload.meta.get(MANUAL_RUN_META)
        base = f"manual run of {manual!r}" if isinstance(manual, str) else "one-off"
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
    )


def merge_upcoming(
    entries: Sequence[ResolvedEntry],
    spooled: Iterable[Payload] = (),
    *,
    now: datetime,
    count: int = 20,
    until: datetime | None = None,
) -> Upcoming:
    """The next ``count`` runs after ``now``: fires of the enabled ``entries`` and ``spooled`` jobs.

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

    # (due, name, 0 = periodic fire / 1 = spooled job, index): a total order, ties by name.
    heap: list[tuple[float, str, int, int]] = []
    start = now.timestamp()
    for index, entry in enumerate(active):
        fire = next_fire(number_of[index], start)
        if fire is not None and fire <= limit:
            heap.append((fire, entry.name, 0, index))
    jobs = [p for p in spooled if p.run_after <= limit]
    for index, payload in enumerate(jobs):
        heap.append((payload.run_after, payload.entry or payload.job_id, 1, index))
    heapq.heapify(heap)
    in_spool = {p.job_id for p in jobs if p.entry is not None}

    runs: list[UpcomingRun] = []
    while heap and len(runs) <= count:  # one more than asked: is there more?
        due, name, kind, index = heapq.heappop(heap)
        if kind == 1:
            runs.append(_spooled_run(jobs[index], by_name))
            continue
        entry = active[index]
        following = next_fire(number_of[index], due)
        if following is not None and following <= limit:
            heapq.heappush(heap, (following, name, 0, index))
        if in_spool and fire_job_id(name, due) in in_spool:
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
            )
        )
    return Upcoming(runs=runs[:count], more=len(runs) > count, now=now, until=until)


def _wanted(payload: Payload, entry: str) -> bool:
    return payload.entry == entry or payload.meta.get(MANUAL_RUN_META) == entry


def upcoming(
    *,
    count: int = 20,
    until: datetime | None = None,
    entry: str | None = None,
    now: datetime | None = None,
) -> tuple[Upcoming, list[Problem]]:
    """The next runs of the declared entries and the spool directory's jobs, and entry problems.

    ``entry`` keeps only that entry's runs (its fires, retries and manual runs); an unknown
    name raises :class:`UnknownEntry`. Entries with problems are left out and the problems
    returned, so one bad entry does not hide the others' runs.
    """
    from .conf import get_settings

    current = timezone.now() if now is None else now
    entries, problems = collect()
    spool_dir = get_settings().spool_dir
    try:
        spooled = [payload for _, payload in pending_jobs(spool_dir)]
    except FileNotFoundError:
        spooled = []  # uWSGI creates it on start; nothing was enqueued yet
    if entry is not None:
        entries = [e for e in entries if e.name == entry]
        if not entries:
            for problem in problems:
                if problem.entry == entry:
                    raise UnknownEntry(f"Entry {entry!r} cannot be used: {problem.message}")
            raise UnknownEntry(f"Unknown entry {entry!r}: no schedules module declares it.")
        spooled = [p for p in spooled if _wanted(p, entry)]
    return merge_upcoming(entries, spooled, now=current, count=count, until=until), problems


# --- WHEN ----------------------------------------------------------------------------------

_RELATIVE = re.compile(
    r"^\+\s*(?P<amount>\d+(?:\.\d+)?)\s*"
    r"(?P<unit>s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?)$"
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _midnight_after(day: datetime, days: int, tz: tzinfo) -> datetime:
    local = day.astimezone(tz).date() + timedelta(days=days)
    return datetime.combine(local, time(0), tzinfo=tz)


def parse_when(
    text: str, *, now: datetime | None = None, tz: tzinfo | None = None, option: str = "--until"
) -> datetime:
    """The aware datetime meant by ``text``: an ISO date-time or a phrase relative to ``now``.

    ISO date-times without an offset are read in ``tz`` (default: the project's
    ``TIME_ZONE``). Phrases: ``now``, ``+90s``, ``+15m``, ``+2h``, ``+3d``, ``+1w`` (also
    ``+2 hours``...), ``today`` (the coming local midnight) and ``tomorrow`` (the one after).
    ``option`` names the argument in the error message.
    """
    zone = timezone.get_default_timezone() if tz is None else tz
    current = timezone.now() if now is None else now
    phrase = text.strip().lower() if isinstance(text, str) else ""
    if phrase == "now":
        return current
    if phrase == "today":
        return _midnight_after(current, 1, zone)
    if phrase == "tomorrow":
        return _midnight_after(current, 2, zone)
    match = _RELATIVE.match(phrase)
    if match:
        seconds = float(match["amount"]) * _UNIT_SECONDS[match["unit"][0]]
        try:
            return current + timedelta(seconds=seconds)
        except OverflowError:
            pass
    elif phrase:
        try:
            parsed = datetime.fromisoformat(text.strip())
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)
    raise BadWhen(
        f"Cannot understand {option} {text!r}: use an ISO date-time like 2026-12-24T18:00 "
        "or +2h, +3d, today, tomorrow."
    )


def relative(seconds: float) -> str:
    """``"in 4 min"``, ``"2 s ago"``, ``"in 1 h 5 min"``, ``"in 3 d 2 h"`` or ``"now"``."""
    whole = round(abs(seconds))
    if whole == 0:
        return "now"
    if whole < 60:
        amount = f"{whole} s"
    elif whole < 3600 - 30:
        amount = f"{round(whole / 60)} min"
    elif whole < 86400 - 30:
        hours, minutes = divmod(round(whole / 60), 60)
        amount = f"{hours} h {minutes} min" if minutes else f"{hours} h"
    else:
        days, hours = divmod(round(whole / 3600), 24)
        amount = f"{days} d {hours} h" if hours else f"{days} d"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"
