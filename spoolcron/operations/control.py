"""Runtime control of periodic entries: pause, resume, backfill, and the pause states to show.

The pause state lives in the database (``EntryState``, written by the ledger): every beat on
every host reads it within a second, so ``pause`` needs no deploy and no restart. Backfill
claims each past fire in the ledger like the beat does, so a fire runs once across hosts
and a second backfill of the same range enqueues nothing.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import schedules

from ..core.beat import fire_job_id
from ..core.entries import ResolvedEntry
from ..core.payload import META_OVERLAP, Payload, encode_body
from ..core.protocols import EntryPause
from ..core.times import from_db_datetime, to_db_datetime, utc
from ..exceptions import InvalidArguments
from ..jobs import publisher
from .entries import unknown_entry
from .stored import all_entries

if TYPE_CHECKING:
    from ..storage.ledger import DatabaseLedger

__all__ = [
    "BackfillReport",
    "backfill",
    "pause_entry",
    "resume_entry",
]

logger = logging.getLogger("spoolcron.operations")

BACKFILL_SPACING = 0.02
"""Seconds between the due times of two backfilled fires (50 a second) by default."""


def _entry(name: str) -> ResolvedEntry:
    entries, problems = all_entries()
    for entry in entries:
        if entry.name == name:
            return entry
    raise unknown_entry(name, entries, problems)


def _ledger() -> DatabaseLedger:
    from ..storage.ledger import DatabaseLedger

    return DatabaseLedger()


def pause_entry(
    name: str,
    *,
    note: str = "",
    until: datetime | None = None,
    now: float | None = None,
    by: str = "",
) -> EntryPause:
    """Pause the declared entry ``name`` on every host (until ``until``, or until resumed).

    Raises :class:`UnknownEntry` for a name no schedules module declares and
    :class:`InvalidArguments` for an ``until`` not in the future.
    """
    current = time.time() if now is None else now
    _entry(name)
    if until is not None and until.timestamp() <= current:
        raise InvalidArguments(f"until must be in the future, not {until.isoformat()!r}.")
    state = _ledger().pause(
        name,
        note=note,
        until=None if until is None else until.timestamp(),
        now=current,
        by=by,
    )
    logger.info("entry paused entry=%s note=%r until=%s by=%s", name, note, state.until, by)
    return state


def resume_entry(
    name: str, *, catch_up: bool = False, now: float | None = None, by: str = ""
) -> EntryPause | None:
    """Resume the paused entry ``name``; return its pause as it was, None if it was not paused.

    ``catch_up`` runs the fires missed while paused by the entry's misfire policy
    (``coalesce``: the latest once); without it they are skipped and the next fire is the
    first after now.
    """
    _entry(name)
    was = _ledger().resume(name, catch_up=catch_up, now=now, by=by)
    if was is not None:
        logger.info("entry resumed entry=%s catch_up=%s by=%s", name, catch_up, by)
    return was


@dataclass(frozen=True)
class BackfillReport:
    """What ``backfill()`` did (or, with ``dry_run``, would do)."""

    entry: str
    fires: int
    """Fire times in the range."""
    enqueued: int
    """Fires enqueued (or, with ``dry_run``, to enqueue)."""
    claimed: int
    """Fires the ledger had claimed already: left out, or re-run with ``force``."""
    forced: int
    """Claimed fires re-run under a new job id (``force``)."""
    dry_run: bool
    first_due: datetime | None = None
    last_due: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "entry": self.entry,
            "fires": self.fires,
            "enqueued": self.enqueued,
            "claimed": self.claimed,
            "forced": self.forced,
            "dry_run": self.dry_run,
            "first_due": iso(self.first_due),
            "last_due": iso(self.last_due),
        }


def _fires(schedule: schedules.Schedule, start: datetime, end: datetime) -> Iterator[float]:
    fire: datetime | None = schedule.next_after(utc(start.timestamp() - 1e-6))
    while fire is not None and fire <= end:
        yield fire.timestamp()
        fire = schedule.next_after(fire)


def backfill(
    name: str,
    start: datetime,
    end: datetime,
    *,
    dry_run: bool = False,
    force: bool = False,
    spacing: float = BACKFILL_SPACING,
    now: float | None = None,
) -> BackfillReport:
    """Enqueue each fire of the entry ``name`` in [start, end] that the ledger has not claimed.

    Each fire is claimed as the beat claims it, so it is enqueued once across hosts, and a
    second backfill of the range enqueues none. ``force`` also re-runs the claimed ones,
    under a new job id. The jobs are due ``spacing`` seconds apart from now (those due past
    the horizon wait in the pending store), so a long range does not flood the spooler.
    """
    current = time.time() if now is None else now
    entry = _entry(name)
    if end < start:
        raise InvalidArguments(
            f"--to must not be earlier than --from, not {end.isoformat()!r} before "
            f"{start.isoformat()!r}."
        )
    if end.timestamp() > current:
        raise InvalidArguments(f"--to must not be in the future, not {end.isoformat()!r}.")
    if not spacing >= 0:
        raise InvalidArguments(f"spacing must be a number of seconds >= 0, not {spacing!r}.")
    from ..storage.models import FireClaim

    ledger = _ledger()
    claimed_before = {
        from_db_datetime(row)
        for row in FireClaim.objects.filter(
            entry=name, fire_time__gte=to_db_datetime(start), fire_time__lte=to_db_datetime(end)
        ).values_list("fire_time", flat=True)
    }
    out = publisher()
    token = format(int(current * 1000) % 36**6, "x")
    fires = enqueued = claimed = forced = 0
    first_due: float | None = None
    due = current
    for fire in _fires(entry.schedule, start, end):
        fires += 1
        already = fire in claimed_before
        claimed += already
        if dry_run:
            if already and not force:
                continue
            enqueued += 1
            forced += already
            first_due = due if first_due is None else first_due
            due += spacing
            continue
        payload = _payload(entry, fire, fire_job_id(name, fire), due, current)
        won = not already and ledger.claim(
            name, fire, payload.job_id, functools.partial(out.publish, payload)
        )
        if not won:
            claimed += not already  # another host (or backfill) claimed it meanwhile
            if not force:
                continue
            payload = _payload(entry, fire, fire_job_id(f"{name}#{token}", fire), due, current)
            out.publish(payload, encode_body(payload))
            forced += 1
        enqueued += 1
        first_due = due if first_due is None else first_due
        due += spacing
    logger.info(
        "backfill entry=%s from=%s to=%s fires=%d enqueued=%d claimed=%d forced=%d dry_run=%s",
        name,
        start.isoformat(),
        end.isoformat(),
        fires,
        enqueued,
        claimed,
        forced,
        dry_run,
    )
    return BackfillReport(
        entry=name,
        fires=fires,
        enqueued=enqueued,
        claimed=claimed,
        forced=forced,
        dry_run=dry_run,
        first_due=None if first_due is None else utc(first_due),
        last_due=None if first_due is None else utc(due - spacing),
    )


def _payload(entry: ResolvedEntry, fire: float, job_id: str, due: float, now: float) -> Payload:
    # Backfilled fires run one after the other whatever the entry's overlap policy: a fire
    # skipped because the previous backfilled one still runs would be lost.
    return Payload(
        task=entry.task.name,
        job_id=job_id,
        run_after=due,
        args=list(entry.args),
        kwargs=dict(entry.kwargs),
        meta={META_OVERLAP: "allow"},
        enqueued_at=now,
        entry=entry.name,
    )
