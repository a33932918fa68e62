"""``upcoming()``: the next runs of the declared entries merged with the jobs waiting in the
spool directory, where one-off jobs wait and where the beat writes each periodic fire half a
second ahead (a fire found there is listed once). It needs neither uWSGI nor the
database (which, when there, says which entries are paused)."""

from __future__ import annotations

from datetime import datetime

from ..conf import get_settings
from ..core.entries import Problem
from ..core.payload import Payload
from ..core.times import now as current_time
from ..core.upcoming import Upcoming, merge_upcoming
from ..jobs import publisher
from ..queues import local_spooled
from .entries import paused_entries, unknown_entry
from .stored import all_entries

__all__ = ["upcoming"]


def _wanted(payload: Payload, entry: str) -> bool:
    return payload.entry == entry or payload.manual_entry == entry


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
    current = current_time() if now is None else now
    entries, problems = all_entries()
    # Every local queue's directory; one uWSGI has not made yet holds nothing.
    spooled = [payload for _, _, payload in local_spooled(get_settings())]
    store = publisher().store
    if store is not None:
        # The store lists soonest first: more than `count` of them can never be shown, unless
        # only one entry's runs are wanted.
        spooled += store.waiting(limit=None if entry is not None else count + 1)
    if entry is not None:
        wanted = [e for e in entries if e.name == entry]
        if not wanted:
            raise unknown_entry(entry, entries, problems)
        entries = wanted
        spooled = [p for p in spooled if _wanted(p, entry)]
    # Paused entries are marked; without the database (not migrated) none is known paused.
    paused, _ = paused_entries(now=current.timestamp())
    notes = {name: state.note for name, state in paused.items()}
    return (
        merge_upcoming(entries, spooled, now=current, count=count, until=until, paused=notes),
        problems,
    )
