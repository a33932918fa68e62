"""Issue 18 (2) in the beat: entries replaced while it runs (an ``EntrySource``), with an
injected clock and the in-memory ledger. A new entry fires from its next fire after the
change, an edited schedule gives new fires only, a removed entry stops, an unchanged one
keeps its fires, and a source that cannot be read changes nothing."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from spoolcron.core.beat import Beat
from spoolcron.core.entries import ResolvedEntry
from spoolcron.spool.payloads import SpoolFireWriter
from tests.helpers import Clock, MemoryLedger, resolved_entry

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()


class Source:
    """An ``EntrySource`` the test edits: ``entries`` and ``version`` by hand."""

    def __init__(self, entries: Sequence[ResolvedEntry]) -> None:
        self.current = list(entries)
        self.counter = 1
        self.error: Exception | None = None
        self.reads = 0

    def set(self, entries: Sequence[ResolvedEntry]) -> None:
        self.current = list(entries)
        self.counter += 1

    def version(self) -> object:
        if self.error is not None:
            raise self.error
        return self.counter

    def entries(self) -> list[ResolvedEntry]:
        self.reads += 1
        return list(self.current)


def fires(ledger: MemoryLedger, name: str) -> list[float]:
    return sorted(f - T0 for (entry, f) in ledger.claims if entry == name)


def run(beat: Beat, clock: Clock, until: float, step: float = 0.25) -> None:
    while clock.now < T0 + until:
        clock.now = min(T0 + until, clock.now + step)
        beat.tick()


def make(tmp_path: Path, source: Source, clock: Clock, ledger: MemoryLedger) -> Beat:
    beat = Beat([], ledger, SpoolFireWriter(tmp_path), clock=clock, source=source)
    beat.start()
    return beat


def test_an_entry_added_while_the_beat_runs_fires_from_its_next_fire(tmp_path: Path) -> None:
    clock, ledger = Clock(T0), MemoryLedger()
    source = Source([resolved_entry("a", "every 10 seconds")])
    beat = make(tmp_path, source, clock, ledger)
    run(beat, clock, 12.3)
    source.set([*source.current, resolved_entry("b", "every 5 seconds")])
    run(beat, clock, 31)
    assert fires(ledger, "a") == [10, 20, 30]
    # Read within a second of the change (12.3 -> 13.x): 15 is its first fire, none before.
    assert fires(ledger, "b") == [15, 20, 25, 30]
    # A baseline at the change: a beat started later goes on from there, not from before.
    assert ledger.last["b"] == T0 + 30


def test_an_edited_schedule_gives_new_fires_only(tmp_path: Path) -> None:
    clock, ledger = Clock(T0), MemoryLedger()
    source = Source([resolved_entry("a", "every 10 seconds")])
    beat = make(tmp_path, source, clock, ledger)
    run(beat, clock, 25)
    assert fires(ledger, "a") == [10, 20]
    # Every 6 seconds: its fires 6 to 24 are past and never run; 30 is the first.
    source.set([resolved_entry("a", "every 6 seconds")])
    run(beat, clock, 43)
    assert fires(ledger, "a") == [10, 20, 30, 36, 42]


def test_a_removed_entry_stops_and_an_unchanged_one_keeps_its_fires(tmp_path: Path) -> None:
    clock, ledger = Clock(T0), MemoryLedger()
    kept = resolved_entry("kept", "every 2 seconds")
    source = Source([kept, resolved_entry("gone", "every 2 seconds")])
    beat = make(tmp_path, source, clock, ledger)
    run(beat, clock, 5.1)
    source.set([kept])
    run(beat, clock, 12)
    assert fires(ledger, "gone") == [2, 4, 6]  # 6 was written (half a second ahead) before
    assert fires(ledger, "kept") == [2, 4, 6, 8, 10, 12]
    assert [e.name for e in beat.entries] == ["kept"]


def test_disabling_an_entry_stops_it_and_enabling_it_starts_from_now(tmp_path: Path) -> None:
    clock, ledger = Clock(T0), MemoryLedger()
    source = Source([resolved_entry("a", "every 2 seconds")])
    beat = make(tmp_path, source, clock, ledger)
    run(beat, clock, 3)
    source.set([resolved_entry("a", "every 2 seconds", enabled=False)])
    run(beat, clock, 9)
    source.set([resolved_entry("a", "every 2 seconds")])
    run(beat, clock, 14)
    # 4 was written before the change was read; nothing from 6 to 10 runs afterwards.
    assert fires(ledger, "a") == [2, 4, 12, 14]


def test_the_source_is_read_once_a_second_and_the_entries_only_when_changed(
    tmp_path: Path,
) -> None:
    clock, ledger = Clock(T0), MemoryLedger()
    source = Source([resolved_entry("a", "every minute")])
    beat = make(tmp_path, source, clock, ledger)
    run(beat, clock, 30)
    assert source.reads == 1  # at start: the version never changed since
    source.set(source.current)
    run(beat, clock, 31)
    assert source.reads == 2


def test_a_source_that_cannot_be_read_keeps_the_entries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock, ledger = Clock(T0), MemoryLedger()
    source = Source([resolved_entry("a", "every 2 seconds")])
    beat = make(tmp_path, source, clock, ledger)
    source.error = RuntimeError("database away")
    with caplog.at_level(logging.WARNING, logger="spoolcron.beat"):
        run(beat, clock, 10)
    assert fires(ledger, "a") == [2, 4, 6, 8, 10]
    lines = [r.getMessage() for r in caplog.records if "cannot read the entries" in r.getMessage()]
    assert lines == [
        "beat cannot read the entries failed_attempts=1 error=RuntimeError: database away"
    ]
    source.error = None
    source.set([resolved_entry("a", "every 2 seconds"), resolved_entry("b", "every 2 seconds")])
    run(beat, clock, 14)
    assert fires(ledger, "b") == [12, 14]


def test_a_source_unreadable_at_start_runs_the_declared_entries(tmp_path: Path) -> None:
    clock, ledger = Clock(T0), MemoryLedger()
    source = Source(
        [resolved_entry("a", "every 2 seconds"), resolved_entry("b", "every 2 seconds")]
    )
    source.error = RuntimeError("no such table: spoolcron_databaseentry")
    beat = Beat(
        [resolved_entry("a", "every 2 seconds")],
        ledger,
        SpoolFireWriter(tmp_path),
        clock=clock,
        source=source,
    )
    beat.start()
    run(beat, clock, 4)
    source.error = None
    run(beat, clock, 8)
    assert fires(ledger, "a") == [2, 4, 6, 8]
    assert fires(ledger, "b") == [6, 8]


def test_a_fire_claimed_by_another_beat_is_not_enqueued_again(tmp_path: Path) -> None:
    """Two beats sharing one ledger, both reloading the same new entry: each fire once."""
    ledger = MemoryLedger()
    clocks = [Clock(T0), Clock(T0)]
    sources = [Source([]), Source([])]
    beats = [make(tmp_path / str(n), sources[n], clocks[n], ledger) for n in (0, 1)]
    for n in (0, 1):
        (tmp_path / str(n)).mkdir()
    for source in sources:
        source.set([resolved_entry("new", "every second")])
    for step in range(40):
        for n in (0, 1):
            clocks[n].now = T0 + step * 0.25 + n * 0.1
            beats[n].tick()
    assert fires(ledger, "new") == [2, 3, 4, 5, 6, 7, 8, 9, 10]
