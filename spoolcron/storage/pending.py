"""The ``database`` pending store: jobs due later than the horizon wait as ``WaitingJob`` rows
that every host sharing the database can publish (PostgreSQL; SQLite for one host).

- ``add()`` upserts the rows in the caller's transaction: a job exists if and only if that
  transaction commits. A job id already there (a retry of the same job) is replaced and any
  claim on it released.
- ``publish_due()`` claims the rows due by ``until`` in one statement -- on PostgreSQL
  ``UPDATE … WHERE job_id IN (SELECT … ORDER BY due LIMIT n FOR UPDATE SKIP LOCKED)``, so
  concurrent publishers skip each other's rows instead of waiting -- setting ``claimed_by``
  to this mule's identity and ``claimed_until`` to now + the lease, commits, then writes each
  job's spool file into this host's spool directory. A file that cannot be written releases
  its claim (nobody claims it again for :data:`WRITE_RETRY` seconds).
- A claimed row stays until the job settles (``settled()`` deletes it), so losing a host
  loses no job: ``maintain()`` renews this mule's leases every few seconds; the claims of a
  host that died expire after ``PENDING_LEASE`` seconds and another host publishes the jobs
  again (execution stays at least once: a job that was running there runs again).
- Identity: ``<host name>:<digest of the spool directory>:<pid>:<random>``, new at each mule
  start. The first ``maintain()`` after a start adopts the claims of earlier identities of the
  same host and spool directory whose spool files are still there, and releases the others
  (a container back under the same name with an empty disk). Later ones release this mule's
  own claims whose file is gone without the job having settled (its ``settled()`` failed):
  the job runs again rather than never. (A ``manage.py spoolcron run-due`` publishing on the
  same host while its mule starts counts as an earlier mule: it is an operator's tool.)
- A row with a live claim is not "waiting": ``waiting()`` and ``count()`` leave it out (it is
  in a spool directory); ``get()`` still finds it. ``cancel()`` removes unclaimed rows and
  this host's own claims (the caller then removes the spool file, or finds it running), and
  raises JobRunning for a live claim of another host.

Leases compare the clocks of different hosts: keep them in sync (NTP); the lease (default
60 s) is what absorbs their drift.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from django.db import DatabaseError, connections, transaction
from django.db.models import Min, Q, QuerySet

from ..core.logging import Throttled
from ..core.payload import Payload, directory_for, job_file_prefix
from ..core.protocols import Published
from ..exceptions import JobRunning, PayloadError
from .bulk import COLUMNS as _COLUMNS
from .bulk import copy_rows
from .models import WaitingJob

__all__ = ["REFRESH", "WRITE_RETRY", "DatabasePendingStore", "SpoolWrite"]

logger = logging.getLogger("spoolcron.pending")

REFRESH = 0.5
"""How long ``next_due()`` trusts its last answer: jobs other hosts enqueue are seen this late
at worst, well within the horizon (they come due later than that)."""
WRITE_RETRY = 1.0
"""A job whose spool file could not be written is claimable again this many seconds later."""
_BATCH = 2000  # rows per INSERT of add(); ids per IN (…) of the housekeeping queries
_COPY_FROM = 1000  # add() this many rows or more with COPY on PostgreSQL


class SpoolWrite(Protocol):
    """Writes a job's spool file (spoolcron.spool.payloads.write_payload): the store is given
    it, since storage does not reach into the spool directory's format by itself."""

    def __call__(
        self, spool_dir: Path, payload: Payload, *, body: bytes | None = ..., fsync: bool = ...
    ) -> Path: ...


def node_of(host: str, spool_dir: Path) -> str:
    """What stays the same across the restarts of one host's mule: its name and spool dir."""
    digest = hashlib.sha256(os.fsencode(os.path.abspath(spool_dir))).hexdigest()[:8]
    return f"{host}:{digest}"


def host_of(claimed_by: str) -> str:
    """The host name in a ``claimed_by`` identity."""
    return claimed_by.split(":", 1)[0]


