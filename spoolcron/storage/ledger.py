"""The beat's ledger in the database (``core.protocols.Ledger``): who enqueued which fire.

``claim()`` inserts the (entry, fire time) claim and writes the spool file in one transaction:
the unique constraint makes a second writer of the same fire -- on this host or another host
sharing the database -- lose, so each fire is enqueued exactly once. A claim that does not
commit raises: the caller removes what ``write`` wrote.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Max, OuterRef, Subquery

from ..core.times import from_db_datetime, to_db_datetime
from . import results
from .models import FireClaim, Run

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
