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

from .payload import Payload

__all__ = ["Attempt", "FireWriter", "Ledger", "Recorder"]


class FireWriter(Protocol):
    """Where the beat puts a claimed fire: a spool file due at the fire time."""

    def write(self, payload: Payload) -> Path:
        """Write the fire's file; a file of the same fire already there is that fire."""
        ...

    def discard(self, path: Path) -> None:
        """Remove a fire's file whose claim did not commit (unless a spooler runs it)."""
        ...


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