class DatabasePendingStore:
    """Jobs as ``WaitingJob`` rows in the ``using`` database; see the module doc."""

    name = "database"

    def __init__(
        self,
        spool_dir: Path,
        *,
        write: SpoolWrite,
        fsync: bool = False,
        lease: float = 60.0,
        using: str = "default",
        host: str | None = None,
        clock: Callable[[], float] = time.time,
        dirs: Mapping[str, Path] | None = None,
    ) -> None:
        self.spool_dir = spool_dir
        self.dirs = dict(dirs or {})  # each other local queue's spool directory
        self.write = write
        self.fsync = fsync
        self.lease = lease
        self.using = using
        self.node = node_of(host or socket.gethostname(), spool_dir)
        self.clock = clock
        self._pid = -1
        self._identity = ""
        self._adopted = False
        self._next_renew = self._next_check = float("-inf")
        # next_due's answer and until when it holds (-inf: ask the database).
        self._next: float | None = None
        self._next_until = float("-inf")
        self._write_failures = 0
        self._last_write_log = float("-inf")
        self._maintaining = Throttled(every=30.0)

    # --- identity --------------------------------------------------------------------------

    @property
    def identity(self) -> str:
        """This process's ``claimed_by``: new in each process (a forked mule too)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._identity = f"{self.node}:{self._pid}:{uuid.uuid4().hex[:8]}"
            self._adopted = False
            self._next_renew = self._next_check = float("-inf")
        return self._identity

    # --- queries ---------------------------------------------------------------------------

    def _rows(self) -> QuerySet[WaitingJob]:
        return WaitingJob.objects.using(self.using)

    def _claimable(self, now: float) -> QuerySet[WaitingJob]:
        """Rows nobody holds a live claim on."""
        return self._rows().filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))

    def _forget_next(self) -> None:
        self._next_until = float("-inf")

    # --- writing ---------------------------------------------------------------------------

    def add(self, jobs: Sequence[tuple[Payload, bytes]]) -> None:
        rows = [
            (p.job_id, p.task, p.history_entry, p.attempt, p.run_after, body.decode())
            for p, body in jobs
        ]
        # One transaction: the caller's, or one of its own.
        with transaction.atomic(using=self.using):
            if len(rows) >= _COPY_FROM and connections[self.using].vendor == "postgresql":
                copy_rows(self.using, rows)
            else:
                self._rows().bulk_create(
                    [WaitingJob(**dict(zip(_COLUMNS, row, strict=True))) for row in rows],
                    batch_size=_BATCH,
                    update_conflicts=True,
                    unique_fields=["job_id"],
                    update_fields=[*_COLUMNS[1:], "claimed_by", "claimed_until"],
                )
        self._forget_next()

    # --- what is due -----------------------------------------------------------------------

    def next_due(self, now: float) -> float | None:
        if now < self._next_until:
            return self._next
        self._next = self._claimable(now).aggregate(due=Min("due"))["due"]
        self._next_until = now + REFRESH
        return self._next

    def publish_due(self, until: float, *, limit: int = 1000) -> list[Published]:
        now = self.clock()
        if now < self._next_until and (self._next is None or self._next > until):
            return []  # nothing due by then, as of less than REFRESH ago
        self._forget_next()
        claimed = self._claim(until, now, limit)
        published: list[Published] = []
        failed: list[str] = []
        for job_id, due, body in sorted(claimed, key=lambda row: (row[1], row[0])):
            data = body.encode()
            try:
                payload = Payload.from_body(data, name=f"waiting job {job_id}")
                self._write(payload, data)
            except (OSError, PayloadError) as exc:
                failed.append(job_id)
                self._write_failed(job_id, exc, now)
                continue
            directory = directory_for(payload, self.spool_dir, self.dirs)
            published.append(Published(payload.file_name, due, directory))
        if failed:
            self._release(failed, self.identity, hold_until=now + WRITE_RETRY)
        elif published and self._write_failures:
            logger.info("writing spool files works again failures=%d", self._write_failures)
            self._write_failures = 0
        return published

    def _claim(self, until: float, now: float, limit: int) -> list[tuple[str, float, str]]:
        """Claim up to ``limit`` rows due by ``until``, soonest first; committed on return."""
        connection = connections[self.using]
        table = connection.ops.quote_name(WaitingJob._meta.db_table)
        values: list[str | float | int] = [self.identity, now + self.lease, until, now, limit]
        if connection.vendor == "postgresql":
            lock = "FOR UPDATE SKIP LOCKED"
        elif connection.vendor == "sqlite" and connection.features.can_return_columns_from_insert:
            lock = ""  # one writer at a time: the UPDATE itself is the claim
        else:
            return self._claim_portable(until, now, limit)
        sql = (
            f"UPDATE {table} SET claimed_by = %s, claimed_until = %s "
            f"WHERE job_id IN (SELECT job_id FROM {table} "
            "WHERE due <= %s AND (claimed_until IS NULL OR claimed_until < %s) "
            f"ORDER BY due, job_id LIMIT %s {lock}) "
            "RETURNING job_id, due, body"
        )
        with transaction.atomic(using=self.using), connection.cursor() as cursor:
            cursor.execute(sql, values)
            return [(job_id, float(due), str(body)) for job_id, due, body in cursor.fetchall()]

    def _claim_portable(self, until: float, now: float, limit: int) -> list[tuple[str, float, str]]:
        features = connections[self.using].features
        with transaction.atomic(using=self.using):
            due = self._claimable(now).filter(due__lte=until).order_by("due", "job_id")
            if features.has_select_for_update:
                due = due.select_for_update(skip_locked=features.has_select_for_update_skip_locked)
            rows = list(due.values_list("job_id", "due", "body")[:limit])
            self._rows().filter(job_id__in=[row[0] for row in rows]).update(
                claimed_by=self.identity, claimed_until=now + self.lease
            )
        return rows

    def _write(self, payload: Payload, body: bytes) -> None:
        directory = directory_for(payload, self.spool_dir, self.dirs)
        try:
            self.write(directory, payload, body=body, fsync=self.fsync)
        except FileNotFoundError:
            # The spool directory itself is missing: create it like uWSGI's --spooler would.
            os.makedirs(directory, mode=0o700, exist_ok=True)
            self.write(directory, payload, body=body, fsync=self.fsync)

    def _write_failed(self, job_id: str, exc: Exception, now: float) -> None:
        self._write_failures += 1
        if now - self._last_write_log >= 30.0:
            self._last_write_log = now
            logger.error(
                "could not write the spool file of a due job, releasing it job=%s "
                "retry_in_s=%g failures=%d error=%s",
                job_id,
                WRITE_RETRY,
                self._write_failures,
                exc,
            )

    def _release(self, job_ids: Iterable[str], *claimants: str, hold_until: float | None) -> int:
        """Drop the claims of ``claimants`` on ``job_ids``; claimable again from
        ``hold_until`` (None: at once)."""
        released = 0
        ids = list(job_ids)
        for start in range(0, len(ids), _BATCH):
            released += (
                self._rows()
                .filter(job_id__in=ids[start : start + _BATCH], claimed_by__in=claimants)
                .update(claimed_by=None, claimed_until=hold_until)
            )
        self._forget_next()
        return released

    # --- housekeeping ----------------------------------------------------------------------

    def maintain(self, now: float) -> None:
        try:
            self._maintain(now)
        except DatabaseError as exc:
            # Claims that are not renewed expire: other hosts then publish those jobs again.
            if self._maintaining.failed(now):
                logger.warning(
                    "could not renew this host's claims on the pending store failures=%d error=%s",
                    self._maintaining.failures,
                    exc,
                )
        else:
            if self._maintaining.recovered():
                logger.info("renewing this host's claims on the pending store works again")

    def _maintain(self, now: float) -> None:
        me = self.identity
        if not self._adopted:
            # Claims of this host's earlier mules: theirs are ours if their files are here.
            earlier = (
                self._rows()
                .filter(claimed_by__startswith=f"{self.node}:")
                .exclude(claimed_by=me)
                .values_list("job_id", "claimed_by")
            )
            self._reconcile(list(earlier), now, adopt=True)
            self._adopted = True
        if now >= self._next_renew:
            # One UPDATE, through the index of claimed rows.
            self._rows().filter(claimed_by=me).update(claimed_until=now + self.lease)
            self._next_renew = now + min(5.0, self.lease / 4)
        if now >= self._next_check:
            mine = self._rows().filter(claimed_by=me).values_list("job_id", "claimed_by")
            self._reconcile(list(mine), now, adopt=False)
            self._next_check = now + self.lease / 2

    def _reconcile(self, claims: list[tuple[str, str | None]], now: float, *, adopt: bool) -> None:
        """Keep (``adopt``: take over) the claims whose job has a spool file in this host's
        spool directory, release the others: their jobs are published again."""
        if not claims:
            return
        on_disk = self._job_prefixes()
        keep = [job_id for job_id, _ in claims if job_file_prefix(job_id) in on_disk]
        lost = [job_id for job_id, _ in claims if job_file_prefix(job_id) not in on_disk]
        claimants = sorted({claimed_by for _, claimed_by in claims if claimed_by})
        if adopt and keep:
            for start in range(0, len(keep), _BATCH):
                self._rows().filter(
                    job_id__in=keep[start : start + _BATCH], claimed_by__in=claimants
                ).update(claimed_by=self.identity, claimed_until=now + self.lease)
        released = self._release(lost, *claimants, hold_until=None) if lost else 0
        if adopt:
            logger.warning(
                "took over the claims of this host's earlier mules: adopted the jobs whose "
                "spool files are here, released the others adopted=%d released=%d",
                len(keep),
                released,
            )
        elif released:
            logger.warning(
                "released jobs whose spool files are gone without them settling, they run "
                "again released=%d",
                released,
            )

    def _job_prefixes(self) -> set[str]:
        """``job_file_prefix()`` of every job with a file in a spool directory of this host."""
        prefixes: set[str] = set()
        for directory in (self.spool_dir, *self.dirs.values()):
            try:
                with os.scandir(directory) as entries:
                    prefixes.update(entry.name.rpartition("_")[0] + "_" for entry in entries)
            except FileNotFoundError:
                pass
        return prefixes

    def settled(self, job_id: str) -> None:
        try:
            self._rows().filter(job_id=job_id).delete()
        except DatabaseError:
            # The row stays claimed by this host; maintain() releases it once the file is
            # gone, and the job runs again (at least once, never lost).
            logger.warning("could not forget a settled job job=%s", job_id, exc_info=True)

    # --- looking and cancelling ------------------------------------------------------------

    def cancel(self, job_id: str, *, due: float | None = None) -> bool:
        now = self.clock()
        row = self._rows().filter(job_id=job_id)
        # Unclaimed, an expired claim, or this host's own (the caller removes its file).
        free = Q(claimed_by__isnull=True) | Q(claimed_until__lt=now)
        deleted, _ = row.filter(free | Q(claimed_by__startswith=f"{self.node}:")).delete()
        if deleted:
            self._forget_next()
            return True
        claimed_by = row.values_list("claimed_by", flat=True).first()
        if claimed_by is None:
            return False
        raise JobRunning(
            f"Cannot cancel job {job_id!r}: host {host_of(claimed_by)!r} has published it "
            "from the pending store and may be running it."
        )

    def get(self, job_id: str, *, due: float | None = None) -> Payload | None:
        body = self._rows().filter(job_id=job_id).values_list("body", flat=True).first()
        return None if body is None else _decoded(job_id, body)

    def waiting(self, *, offset: int = 0, limit: int | None = None) -> list[Payload]:
        rows = self._claimable(self.clock()).order_by("due", "job_id")
        page = rows.values_list("job_id", "body")
        selected = page[offset:] if limit is None else page[offset : offset + limit]
        found = (_decoded(job_id, body) for job_id, body in selected)
        return [payload for payload in found if payload is not None]

    def count(self, *, due_before: float | None = None) -> int:
        rows = self._claimable(self.clock())
        if due_before is not None:
            rows = rows.filter(due__lt=due_before)
        return rows.count()


def _decoded(job_id: str, body: str) -> Payload | None:
    try:
        return Payload.from_body(body.encode(), name=f"waiting job {job_id}")
    except PayloadError:
        logger.warning("waiting job with an unreadable body job=%s", job_id)
        return None
