"""Periodic entries stored in the database (``DatabaseEntry``): reading them for the beats and
the listings, saving and deleting them for the operations.

A row becomes an ordinary ``core.entries.Entry`` and goes through the same resolution as a
declared one (``resolve_entries``), with the declared entries' names taken: a row whose name
a schedules module declares too is a problem (E001) and not run, the declared entry wins.

Every beat reads ``DatabaseEntrySource.version()`` about once a second: one aggregate
(rows, sum of versions, highest id) that changes with every save (the version goes up), every
delete (fewer rows) and every new row (a higher id than any before, even after a delete).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Count, F, Max, Sum

from ..core.entries import DATABASE, Entry, Problem, ResolvedEntry, resolve_entries
from .models import DatabaseEntry

__all__ = [
    "DatabaseEntrySource",
    "database_entries",
    "entries_version",
    "entry_of",
    "resolve_rows",
    "save_entry",
]

logger = logging.getLogger("spoolcron.beat")


def entry_of(row: DatabaseEntry) -> Entry:
    """The row as the ``Entry`` a schedules module would declare (the task by its name)."""
    return Entry(
        name=row.name,
        task=row.task,
        schedule=row.schedule,
        args=row.args,
        kwargs=row.kwargs,
        zone=row.zone or None,
        misfire=row.misfire,  # type: ignore[arg-type]  # checked by resolve_entry
        misfire_limit=row.misfire_limit,
        grace=row.grace,
        overlap=row.overlap,  # type: ignore[arg-type]
        enabled=row.enabled,
        jitter=row.jitter,
        alert_after=row.alert_after,
        pause_after_failures=row.pause_after_failures,
    )


def entries_version(*, using: str = "default") -> tuple[int, int, int]:
    """(rows, sum of versions, highest id): changes whenever a row is added, saved or deleted."""
    found = DatabaseEntry.objects.using(using).aggregate(
        rows=Count("pk"), versions=Sum("version"), last=Max("pk")
    )
    return (found["rows"], found["versions"] or 0, found["last"] or 0)


def resolve_rows(
    rows: Sequence[DatabaseEntry], declared: Sequence[ResolvedEntry], taken: Sequence[str] = ()
) -> tuple[list[ResolvedEntry], list[Problem]]:
    """The rows resolved like declared entries; names in ``declared`` (or ``taken``: declared
    entries with problems) are E001 problems."""
    names = {entry.name: entry.module for entry in declared}
    names.update({name: "a schedules module" for name in taken if name not in names})
    return resolve_entries([(DATABASE, entry_of(row)) for row in rows], names)


def database_entries(
    declared: Sequence[ResolvedEntry], taken: Sequence[str] = (), *, using: str = "default"
) -> tuple[list[ResolvedEntry], list[Problem]]:
    """Every stored entry resolved, and the problems of those that cannot run."""
    return resolve_rows(list(DatabaseEntry.objects.using(using).all()), declared, taken)


class DatabaseEntrySource:
    """The beat's ``core.protocols.EntrySource``: the declared entries (collected once, at
    start: code changes with a reload) followed by the stored ones."""

    def __init__(
        self,
        declared: Sequence[ResolvedEntry],
        taken: Sequence[str] = (),
        *,
        using: str = "default",
    ) -> None:
        self.declared = list(declared)
        self.taken = list(taken)
        self.using = using
        self._reported: set[str] = set()

    def version(self) -> object:
        return entries_version(using=self.using)

    def entries(self) -> list[ResolvedEntry]:
        stored, problems = database_entries(self.declared, self.taken, using=self.using)
        # Said once per problem, not at every change of another entry.
        for problem in problems:
            if str(problem) not in self._reported:
                logger.error("invalid database entry, not run: %s (%s)", problem, problem.id)
        self._reported = {str(problem) for problem in problems}
        return self.declared + stored


def save_entry(row: DatabaseEntry, *, by: str = "", now: float | None = None) -> bool:
    """Insert or update ``row``, its version one up; return whether its fires start anew
    (new, renamed, its schedule or zone changed, or enabled again): the caller then records a ledger
    baseline, so that no beat runs a fire from before now for it."""
    current = time.time() if now is None else now
    row.changed_at = current
    row.changed_by = by
    with transaction.atomic():
        old = (
            DatabaseEntry.objects.select_for_update().filter(pk=row.pk).first()
            if row.pk is not None
            else None
        )
        if old is None:
            row.version = 1
            row.save()
            return True
        row.version = F("version") + 1
        row.save()
        row.refresh_from_db(fields=["version"])
    return (old.name, old.schedule, old.zone) != (row.name, row.schedule, row.zone) or (
        row.enabled and not old.enabled
    )
