"""uWSGI down for 10 minutes: after the restart each entry catches up exactly as its misfire
policy declares -- coalesce one run, all up to its limit, skip none, grace drops the older
missed fires -- and every fire enqueued runs once.

The 10 minutes do not pass on the wall clock. uWSGI really runs, is really stopped and
really started again; in between, the ledger is set to what 10 minutes of downtime leave:
each entry's newest claimed fire 10 minutes back. That is the whole state the restarted beat
sees: it keeps no cursor and no file of its own, only ``DatabaseLedger.last_fires()`` (the
newest claim of each entry), and it computes the missed fires from that and the clock
(spoolcron/beat.py, ``Beat.start``). The one other trace a stop leaves, a fire written to the
spool directory half a second ahead, is ruled out: the stop comes long before the next fire
and the test checks the directory holds no fire.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest

from spoolcron.core.beat import fire_job_id
from tests.conftest import Runs
from tests.integration.conftest import RunUwsgi
from tests.integration.harness import wait_until
from tests.integration.project import Database
from tests.integration.test_beat_uwsgi import Claim, claims, count_lines, iso, succeeded

from .support import Dirs, assert_fires_once, start

pytestmark = [pytest.mark.uwsgi, pytest.mark.django_db(transaction=True)]

PERIOD = 30
DOWNTIME = 600
ENTRIES = {  # name -> (policy, limit, grace), as apps/downtime.py declares them
    "down-coalesce": ("coalesce", 1, None),
    "down-all-5": ("all", 5, None),
    "down-all-30": ("all", 30, None),
    "down-skip": ("skip", 0, None),
    "down-all-grace": ("all", 30, 100),
    "down-coalesce-grace": ("coalesce", 1, 100),
}


def schedule_fires(after: float, until: float) -> list[float]:
    """The fires of "every 30 seconds" in (after, until]."""
    first = (int(after) // PERIOD + 1) * PERIOD
    return [float(f) for f in range(first, int(until) + 1, PERIOD)]


def catch_up(last: float, tick: float, limit: int, grace: int | None) -> list[float]:
    missed = schedule_fires(last, tick)
    if grace is not None:
        missed = [f for f in missed if f > tick - grace]
    return missed[-limit:] if limit else []


def sqlite_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def test_ten_minutes_down_catches_up_as_each_policy_declares(
    run_uwsgi: RunUwsgi, dirs: Dirs, runs: Runs, project_db: Database
) -> None:
    # Stay clear of a fire: a stop within half a second of one could leave it written ahead.
    wait_until(lambda: 3 < time.time() % PERIOD < PERIOD - 12, PERIOD, message="a quiet moment")
    first = start(run_uwsgi, dirs, runs, project_db, ["downtime"])
    first.wait_until(
        lambda: all(claims(project_db, e) for e in ENTRIES), 15, "the beat's baselines"
    )
    assert first.stop() == 0
    assert dirs.pending() == []

    # The newest fire of each entry, as a beat that ran until 10 minutes ago left it.
    last = (int(time.time() - DOWNTIME) // PERIOD) * PERIOD
    project_db.query("DELETE FROM spoolcron_fireclaim")
    for entry in ENTRIES:
        project_db.query(
            "INSERT INTO spoolcron_fireclaim (entry, fire_time, job_id, claimed_at, host) "
            "VALUES (?, ?, ?, ?, 'before-the-downtime')",
            entry,
            sqlite_time(last),
            fire_job_id(entry, last),
            sqlite_time(last - 0.5),
        )

    restarted = time.time()
    second = start(run_uwsgi, dirs, runs, project_db, ["downtime"])
    second.wait_until(
        lambda: count_lines(second.log(), r"missed fires entry=down-") == len(ENTRIES),
        15,
        "the misfire policy of every entry",
    )
    log = second.log()
    said = {
        m["entry"]: int(m["n"])
        for m in re.finditer(
            r"missed fires entry=(?P<entry>\S+) .* enqueued=(?P<n>\d+)$", second.log(), re.M
        )
    }

    def enqueued() -> dict[str, list[Claim]]:
        return {e: [c for c in claims(project_db, e) if c.fire_time > last] for e in ENTRIES}

    # The log line comes before the claims it announces: wait for them.
    second.wait_until(
        lambda: {e: len(c) for e, c in enqueued().items()} == said, 15, "the announced claims"
    )
    new = enqueued()
    expected_runs = sum(len(c) for c in new.values())
    second.wait_until(
        lambda: sum(len(succeeded(project_db, e)) for e in ENTRIES) >= expected_runs,
        30,
        "every caught-up fire to run",
    )
    second.stop()

    observed = {e: [c.fire_time for c in new[e]] for e in ENTRIES}
    # The first tick handled every entry at one instant between the start and the first
    # claim (seconds apart on a busy machine). The expected catch-up changes with that instant
    # only where a fire falls due or leaves a grace window: try each such instant.
    first_claim = min((c.claimed_at for cs in new.values() for c in cs), default=time.time())
    graces = {grace for _, _, grace in ENTRIES.values() if grace is not None}
    leaving_grace = [
        fire + grace
        for fire in schedule_fires(last, first_claim)
        for grace in graces
        if restarted < fire + grace <= first_claim
    ]
    candidates = [restarted, *schedule_fires(restarted, first_claim), *leaving_grace]
    explained = [
        tick
        for tick in candidates
        if observed
        == {e: catch_up(last, tick, limit, grace) for e, (_, limit, grace) in ENTRIES.items()}
    ]
    assert explained, (
        f"no first tick explains the catch-up after the last fire {iso(last)}: "
        f"{ {e: [iso(f) for f in fs] for e, fs in observed.items()} }"
    )
    tick = explained[0]
    missed = schedule_fires(last, tick)
    assert len(missed) >= DOWNTIME // PERIOD - 1
    counts = {e: len(fs) for e, fs in observed.items()}
    within_grace = len([f for f in missed if f > tick - 100])
    assert counts == {
        "down-coalesce": 1,
        "down-all-5": 5,
        "down-all-30": len(missed),
        "down-skip": 0,
        "down-all-grace": within_grace,
        "down-coalesce-grace": 1,
    }
    # The catch-up is the latest missed fires, none older than the grace.
    assert observed["down-coalesce"] == [missed[-1]]
    assert observed["down-all-5"] == missed[-5:]
    log = second.log()  # now with the runs
    first_missed = datetime.fromtimestamp(last + PERIOD, UTC).isoformat()
    for entry, (policy, _, grace) in ENTRIES.items():
        line = (
            f"missed fires entry={entry} first_missed={first_missed} policy={policy} "
            f"grace_s={None if grace is None else float(grace)} enqueued={counts[entry]}"
        )
        assert count_lines(log, re.escape(line) + "$") == 1, line
    for entry in ENTRIES:
        if counts[entry]:
            assert_fires_once(project_db, runs, entry, at_least=counts[entry], since=last)
    assert dirs.pending() == [] or all(p.stat().st_mtime > tick for p in dirs.pending()), (
        "a caught-up fire did not run"
    )
