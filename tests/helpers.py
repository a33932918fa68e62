"""Helpers shared by the test modules and the benchmarks: a settable clock, a ResolvedEntry
factory, an in-memory ledger, and the runtime wired to the database.

Importing this module imports no spoolcron module: the benchmarks import it before they set
Django up, so what needs spoolcron imports it when called.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import schedules

if TYPE_CHECKING:
    from spoolcron.core.entries import MisfirePolicy, OverlapPolicy, ResolvedEntry
    from spoolcron.core.registry import Task
    from spoolcron.runtime import dispatch
    from spoolcron.spool.codec import SpoolFile


class Clock:
    """A clock the test sets by hand: ``clock.now = ...``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def resolved_entry(
    name: str,
    schedule: str | schedules.Schedule,
    *,
    tz: str = "UTC",
    task: Task[..., Any] | None = None,
    args: tuple[Any, ...] | None = None,
    module: str = "tests",
    misfire: MisfirePolicy = "coalesce",
    misfire_limit: int = 10,
    grace: float | None = None,
    overlap: OverlapPolicy = "skip",
    enabled: bool = True,
    jitter: float = 0.0,
    alert_after: float | None = None,
) -> ResolvedEntry:
    """An entry as ``collect()`` resolves it: ``schedule`` parsed in ``tz`` unless it is one
    already; the task ``tests.testapp.tasks.record`` called with the entry's name by default."""
    from spoolcron.core.entries import ResolvedEntry

    if task is None:
        from tests.testapp import tasks

        task = tasks.record
    return ResolvedEntry(
        name=name,
        task=task,
        schedule=(
            schedule
            if isinstance(schedule, schedules.Schedule)
            else schedules.parse(schedule, tz=tz)
        ),
        args=(name,) if args is None else args,
        kwargs={},
        misfire=misfire,
        misfire_limit=misfire_limit,
        grace=grace,
        overlap=overlap,
        enabled=enabled,
        module=module,
        jitter=jitter,
        alert_after=alert_after,
    )


class MemoryLedger:
    """The beat's ``core.protocols.Ledger`` in dicts: a claim succeeds once per (entry, fire).

    ``last`` is what ``last_fires()`` starts from. Set ``error`` and every claim raises it (the
    database is down) until it is set back to None; ``attempts`` counts the claims tried.
    ``pause()``/``resume()`` change ``states`` as the database ledger does; ``state_reads``
    counts the full reads of them.
    """

    def __init__(self, last: dict[str, float] | None = None) -> None:
        self.claims: dict[tuple[str, float], str] = {}
        self.last = dict(last or {})
        self.error: Exception | None = None
        self.attempts = 0
        self.states: dict[str, Any] = {}
        self.state_reads = 0
        self.version_reads = 0

    def states_version(self) -> object:
        self.version_reads += 1
        return sum(state.version for state in self.states.values()), len(self.states)

    def pause_states(self) -> dict[str, Any]:
        self.state_reads += 1
        return dict(self.states)

    def pause(self, entry: str, *, now: float, note: str = "", until: float | None = None) -> None:
        from spoolcron.core.protocols import EntryPause

        old = self.states.get(entry)
        since = old.since if old is not None and old.active(now) else now
        self.states[entry] = EntryPause(
            paused=True,
            note=note,
            until=until,
            since=since,
            version=(old.version if old else 0) + 1,
        )

    def resume(self, entry: str, *, now: float, catch_up: bool) -> None:
        import dataclasses

        old = self.states[entry]
        self.states[entry] = dataclasses.replace(
            old, paused=False, resumed_at=now, catch_up=catch_up, version=old.version + 1
        )
        if not catch_up:
            self.baseline([entry], now)
            self.last[entry] = max(self.last[entry], now)

    def last_fires(self) -> dict[str, float]:
        return dict(self.last)

    def baseline(self, entries: Sequence[str], since: float) -> None:
        for name in entries:
            self.last.setdefault(name, since)

    def claim(self, entry: str, fire_time: float, job_id: str, write: Callable[[], object]) -> bool:
        self.attempts += 1
        if self.error is not None:
            raise self.error
        if (entry, fire_time) in self.claims:
            return False
        write()
        self.claims[(entry, fire_time)] = job_id
        self.last[entry] = max(self.last.get(entry, fire_time), fire_time)
        return True


def run_due(*, until: float | None = None, clock: Callable[[], float] = time.time) -> list[Any]:
    """``runtime.runner.run_due`` recording to the test database."""
    from spoolcron.jobs import publisher
    from spoolcron.runtime import runner
    from spoolcron.storage.recorder import DatabaseRecorder

    return runner.run_due(DatabaseRecorder(), publisher(), until=until, clock=clock)


def run_spool_file(file: SpoolFile, **kwargs: Any) -> dispatch.Result:
    """``runtime.dispatch.run_spool_file`` recording to the test database."""
    from spoolcron.jobs import publisher
    from spoolcron.runtime import dispatch
    from spoolcron.storage.recorder import DatabaseRecorder

    return dispatch.run_spool_file(file, DatabaseRecorder(), publisher=publisher(), **kwargs)
