"""The wall clock stepped back and forward (NTP, a VM resumed), with an injected clock,
through the real DatabaseLedger and spool files -- including a beat restarted while the
clock is behind the ledger. tests/test_beat.py has the same steps on an in-memory ledger.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from spoolcron.core.beat import Beat
from spoolcron.core.entries import ResolvedEntry
from spoolcron.models import FireClaim
from spoolcron.spool import files
from spoolcron.spool.payloads import SpoolFireWriter
from spoolcron.storage.ledger import DatabaseLedger
from tests.helpers import Clock, resolved_entry

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()


def beat(spool: Path, clock: Clock, *entries: ResolvedEntry) -> Beat:
    started = Beat(list(entries), DatabaseLedger(), SpoolFireWriter(spool), clock=clock)
    started.start()
    return started


def run(b: Beat, clock: Clock, seconds: float, step: float = 0.25) -> None:
    end = clock.now + seconds
    while clock.now < end:
        clock.now = min(end, clock.now + step)
        b.tick()


def spooled(spool: Path, name: str) -> list[float]:
    bodies = [json.loads(files.read(p).body) for p in files.list_files(spool)]
    return sorted(b["run_after"] for b in bodies if b["entry"] == name)


def claimed(name: str) -> list[float]:
    rows = FireClaim.objects.filter(entry=name).exclude(job_id="")
    return sorted(row.fire_time.timestamp() for row in rows)


def test_clock_stepped_back_refires_nothing_even_across_a_restart(tmp_path: Path) -> None:
    clock = Clock(T0)
    every = resolved_entry("every-10s", "every 10 seconds")
    first = beat(tmp_path, clock, every)
    run(first, clock, 60)
    assert claimed("every-10s") == [T0 + s for s in range(10, 70, 10)]

    clock.now -= 3600  # an hour back
    run(first, clock, 120)
    # A new beat (a restart) sees the ledger ahead of its clock: it waits for it.
    second = beat(tmp_path, clock, every)
    run(second, clock, 120)
    assert claimed("every-10s") == [T0 + s for s in range(10, 70, 10)]

    clock.now = T0 + 60
    run(second, clock, 30)
    expected = [T0 + s for s in range(10, 100, 10)]
    assert claimed("every-10s") == expected
    assert spooled(tmp_path, "every-10s") == expected  # one file per claim, none twice


def test_clock_stepped_forward_applies_each_policy_once(tmp_path: Path) -> None:
    clock = Clock(T0)
    entries = [
        resolved_entry("fwd-coalesce", "every minute"),
        resolved_entry("fwd-all-3", "every minute", misfire="all", misfire_limit=3),
        resolved_entry("fwd-skip", "every minute", misfire="skip"),
    ]
    b = beat(tmp_path, clock, *entries)
    run(b, clock, 61)
    clock.now += 3600  # an hour forward
    run(b, clock, 61)
    jump = T0 + 61 + 3600
    after = {e.name: [f for f in claimed(e.name) if f > T0 + 60] for e in entries}
    latest = (jump // 60) * 60
    assert after == {
        "fwd-coalesce": [latest, latest + 60],
        "fwd-all-3": [latest - 120, latest - 60, latest, latest + 60],
        "fwd-skip": [latest + 60],
    }
    for e in entries:
        assert spooled(tmp_path, e.name) == claimed(e.name)
