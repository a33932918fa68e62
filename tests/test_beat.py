"""The beat with an injected clock: due fires, misfire policies, clock jumps, ledger errors.

On an in-memory ledger; tests/test_ledger.py tests the DatabaseLedger, tests/faults/test_clock.py
takes the beat through clock steps on it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import schedules
from spoolcron.core.beat import Beat, fire_job_id, recent_fires
from spoolcron.core.entries import ResolvedEntry
from spoolcron.core.payload import due_of, spool_at
from spoolcron.spool import files
from spoolcron.spool.payloads import SpoolFireWriter
from tests.helpers import Clock, MemoryLedger, resolved_entry

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()


def fire_times(spool_dir: Path) -> list[float]:
    return sorted(json.loads(files.read(p).body)["run_after"] for p in files.list_files(spool_dir))


def make(tmp_path: Path, entries: list[ResolvedEntry], ledger: MemoryLedger, clock: Clock) -> Beat:
    beat = Beat(entries, ledger, SpoolFireWriter(tmp_path), clock=clock, lead=0.5, late_after=5.0)
    beat.start()
    return beat


def test_fires_are_written_lead_seconds_ahead_due_at_the_fire_time(tmp_path: Path) -> None:
    clock = Clock(T0 + 0.2)
    beat = make(tmp_path, [resolved_entry("e", "every 5 seconds")], MemoryLedger(), clock)
    assert beat.tick() == 1.0  # the loop looks again at least every second
    assert beat.next_due() == T0 + 4.5  # the fire at T0+5 is written half a second ahead
    assert fire_times(tmp_path) == []
    clock.now = T0 + 4.5
    beat.tick()
    assert fire_times(tmp_path) == [T0 + 5]
    [path] = files.list_files(tmp_path)
    assert path.name == f"uwsgi_spoolfile_on_spoolcron_{fire_job_id('e', T0 + 5)}_1"
    fired = files.read(path)
    # Due at the fire time exactly; its `at` a second earlier (core.payload.spool_at).
    assert (due_of(fired.args, fired.at), fired.at) == (T0 + 5, spool_at(T0 + 5))
    body = json.loads(files.read(path).body)
    assert (body["entry"], body["args"], body["meta"]) == ("e", ["e"], {"overlap": "skip"})


def test_each_fire_once_in_order(tmp_path: Path) -> None:
    clock = Clock(T0)
    beat = make(tmp_path, [resolved_entry("e", "every second")], MemoryLedger(), clock)
    for step in range(1, 41):
        clock.now = T0 + step * 0.25
        beat.tick()
    assert fire_times(tmp_path) == [T0 + s for s in range(1, 11)]


def test_a_second_beat_on_the_same_ledger_writes_nothing_twice(tmp_path: Path) -> None:
    clock = Clock(T0)
    ledger = MemoryLedger()
    first = make(tmp_path / "a", [resolved_entry("e", "every second")], ledger, clock)
    second = make(tmp_path / "b", [resolved_entry("e", "every second")], ledger, clock)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for step in range(1, 21):
        clock.now = T0 + step * 0.25
        first.tick()
        second.tick()
    both = fire_times(tmp_path / "a") + fire_times(tmp_path / "b")
    assert sorted(both) == [T0 + s for s in range(1, 6)]


@pytest.mark.parametrize(
    ("policy", "options", "expected"),
    [
        pytest.param("coalesce", {}, [T0 + 3600], id="coalesce_runs_latest_once"),
        pytest.param(
            "all", {"misfire_limit": 3}, [T0 + 3000, T0 + 3300, T0 + 3600], id="all_capped"
        ),
        pytest.param("skip", {}, [], id="skip_runs_none"),
        pytest.param("all", {"grace": 700}, [T0 + 3000, T0 + 3300, T0 + 3600], id="all_grace"),
        pytest.param("coalesce", {"grace": 60}, [T0 + 3600], id="coalesce_within_grace"),
    ],
)
def test_downtime_applies_the_misfire_policy(
    tmp_path: Path, policy: str, options: dict[str, Any], expected: list[float]
) -> None:
    # Last fire at T0, beat back at T0 + 1 h + 10 s: eleven 5-minute fires were missed.
    clock = Clock(T0 + 3610)
    ledger = MemoryLedger({"e": T0})
    beat = make(
        tmp_path, [resolved_entry("e", "every 5 minutes", misfire=policy, **options)], ledger, clock
    )
    beat.tick()
    assert fire_times(tmp_path) == expected
    # The next regular fire follows, on time.
    clock.now = T0 + 3900 - 0.5
    beat.tick()
    assert fire_times(tmp_path)[-1] == T0 + 3900


def test_grace_drops_missed_fires_that_are_too_old(tmp_path: Path) -> None:
    clock = Clock(T0 + 3610)
    ledger = MemoryLedger({"e": T0})
    beat = make(tmp_path, [resolved_entry("e", "every hour", grace=5)], ledger, clock)
    beat.tick()
    assert fire_times(tmp_path) == []


def test_restarts_every_few_minutes_never_starve_a_weekly_entry(tmp_path: Path) -> None:
    weekly = resolved_entry("e", "Sunday 17:03")
    ledger = MemoryLedger()
    clock = Clock(datetime(2026, 11, 29, 16, 0, tzinfo=UTC).timestamp())
    fire = datetime(2026, 11, 29, 17, 3, tzinfo=UTC).timestamp()
    # A deploy every 4 minutes; the beat is down from 17:02 to 17:06, over the fire.
    for start in range(0, 2 * 3600, 240):
        clock.now = datetime(2026, 11, 29, 16, 0, tzinfo=UTC).timestamp() + start
        beat = make(tmp_path, [weekly], ledger, clock)
        for _ in range(120):
            clock.now += 1
            if fire - 60 < clock.now < fire + 180:
                break  # down over the fire
            beat.tick()
    assert fire_times(tmp_path) == [fire]


def test_clock_stepped_back_does_not_refire(tmp_path: Path) -> None:
    clock = Clock(T0)
    beat = make(tmp_path, [resolved_entry("e", "every 10 seconds")], MemoryLedger(), clock)
    for step in range(1, 61):
        clock.now = T0 + step
        beat.tick()
    clock.now -= 60  # NTP steps the clock back a minute
    for _ in range(60):
        clock.now += 1
        beat.tick()
    assert fire_times(tmp_path) == [T0 + s for s in range(10, 70, 10)]


def test_clock_stepped_forward_applies_the_policy_not_a_burst(tmp_path: Path) -> None:
    clock = Clock(T0)
    beat = make(tmp_path, [resolved_entry("e", "every second")], MemoryLedger(), clock)
    clock.now = T0 + 0.6
    beat.tick()
    clock.now = T0 + 3600.6  # an hour forward
    beat.tick()
    # One coalesced run for the jump, then the next fire (within lead) on time.
    assert fire_times(tmp_path) == [T0 + 1, T0 + 3600, T0 + 3601]


def test_ledger_down_retries_then_applies_the_policy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(T0)
    ledger = MemoryLedger()
    beat = make(tmp_path, [resolved_entry("e", "every second")], ledger, clock)
    ledger.error = ConnectionError("database is down")
    for step in range(1, 31):
        clock.now = T0 + step
        beat.tick()
    assert "beat could not enqueue entry=e" in caplog.text
    ledger.error = None
    clock.now = T0 + 31
    beat.tick()
    assert fire_times(tmp_path) == [T0 + 31]  # coalesced; then on time again
    clock.now = T0 + 31.5
    beat.tick()
    assert fire_times(tmp_path) == [T0 + 31, T0 + 32]


def test_disabled_entries_never_fire(tmp_path: Path) -> None:
    clock = Clock(T0)
    beat = make(
        tmp_path, [resolved_entry("e", "every second", enabled=False)], MemoryLedger(), clock
    )
    clock.now = T0 + 10
    beat.tick()
    assert fire_times(tmp_path) == []


def test_spent_one_shot_leaves_the_heap(tmp_path: Path) -> None:
    clock = Clock(T0)
    beat = make(
        tmp_path, [resolved_entry("e", "once at 2026-11-23 12:00:03")], MemoryLedger(), clock
    )
    clock.now = T0 + 10
    beat.tick()
    clock.now = T0 + 20
    beat.tick()
    assert fire_times(tmp_path) == [T0 + 3]
    assert beat.next_due() is None


def test_recent_fires_looks_back_cheaply() -> None:
    every_second = schedules.parse("every second", tz="UTC")
    week = 7 * 86400
    assert recent_fires(every_second, T0, T0 + week, 3) == [
        T0 + week - 2,
        T0 + week - 1,
        T0 + week,
    ]
