"""The seams between the layers: what the beat and the dispatcher need from storage.

The beat talks to a :class:`Ledger`, the dispatcher to a :class:`Recorder`; spoolcron.storage
implements both on the database, tests implement them in memory. Neither caller imports the
ORM, so both run (and are tested) without a database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .entries import ResolvedEntry
from .payload import Payload

__all__ = [
    "Attempt",
    "EntryPause",
    "EntrySource",
    "FireWriter",
    "Ledger",
    "PendingStore",
    "Published",
    "Recorder",
]


class FireWriter(Protocol):
    """Where the beat puts a claimed fire: a spool file due at the fire time."""

    def write(self, payload: Payload) -> Path:
        """Write the fire's file; a file of the same fire already there is that fire."""
        ...

    def discard(self, path: Path) -> None:
        """Remove a fire's file whose claim did not commit (unless a spooler runs it)."""
        ...


@dataclass(frozen=True)
class EntryPause:
    """An entry's pause state as stored (``spoolcron pause``/``resume``), times in Unix time."""

    paused: bool
    note: str = ""
    until: float | None = None
    """Paused until then (None: until resumed)."""
    since: float | None = None
    """When it was paused."""
    resumed_at: float | None = None
    catch_up: bool = False
    """The resume asked for the fires missed while paused, by the entry's misfire policy."""
    version: int = 0
    """Goes up with every change of this entry's state."""

    def active(self, now: float) -> bool:
        """Whether the entry is paused at ``now`` (a pause ``until`` a past time is over)."""
        return self.paused and (self.until is None or now < self.until)


class Ledger(Protocol):
    """Who enqueued which periodic fire: one claim per (entry, fire time), across hosts."""

    def last_fires(self) -> dict[str, float]:
        """The newest claimed fire time of every entry that ever fired."""
        ...

    def baseline(self, entries: Sequence[str], since: float) -> None:
        """Remember since when the beat watches entries that never fired."""
        ...

    def claim(self, entry: str, fire_time: float, job_id: str, write: Callable[[], object]) -> bool:
        """Claim the fire and call ``write`` in the same transaction; False if claimed already.

        Raises if the claim does not commit; the caller discards what ``write`` wrote.
        """
        ...

    def states_version(self) -> object:
        """A token that changes whenever an entry's pause state changes: cheap, read about
        once a second by every beat (not a read of every state)."""
        ...

    def pause_states(self) -> dict[str, EntryPause]:
        """Every entry's stored pause state (entries never paused are absent)."""
        ...


class EntrySource(Protocol):
    """Where a beat gets its entries while it runs: the declared ones plus those stored in
    the database (spoolcron.storage.entries), which operators change without a restart."""

    def version(self) -> object:
        """A token that changes whenever the entries change: cheap (one aggregate), read
        about once a second by every beat."""
        ...

    def entries(self) -> Sequence[ResolvedEntry]:
        """Every usable entry now (those with problems left out, and logged)."""
        ...


@dataclass
class Attempt:
    """One recorded start of a job: the store's own records of this run and of the job."""

    run: Any
    result: Any


class Recorder(Protocol):
    """Where the dispatcher writes what happens to each job: run history and job results.

    A store that is down must not stop jobs: implementations log their failures and return.
    """

    def refresh(self) -> None:
        """Called before and after each job: drop connections a fork or a task left unusable."""
        ...

    def previous_still_running(self, payload: Payload) -> str | None:
        """The job id of the entry's previous run if it is really still running, else None."""
        ...

    def skipped(self, payload: Payload, reason: str) -> None:
        """A periodic fire not run because its previous run is still going."""
        ...

    def started(self, payload: Payload, *, backend: str, queue_name: str, now: float) -> Attempt:
        """The job starts an attempt (a run "running", its result RUNNING)."""
        ...

    def succeeded(self, attempt: Attempt, value: object, *, now: float) -> None: ...

    def retrying(
        self, attempt: Attempt, error: dict[str, str], *, now: float, retry_at: float
    ) -> None:
        """The attempt failed; the next one is due at ``retry_at``."""
        ...

    def failed(self, attempt: Attempt, error: dict[str, str], *, now: float) -> None:
        """The attempt failed and no other follows."""
        ...

    def unrunnable(self, payload: Payload, error: dict[str, str], *, now: float) -> None:
        """The job is given up without (another) attempt: unknown task, or killed too often.

        Runs a dead process left "running" are closed as failed with the error's traceback.
        """
        ...


@dataclass(frozen=True)
class Published:
    """A job a pending store moved into a spool directory: its file name, due time and that
    directory (its queue's; None: the default queue's)."""

    file_name: str
    due: float
    spool_dir: Path | None = None


class PendingStore(Protocol):
    """Where jobs due later than the horizon wait, so the spool directory holds only what is
    due (spoolcron.spool.pending: files beside the spool directory; spoolcron.storage.pending:
    a database table several hosts share). The mule publishes what comes due."""

    name: str
    """``"files"`` or ``"database"``: what the ``PENDING_STORE`` setting names."""

    def add(self, jobs: Sequence[tuple[Payload, bytes]]) -> None:
        """Keep ``jobs`` (payload, encoded body) until they come due; a job id already
        waiting is replaced (a retry of the same job). The database store writes in the
        caller's transaction: the jobs exist if and only if it commits."""
        ...

    def next_due(self, now: float) -> float | None:
        """When the earliest job comes due (None: nothing waits); cheap, called every step."""
        ...

    def publish_due(self, until: float, *, limit: int = 1000) -> list[Published]:
        """Move the jobs due by ``until`` into this host's spool directory, each exactly once
        whoever else publishes at the same time; soonest first, at most ``limit``."""
        ...

    def maintain(self, now: float) -> None:
        """Housekeeping the publisher does about once a second (the database store renews the
        leases of the jobs this host published and has not run yet)."""
        ...

    def settled(self, job_id: str) -> None:
        """The job ran to its end (or was given up): forget whatever the store still holds."""
        ...

    def cancel(self, job_id: str, *, due: float | None = None) -> bool:
        """Remove the waiting job; False if the store does not hold it. JobRunning if another
        host is publishing it right now. ``due``, when known, saves a search."""
        ...

    def get(self, job_id: str, *, due: float | None = None) -> Payload | None:
        """The waiting job, or None."""
        ...

    def waiting(self, *, offset: int = 0, limit: int | None = None) -> list[Payload]:
        """Waiting jobs, soonest first: ``limit`` of them after skipping ``offset``."""
        ...

    def count(self, *, due_before: float | None = None) -> int:
        """How many jobs wait (only those due before ``due_before`` if given)."""
        ...
