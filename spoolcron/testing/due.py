"""``run_due(now=...)``: the beat and the jobs due up to an instant, in this process.

The clock is read through ``time.time()`` at each call (never bound at import), so it is the
one freezegun or time-machine set; or pass ``now`` explicitly.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from django.utils import timezone

from .. import jobs as _jobs
from ..conf import get_settings
from ..core.beat import Beat
from ..core.payload import Payload
from ..exceptions import UnknownEntry
from ..runtime import runner
from ..runtime.dispatch import Outcome, Result
from ..spool.payloads import SpoolFireWriter
from .recording import EnqueuedJob, RecordingPublisher, _recorder

__all__ = ["run_due"]

_WAITING = (Outcome.NOT_DUE, Outcome.NOT_OURS)


def _instant(now: datetime | float | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        if timezone.is_naive(now):
            now = timezone.make_aware(now)
        return now.timestamp()
    return float(now)


class _RecordingFireWriter:
    """The beat's FireWriter in recording mode: each claimed fire becomes a recorded job."""

    def __init__(self, publisher: RecordingPublisher) -> None:
        self.publisher = publisher

    def write(self, payload: Payload) -> Path:
        self.publisher.jobs.append(EnqueuedJob(payload))
        return Path(payload.file_name)

    def discard(self, path: Path) -> None:
        self.publisher.jobs = [j for j in self.publisher.jobs if j.payload.file_name != path.name]


def _run_jobs(until: float) -> list[Result]:
    """The jobs due by ``until``: the recorded ones, or the spool directory's and the pending
    store's (their retries too, while they come due by ``until``)."""

    def clock() -> float:
        return until

    recording = _jobs._recording
    if isinstance(recording, RecordingPublisher):
        return recording.run_selected(lambda job: True, clock=clock, as_if_due=False)
    ran: list[Result] = []
    while True:
        batch = runner.run_due(_recorder(), _jobs.publisher(), until=until, clock=clock)
        # A file whose `at` has come but not its precise due stays (not-due): not a run.
        batch = [r for r in batch if r.outcome not in _WAITING]
        ran += batch
        if not batch:
            return ran


def run_due(
    now: datetime | float | None = None,
    *,
    beat_was_down: bool = False,
    entries: Iterable[str] | None = None,
) -> list[Result]:
    """Run the periodic fires and the jobs due by ``now`` (default: the clock's now); return
    what ran, in order.

    The beat goes through the same ledger as in production (one claim per fire, in the
    database: use ``@pytest.mark.django_db``). Its first call starts it: an entry that never
    fired counts from then, as when a real beat starts. Each later call runs every fire since
    the entry's last one, each at its own instant and each followed by the jobs due by then,
    as if the beat had run all along; with ``beat_was_down``, the beat only looks at ``now``,
    as after downtime: fires missed by more than a few seconds are misfires and the entry's
    policy (coalesce, all, skip, grace) decides which run.

    ``entries``: only these entries' fires (by name); the others wait. Walking a week of an
    "every 5 seconds" entry is 120,960 runs: leave such entries out, or use ``beat_was_down``.

    In recording mode fires become recorded jobs and the recorded jobs due by ``now`` run;
    otherwise the spool directory's files and the pending store's jobs run (point
    ``SPOOLCRON["SPOOL_DIR"]`` at a temporary directory: the ``spoolcron_spool_dir`` fixture).
    """
    instant = _instant(now)
    moment = [instant]

    def clock() -> float:
        return moment[0]

    recording = _jobs._recording
    if isinstance(recording, RecordingPublisher):
        writer: _RecordingFireWriter | SpoolFireWriter = _RecordingFireWriter(recording)
    else:
        writer = SpoolFireWriter(get_settings().spool_dir)
    from ..operations.stored import all_entries  # declared and stored in the database
    from ..storage.ledger import DatabaseLedger  # models: only once apps are ready

    declared, _ = all_entries()
    if entries is not None:
        wanted = set(entries)
        unknown = sorted(wanted - {entry.name for entry in declared})
        if unknown:
            raise UnknownEntry(f"Unknown entry {unknown[0]!r}: no schedules module declares it.")
        declared = [entry for entry in declared if entry.name in wanted]
    beat = Beat(declared, DatabaseLedger(), writer, clock=clock, lead=0.0)
    beat.start()
    ran: list[Result] = []
    if not beat_was_down:
        while True:
            due = beat.next_due()
            if due is None or due >= instant:
                break
            moment[0] = due
            beat.tick()
            ran += _run_jobs(due)
    moment[0] = instant
    beat.tick()
    ran += _run_jobs(instant)
    return ran
