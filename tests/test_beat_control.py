"""Issue 18 in the beat, with an injected clock and the in-memory ledger: pause and resume
(from now, catch-up), jitter, and the beat's signals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from spoolcron.core import signals
from spoolcron.core.beat import Beat, fire_job_id
from spoolcron.core.entries import ResolvedEntry, jitter_offset
from spoolcron.core.upcoming import merge_upcoming
from spoolcron.spool import files
from spoolcron.spool.payloads import SpoolFireWriter
from tests.helpers import Clock, MemoryLedger, resolved_entry

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()


def bodies(spool_dir: Path) -> list[dict[str, Any]]:
    found = [json.loads(files.read(p).body) for p in files.list_files(spool_dir)]
    return sorted(found, key=lambda b: (b["run_after"], b["entry"]))


def fire_times(spool_dir: Path) -> list[float]:
    return [b["run_after"] for b in bodies(spool_dir)]


def make(tmp_path: Path, entries: list[ResolvedEntry], ledger: MemoryLedger, clock: Clock) -> Beat:
    beat = Beat(entries, ledger, SpoolFireWriter(tmp_path), clock=clock, lead=0.5, late_after=5.0)
    beat.start()
    return beat


def run(beat: Beat, clock: Clock, until: float, step: float = 0.25) -> None:
    while clock.now < until:
        clock.now = min(until, clock.now + step)
        beat.tick()


@pytest.fixture
def received() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    got: list[tuple[str, dict[str, Any]]] = []
    names = {
        signals.fire_enqueued: "fire_enqueued",
        signals.fires_missed: "fires_missed",
        signals.fire_paused: "fire_paused",
        signals.fire_failed: "fire_failed",
    }
    receivers = {}
    for signal, name in names.items():

        def receiver(sender: Any, name: str = name, **kwargs: Any) -> None:
            kwargs.pop("signal")
            got.append((name, kwargs))

        receivers[signal] = receiver
        signal.connect(receiver, sender=Beat)
    yield got
    for signal, receiver in receivers.items():
        signal.disconnect(receiver, sender=Beat)


# --- pause / resume ------------------------------------------------------------------------


def test_a_pause_stops_fires_within_a_second_and_reads_the_states_only_on_change(
    tmp_path: Path,
) -> None:
    clock = Clock(T0)
    ledger = MemoryLedger()
    beat = make(tmp_path, [resolved_entry("e", "every second")], ledger, clock)
    run(beat, clock, T0 + 3)
    assert fire_times(tmp_path) == [T0 + 1, T0 + 2, T0 + 3]
    reads = ledger.state_reads
    ledger.pause("e", now=clock.now, note="db migration")
    run(beat, clock, T0 + 20)
    # Seen at the next look (at most a second later): the fire written half a second ahead
    # before it may still come, none after.
    assert fire_times(tmp_path)[-1] <= T0 + 4.5
    assert ledger.state_reads == reads + 1  # one full read, on the change
    # About one cheap read a second (two while a paused entry's fires come due each second:
    # a resume is looked for before a fire is dropped).
    assert ledger.version_reads <= 2 * 17 + 3
    state = beat.paused("e")
    assert state is not None
    assert state.note == "db migration"


def test_resume_from_now_skips_the_missed_fires(tmp_path: Path) -> None:
    clock = Clock(T0)
    ledger = MemoryLedger()
    ledger.pause("e", now=T0)
    beat = make(tmp_path, [resolved_entry("e", "every 10 seconds")], ledger, clock)
    run(beat, clock, T0 + 35)
    assert fire_times(tmp_path) == []
    ledger.resume("e", now=T0 + 35, catch_up=False)
    run(beat, clock, T0 + 51)
    assert fire_times(tmp_path) == [T0 + 40, T0 + 50]


@pytest.mark.parametrize(
    ("misfire", "expected"),
    [
        ("coalesce", [T0 + 30, T0 + 40, T0 + 50]),
        ("all", [T0 + 10, T0 + 20, T0 + 30, T0 + 40, T0 + 50]),
        ("skip", [T0 + 40, T0 + 50]),
    ],
)
def test_resume_catch_up_applies_the_misfire_policy_to_the_fires_missed_while_paused(
    tmp_path: Path, misfire: Any, expected: list[float], received: list[Any]
) -> None:
    clock = Clock(T0 + 1)
    ledger = MemoryLedger()
    beat = make(tmp_path, [resolved_entry("e", "every 10 seconds", misfire=misfire)], ledger, clock)
    ledger.pause("e", now=T0 + 2)
    run(beat, clock, T0 + 35)
    assert fire_times(tmp_path) == []
    assert [k["fire_time"] for n, k in received if n == "fire_paused"] == [
        T0 + 10,
        T0 + 20,
        T0 + 30,
    ]
    ledger.resume("e", now=T0 + 35, catch_up=True)
    run(beat, clock, T0 + 51)
    assert fire_times(tmp_path) == expected
    [missed] = [k for n, k in received if n == "fires_missed"]
    assert missed == {
        "entry": "e",
        "policy": misfire,
        "first_missed": T0 + 10,
        "enqueued": {"coalesce": 1, "all": 3, "skip": 0}[misfire],
        "dropped": {"coalesce": 2, "all": 0, "skip": 3}[misfire],
    }


def test_two_beats_catching_up_enqueue_each_fire_once(tmp_path: Path) -> None:
    clock = Clock(T0 + 1)
    ledger = MemoryLedger()
    entries = [resolved_entry("e", "every 10 seconds", misfire="all")]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = make(tmp_path / "a", entries, ledger, clock)
    two = make(tmp_path / "b", entries, ledger, clock)
    ledger.pause("e", now=T0 + 2)
    for _ in range(140):
        clock.now += 0.25
        one.tick()
        two.tick()
    ledger.resume("e", now=clock.now, catch_up=True)
    for _ in range(8):
        clock.now += 0.25
        one.tick()
        two.tick()
    assert sorted(fire_times(tmp_path / "a") + fire_times(tmp_path / "b")) == [
        T0 + 10,
        T0 + 20,
        T0 + 30,
    ]


def test_a_pause_until_ends_by_itself(tmp_path: Path) -> None:
    clock = Clock(T0)
    ledger = MemoryLedger()
    ledger.pause("e", now=T0, until=T0 + 25)
    beat = make(tmp_path, [resolved_entry("e", "every 10 seconds")], ledger, clock)
    run(beat, clock, T0 + 41)
    assert fire_times(tmp_path) == [T0 + 30, T0 + 40]


def test_a_paused_entry_started_late_enqueues_nothing(tmp_path: Path) -> None:
    clock = Clock(T0 + 100)
    ledger = MemoryLedger(last={"e": T0})
    ledger.pause("e", now=T0 + 50)
    beat = make(tmp_path, [resolved_entry("e", "every 10 seconds")], ledger, clock)
    run(beat, clock, T0 + 115)
    assert fire_times(tmp_path) == []


def test_states_that_cannot_be_read_keep_the_known_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(T0)
    ledger = MemoryLedger()
    beat = make(tmp_path, [resolved_entry("e", "every second")], ledger, clock)

    def broken() -> object:
        raise OSError("database down")

    ledger.states_version = broken  # type: ignore[method-assign]
    run(beat, clock, T0 + 3)
    assert fire_times(tmp_path) == [T0 + 1, T0 + 2, T0 + 3]
    assert "beat cannot read the pause states failed_attempts=1 error=OSError: database down" in (
        caplog.text
    )


# --- jitter --------------------------------------------------------------------------------


def test_jitter_offset_is_deterministic_in_range_and_spread() -> None:
    offsets = [jitter_offset(f"tenant-{n}", T0, 60.0) for n in range(100)]
    assert offsets == [jitter_offset(f"tenant-{n}", T0, 60.0) for n in range(100)]
    assert all(0 <= o < 60 for o in offsets)
    assert all(o == round(o, 3) for o in offsets)  # whole milliseconds
    # Spread over the window: every 10-second slice holds some of them.
    assert {int(o // 10) for o in offsets} == set(range(6))
    assert jitter_offset("e", T0, 60.0) != jitter_offset("e", T0 + 60, 60.0)
    assert jitter_offset("e", T0, 0.0) == 0.0
    assert 0 <= jitter_offset("e", T0, 0.001) < 0.001


def test_jittered_fires_are_due_at_the_offset_and_claimed_at_the_fire_time(
    tmp_path: Path, received: list[Any]
) -> None:
    clock = Clock(T0 - 30)
    ledger = MemoryLedger()
    entries = [resolved_entry(f"t{n}", "daily at 12:00", jitter=60) for n in range(100)]
    beat = make(tmp_path, entries, ledger, clock)
    run(beat, clock, T0 + 61, step=0.1)
    found = bodies(tmp_path)
    assert len(found) == 100
    for body in found:
        expected = T0 + jitter_offset(body["entry"], T0, 60)
        assert body["run_after"] == pytest.approx(expected, abs=1e-6)
    assert set(ledger.claims) == {(f"t{n}", T0) for n in range(100)}
    assert {p.name for p in files.list_files(tmp_path)} == {
        f"uwsgi_spoolfile_on_spoolcron_{fire_job_id(f't{n}', T0)}_1" for n in range(100)
    }
    # written half a second ahead of each one's instant, so none late
    enqueued = [k for n, k in received if n == "fire_enqueued"]
    assert len(enqueued) == 100
    assert all(k["late"] == 0.0 and k["fire_time"] == T0 for k in enqueued)
    spread = sorted(b["run_after"] - T0 for b in found)
    assert spread[0] < 10
    assert spread[-1] > 50


def test_upcoming_lists_jittered_instants_and_paused_entries() -> None:
    entry = resolved_entry("e", "every 10 minutes", jitter=120)
    now = datetime.fromtimestamp(T0 + 1, UTC)
    result = merge_upcoming([entry], now=now, count=2, paused={"e": "maintenance"})
    assert [run.when.timestamp() for run in result.runs] == [
        T0 + 600 + jitter_offset("e", T0 + 600, 120),
        T0 + 1200 + jitter_offset("e", T0 + 1200, 120),
    ]
    assert [(run.paused, run.note) for run in result.runs] == [(True, "maintenance")] * 2


def test_a_receiver_that_raises_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("metrics down")

    signals.fire_enqueued.connect(broken, sender=Beat)
    try:
        clock = Clock(T0)
        beat = make(tmp_path, [resolved_entry("e", "every second")], MemoryLedger(), clock)
        run(beat, clock, T0 + 2)
    finally:
        signals.fire_enqueued.disconnect(broken, sender=Beat)
    assert fire_times(tmp_path) == [T0 + 1, T0 + 2]
    assert "signal receiver" in caplog.text
    assert "raised for entry=e" in caplog.text


def test_a_beat_starts_when_the_states_cannot_be_read(tmp_path: Path) -> None:
    # e.g. spoolcron upgraded and `migrate` not run yet: nothing is paused, fires go on.
    clock = Clock(T0)
    ledger = MemoryLedger()

    def missing() -> object:
        raise OSError("no such table: spoolcron_entrystate")

    ledger.states_version = missing  # type: ignore[method-assign]
    beat = make(tmp_path, [resolved_entry("e", "every second")], ledger, clock)
    run(beat, clock, T0 + 2)
    assert fire_times(tmp_path) == [T0 + 1, T0 + 2]
