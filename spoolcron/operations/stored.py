"""Entries stored in the database: every entry (declared and stored) for the listings, and
adding, editing and deleting stored ones (``spoolcron entry-add``/``entry-edit``/
``entry-delete`` and the admin's database entries page).

A stored entry is validated by the same resolution as a declared one
(``core.entries.resolve_entry``: the system checks' messages), its task is a registered
task's name (never an import path), and a name a schedules module declares is refused.
Saving a new entry, or a new schedule, writes a ledger baseline at now: no beat, running or
started later, runs a fire from before the change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import DatabaseError

from ..core.entries import DATABASE, Entry, Problem, ResolvedEntry, collect, resolve_entry
from ..core.times import utc
from ..exceptions import InvalidEntry, UnknownEntry

__all__ = [
    "ENTRY_FIELDS",
    "add_entry",
    "all_entries",
    "declared_name_clash",
    "delete_entry",
    "edit_entry",
    "next_fires",
    "save_stored",
    "validate_entry",
]

logger = logging.getLogger("spoolcron.operations")

ENTRY_FIELDS = (
    "name",
    "task",
    "schedule",
    "zone",
    "args",
    "kwargs",
    "misfire",
    "misfire_limit",
    "grace",
    "overlap",
    "enabled",
    "jitter",
    "alert_after",
    "pause_after_failures",
)
"""The values of a stored entry, as ``add_entry`` and ``edit_entry`` take them."""

LENGTHS = {"name": 200, "task": 255, "schedule": 500, "zone": 64}
"""The longest text each column holds (``DatabaseEntry``)."""


def all_entries() -> tuple[list[ResolvedEntry], list[Problem]]:
    """The declared entries, then those stored in the database, and the problems of both.

    A database that cannot be read (not migrated, away) gives the declared ones alone."""
    from ..storage.entries import database_entries

    declared, problems = collect()
    taken = [p.entry for p in problems if p.entry is not None]
    try:
        stored, more = database_entries(declared, taken)
    except (DatabaseError, RuntimeError):  # RuntimeError: a test without database access
        return declared, problems
    return declared + stored, problems + more


def declared_name_clash(name: str) -> str | None:
    """The sentence refusing ``name`` if a schedules module declares an entry of that name."""
    declared, problems = collect()
    modules = {e.name: e.module for e in declared}
    modules.update({p.entry: p.module for p in problems if p.entry and p.entry not in modules})
    if name in modules:
        return (
            f"The name {name!r} is taken by the entry {name!r} declared in {modules[name]}; "
            "a database entry needs a name of its own."
        )
    return None


def _field_of(problem: Problem) -> str | None:
    if problem.id == "spoolcron.E003":
        return "task"
    if problem.id == "spoolcron.E002":
        return "zone" if problem.message.startswith("Cannot parse time zone") else "schedule"
    first = problem.message.split(" ", 1)[0].split("[", 1)[0]
    return first if first in ENTRY_FIELDS else None


def validate_entry(values: Mapping[str, Any]) -> ResolvedEntry:
    """The stored entry ``values`` (``ENTRY_FIELDS``) resolved, or :class:`InvalidEntry` with
    the system checks' message and the field at fault."""
    name = str(values.get("name") or "").strip()
    if not name:
        raise InvalidEntry("An entry needs a name.", "name")
    for field, limit in LENGTHS.items():
        text = values.get(field) if field != "name" else name
        if isinstance(text, str) and len(text) > limit:
            raise InvalidEntry(
                f"{field} may be at most {limit} characters long, not {len(text)}.", field
            )
    clash = declared_name_clash(name)
    if clash is not None:
        raise InvalidEntry(clash, "name")
    options = {k: values[k] for k in ENTRY_FIELDS if k in values and k != "name"}
    if not options.get("zone"):
        options["zone"] = None
    entry = Entry(name=name, **options)
    resolved = resolve_entry(DATABASE, entry)
    if isinstance(resolved, Problem):
        # The system check's own sentence (E002-E004), as `manage.py check` words it.
        raise InvalidEntry(resolved.message, _field_of(resolved))
    return resolved


def next_fires(
    entry: ResolvedEntry, count: int = 5, *, now: datetime | None = None
) -> list[datetime]:
    """The entry's next ``count`` fire times after now (its jitter included)."""
    fires: list[datetime] = []
    fire: datetime | None = now or utc(time.time())
    while fire is not None and len(fires) < count:
        fire = entry.schedule.next_after(fire)
        if fire is not None:
            fires.append(fire)
    return [utc(entry.due(f.timestamp())) for f in fires]


def save_stored(row: Any, *, by: str = "", now: float | None = None) -> ResolvedEntry:
    """Validate and save the ``DatabaseEntry`` ``row`` (new or changed); a new entry or a
    new schedule gets a ledger baseline at now (no fire from before the change runs)."""
    from ..storage.entries import save_entry
    from ..storage.ledger import DatabaseLedger
    from ..storage.models import DatabaseEntry

    resolved = validate_entry({k: getattr(row, k) for k in ENTRY_FIELDS})
    duplicate = DatabaseEntry.objects.filter(name=row.name).exclude(pk=row.pk).exists()
    if duplicate:
        raise InvalidEntry(f"A database entry named {row.name!r} exists already.", "name")
    current = time.time() if now is None else now
    if save_entry(row, by=by, now=current):
        DatabaseLedger().baseline([row.name], current)
    logger.info("database entry saved entry=%s by=%s", row.name, by)
    return resolved


def add_entry(name: str, *, by: str = "", **values: Any) -> tuple[Any, ResolvedEntry]:
    """Store a new entry; every beat runs it within a few seconds. Returns the row and the
    entry as resolved. :class:`InvalidEntry` when a value is wrong or the name is taken."""
    from ..storage.models import DatabaseEntry

    unknown = sorted(set(values) - set(ENTRY_FIELDS))
    if unknown:
        raise InvalidEntry(f"Unknown entry option {unknown[0]!r}.")
    row = DatabaseEntry(name=name, **values)
    return row, save_stored(row, by=by)


def _stored(name: str) -> Any:
    from ..storage.models import DatabaseEntry

    row = DatabaseEntry.objects.filter(name=name).first()
    if row is None:
        clash = declared_name_clash(name)
        where = (
            " (it is declared in a schedules module: change it there)" if clash is not None else ""
        )
        raise UnknownEntry(f"No database entry is named {name!r}{where}.")
    return row


def edit_entry(name: str, *, by: str = "", **changes: Any) -> tuple[Any, ResolvedEntry]:
    """Change the stored entry ``name``; a new schedule gives new fires only (the ledger's
    last fire stays, no past fire runs). :class:`UnknownEntry`, :class:`InvalidEntry`."""
    row = _stored(name)
    unknown = sorted(set(changes) - set(ENTRY_FIELDS))
    if unknown:
        raise InvalidEntry(f"Unknown entry option {unknown[0]!r}.")
    for key, value in changes.items():
        setattr(row, key, value)
    return row, save_stored(row, by=by)


def delete_entry(name: str, *, by: str = "") -> None:
    """Delete the stored entry ``name`` (and its pause state): no beat enqueues its fires
    any more (one already written to a spool directory still runs)."""
    from ..storage.models import EntryState

    row = _stored(name)
    row.delete()
    EntryState.objects.filter(entry=name).delete()
    logger.info("database entry deleted entry=%s by=%s", name, by)
