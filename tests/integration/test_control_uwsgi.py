"""Issue 18 under real uWSGI: two instances ("hosts") sharing one PostgreSQL database.

A pause written by one host's command stops the fires on both within a tick (the beat reads
the pause states about once a second); a resume with --catch-up runs the fire the misfire
policy picks from those missed; 100 entries with the same schedule and a jitter fire spread
over the jitter window, each fire once, at the instant both hosts compute; a backfill of a
10-fire range enqueues 10 and a second one 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spoolcron.core.entries import jitter_offset
from spoolcron.spool import files
from tests.conftest import Runs

from .apps.beat_control import JITTER, TENANTS
from .conftest import RunUwsgi
from .project import REPO, Database
from .test_beat_uwsgi import beat_env, fire_times, iso, run_rows, start_beat, wait_for

pytestmark = [pytest.mark.uwsgi, pytest.mark.postgres]

MODULE = "beat_control"


def spoolcron(db: Database, spool: Path, runs: Runs, *args: str) -> str:
    """``manage.py spoolcron ARGS`` as an operator on a host would run it."""
    done = subprocess.run(
        [sys.executable, "-m", "django", "spoolcron", *args],
        cwd=REPO,
        env={**os.environ, **beat_env(spool, runs, db, MODULE)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_pause_resume_jitter_and_backfill_on_two_hosts(
    run_uwsgi: RunUwsgi, tmp_path: Path, runs: Runs, postgres_db: Database
) -> None:
    db = postgres_db
    spools = [files.ensure_dir(tmp_path / f"spool-{host}") for host in ("a", "b")]
    hosts = [start_beat(run_uwsgi, s, runs, db, MODULE, "--processes=1") for s in spools]
    started = time.time()
    pids = [set(h.spooler_pids()) for h in hosts]

    wait_for(
        hosts[0],
        lambda: len([f for f in fire_times(db, "every-second") if f > started]) >= 3,
        20,
        "three fires of every-second",
    )

    # --- pause on host A: both beats stop within a tick ---------------------------------
    out = spoolcron(db, spools[0], runs, "pause", "every-second", "--note", "maintenance")
    paused_at = time.time()
    assert "Paused entry 'every-second' (maintenance)" in out
    # A tick: the states are read about once a second, fires are written half a second
    # ahead; 2.5 s leaves the slack of a loaded machine.
    quiet_from = paused_at + 2.5
    deadline = paused_at + 6
    while time.time() < deadline:  # absence is only seen by looking for a while
        assert [f for f in fire_times(db, "every-second") if f > quiet_from] == []
        time.sleep(0.2)
    last_before = max(fire_times(db, "every-second"))
    assert "every-second" in spoolcron(db, spools[1], runs, "entries")

    # --- resume with --catch-up: coalesce runs the latest missed fire, once -------------
    out = spoolcron(db, spools[1], runs, "resume", "every-second", "--catch-up")
    assert "Resumed entry 'every-second'" in out
    [(resumed_at,)] = db.query(
        "SELECT resumed_at FROM spoolcron_entrystate WHERE entry = ?", "every-second"
    )
    wait_for(
        hosts[0],
        lambda: len([f for f in fire_times(db, "every-second") if f > resumed_at + 1]) >= 2,
        10,
        "fires after the resume",
    )
    missed = [f for f in fire_times(db, "every-second") if last_before < f <= resumed_at]
    assert len(missed) == 1, missed  # coalesce: one of the missed fires
    assert missed[0] >= resumed_at - 2  # the latest one (the resume took up to a second)
    # Each fire once across the two hosts.
    fires = fire_times(db, "every-second")
    assert len(fires) == len(set(fires))

    # --- jitter: 100 entries' fire spread over the window, each once, same instant ------
    first_fire = (int(started) // 15 + 1) * 15
    wanted = {(f"tenant-{n:03d}", float(first_fire)) for n in range(TENANTS)}

    def tenant_runs() -> dict[tuple[str, float], list[tuple[float, int | None]]]:
        found: dict[tuple[str, float], list[tuple[float, int | None]]] = {}
        for n in range(TENANTS):
            name = f"tenant-{n:03d}"
            for run in run_rows(db, name):
                if run.outcome != "succeeded":
                    continue
                fire = float(int(run.due) // 15 * 15)
                found.setdefault((name, fire), []).append((run.due, run.pid))
        return found

    wait_for(
        hosts[0],
        lambda: wanted <= set(tenant_runs()),
        max(5.0, first_fire + JITTER + 20 - time.time()),
        "the 100 jittered fires",
    )
    found = tenant_runs()
    offsets = []
    by_host = [0, 0]
    for name, fire in wanted:
        [(due, pid)] = found[(name, fire)]  # once
        assert due == pytest.approx(fire + jitter_offset(name, fire, JITTER), abs=1e-3)
        offsets.append(due - fire)
        by_host[0 if pid in pids[0] else 1] += 1
    # Spread over the window, not a stampede at the fire time.
    assert {int(o) for o in offsets} == set(range(int(JITTER)))
    # Both hosts enqueued some of them: each computed the same instants.
    assert by_host[0] > 0
    assert by_host[1] > 0
    for name, _ in wanted:
        claimed = fire_times(db, name)
        assert len(claimed) == len(set(claimed))

    # --- backfill: a 10-fire range enqueues 10, a second backfill 0 ---------------------
    end = int(time.time()) - 5
    window = ("--from", iso(end - 9), "--to", iso(end))
    out = spoolcron(db, spools[0], runs, "backfill", "backfilled", *window, "--json")
    assert '"enqueued": 10' in out
    out = spoolcron(db, spools[1], runs, "backfill", "backfilled", *window, "--json")
    assert '"enqueued": 0' in out
    assert '"claimed": 10' in out
    wait_for(
        hosts[0],
        lambda: len([r for r in run_rows(db, "backfilled") if r.outcome == "succeeded"]) == 10,
        20,
        "the 10 backfilled fires to run",
    )
    assert len(fire_times(db, "backfilled")) == 10
