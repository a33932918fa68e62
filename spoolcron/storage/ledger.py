"""The beat's ledger in the database (``core.protocols.Ledger``): who enqueued which fire.

``claim()`` inserts the (entry, fire time) claim and writes the spool file in one transaction:
the unique constraint makes a second writer of the same fire -- on this host or another host
sharing the database -- lose, so each fire is enqueued exactly once. A claim that does not
commit raises: the caller removes what ``write`` wrote.

The entries' pause states (``EntryState``) live here too: ``pause()``/``resume()`` write them,
every beat reads ``states_version()`` (one aggregate over the few rows of paused entries)
about once a second and ``pause_states()`` only when it changed. ``fire_failed()`` and
``fire_succeeded()`` count an entry's fires that failed in a row (``pause_after_failures``)
and pause it at its limit.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, OuterRef, Subquery, Sum

from ..core.protocols import EntryPause
from ..core.times import from_db_datetime, to_db_datetime
from . import results
from .models import EntryState, FireClaim, Run

__all__ = ["DatabaseLedger"]

logger = logging.getLogger("spoolcron.ledger")


class DatabaseLedger:
    def __init__(self, *, using: str = "default", host: str | None = None) -> None:
        self.using = using
        self.host = host or socket.gethostname()

    def last_fires(self) -> dict[str, float]:
        """The newest claimed fire time of every entry that ever fired."""
        rows = (
            FireClaim.objects.using(self.using)
            .values("entry")
            .annotate(last=Max("fire_time"))
            .values_list("entry", "last")
        )
        return {entry: from_db_datetime(last) for entry, last in rows}

    def baseline(self, entries: Sequence[str], since: float) -> None:
        """Record when the beat started watching new entries (claims with no job)."""
        now = to_db_datetime(datetime.now(UTC))
        FireClaim.objects.using(self.using).bulk_create(
            [
                FireClaim(
                    entry=entry,
                    fire_time=to_db_datetime(since),
                    job_id="",
                    claimed_at=now,
                    host=self.host,
                )
                for entry in entries
            ],
            ignore_conflicts=True,
            batch_size=500,
        )

    def claim(self, entry: str, fire_time: float, job_id: str, write: Callable[[], object]) -> bool:
        """Claim the fire and write its spool file; False if it was claimed already."""
        try:
            with transaction.atomic(using=self.using):
                FireClaim.objects.using(self.using).create(
                    entry=entry,
                    fire_time=to_db_datetime(fire_time),
                    job_id=job_id,
                    claimed_at=to_db_datetime(datetime.now(UTC)),
                    host=self.host,
                )
                write()
        except IntegrityError:
            return False
        return True

    # --- pause states -----------------------------------------------------------------------

    def states_version(self) -> object:
        """(rows, sum of versions): changes with every pause, resume or new row."""
        found = EntryState.objects.using(self.using).aggregate(
            rows=Count("pk"), versions=Sum("version")
        )
        return (found["rows"], found["versions"] or 0)

    def pause_states(self) -> dict[str, EntryPause]:
        return {row.entry: _pause_of(row) for row in EntryState.objects.using(self.using).all()}

    def pause(
        self,
        entry: str,
        *,
        note: str = "",
        until: float | None = None,
        now: float | None = None,
        by: str = "",
    ) -> EntryPause:
        """Pause the entry (again: a new note or end); keeps when it was first paused."""
        current = time.time() if now is None else now
        with transaction.atomic(using=self.using):
            row, created = (
                EntryState.objects.using(self.using)
                .select_for_update()
                .get_or_create(
                    entry=entry,
                    defaults={
                        "paused": True,
                        "note": note,
                        "paused_until": until,
                        "paused_at": current,
                        "changed_at": current,
                        "changed_by": by,
                    },
                )
            )
            if not created:
                if not (row.paused and (row.paused_until is None or current < row.paused_until)):
                    row.paused_at = current
                row.paused = True
                row.note = note
                row.paused_until = until
                row.changed_at = current
                row.changed_by = by
                row.version = F("version") + 1
                row.save()
                row.refresh_from_db()
        return _pause_of(row)

    def resume(
        self, entry: str, *, catch_up: bool, now: float | None = None, by: str = ""
    ) -> EntryPause | None:
        """Resume the entry; None if it was not paused. Without ``catch_up`` a baseline
        claim at now makes a beat that starts later skip the missed fires too."""
        current = time.time() if now is None else now
        with transaction.atomic(using=self.using):
            row = (
                EntryState.objects.using(self.using).select_for_update().filter(entry=entry).first()
            )
            if row is None or not row.paused:
                return None
            was = _pause_of(row)
            row.paused = False
            row.resumed_at = current
            row.catch_up = catch_up
            row.failures = 0  # a resumed entry gets its pause_after_failures anew
            row.changed_at = current
            row.changed_by = by
            row.version = F("version") + 1
            row.save()
            if not catch_up:
                self.baseline([entry], current)
        return was

    # --- pause_after_failures -----------------------------------------------------------------

    def fire_failed(self, entry: str, limit: int, *, now: float | None = None) -> int:
        """Count a fire of ``entry`` that failed for good; the ``limit``-th in a row pauses
        the entry (unless paused already), with a note saying why. Returns the count then
        (0 once it paused the entry: the count starts again)."""
        current = time.time() if now is None else now
        with transaction.atomic(using=self.using):
            row, _ = (
                EntryState.objects.using(self.using)
                .select_for_update()
                .get_or_create(entry=entry, defaults={"changed_at": current})
            )
            row.failures += 1
            if row.failures < limit:
                row.save(update_fields=["failures"])
                return int(row.failures)
            failures = row.failures
            row.failures = 0
            if _pause_of(row).active(current):
                row.save(update_fields=["failures"])  # an operator's pause stays as it is
                return 0
            row.paused = True
            row.note = f"paused after {failures} consecutive failures"
            row.paused_until = None
            row.paused_at = current
            row.changed_at = current
            row.changed_by = "spoolcron (pause_after_failures)"
            row.version = F("version") + 1
            row.save()
        logger.warning("entry paused after failures entry=%s failures=%d", entry, failures)
        return 0

    def fire_succeeded(self, entry: str) -> None:
        """A fire of ``entry`` succeeded: its count of failures in a row starts again."""
        EntryState.objects.using(self.using).filter(entry=entry, failures__gt=0).update(failures=0)

    def prune(self, *, keep: timedelta, now: datetime | None = None) -> int:
        """Delete claims, runs and job results older than ``keep``; an entry's newest claim
        always stays (see results.prune for which results are old)."""
        cutoff = to_db_datetime((now or datetime.now(UTC)) - keep)
        newest = (
            FireClaim.objects.using(self.using)
            .filter(entry=OuterRef("entry"))
            .order_by("-fire_time")
            .values("pk")[:1]
        )
        claims, _ = (
            FireClaim.objects.using(self.using)
            .filter(fire_time__lt=cutoff)
            .exclude(pk=Subquery(newest))
            .delete()
        )
        runs, _ = (
            Run.objects.using(self.using)
            .filter(started__lt=cutoff)
            .exclude(outcome=Run.Outcome.RUNNING)
            .delete()
        )
        return claims + runs + results.prune(cutoff, using=self.using)


def _pause_of(row: EntryState) -> EntryPause:
    return EntryPause(
        paused=row.paused,
        note=row.note,
        until=row.paused_until,
        since=row.paused_at,
        resumed_at=row.resumed_at,
        catch_up=row.catch_up,
        version=row.version,
    )
