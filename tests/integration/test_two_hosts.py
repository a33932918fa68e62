"""Two uWSGI "hosts" sharing one PostgreSQL database run each periodic fire once between them.

Each instance has its own spool directory, as separate hosts would; only the database is
shared. Whichever beat claims a fire writes it to its own spool and its own spooler runs it.
"""

from __future__ import annotations

import collections
import os
import signal
import time
from pathlib import Path

import pytest

from spoolcron.core.beat import fire_job_id
from spoolcron.core.payload import job_file_prefix
from spoolcron.spool import files
from tests.conftest import Runs

from .conftest import RunUwsgi
from .harness import UwsgiProcess
from .project import Database
from .test_beat_uwsgi import (
    RunRow,
    fire_times,
    gaps,
    iso,
    match_records,
    run_rows,
    start_beat,
    wait_for,
)

pytestmark = [pytest.mark.uwsgi, pytest.mark.postgres]

ENTRY = "every-second"


def spooler_pids(uwsgi: UwsgiProcess) -> set[int]:
    return set(uwsgi.spooler_pids())


def stranded(spool_dir: Path, fire: float) -> bool:
    """Whether the fire's spool file still waits in *spool_dir* (its host died)."""
    prefix = job_file_prefix(fire_job_id(ENTRY, fire))
    return any(f.name.startswith(prefix) for f in files.list_files(spool_dir))


def test_two_hosts_run_each_fire_once_and_survive_a_kill(
    run_uwsgi: RunUwsgi, tmp_path: Path, runs: Runs, postgres_db: Database
) -> None:
    """Two instances, one schedule: every second is claimed and run once across both; after
    one instance is killed -9, the other goes on without a gap."""
    spools = [files.ensure_dir(tmp_path / f"spool-{host}") for host in ("a", "b")]
    hosts = [
        start_beat(run_uwsgi, spool, runs, postgres_db, "beat_every_second", "--processes=2")
        for spool in spools
    ]
    both_up = time.time()
    pids = [spooler_pids(h) for h in hosts]

    def done() -> list[RunRow]:
        return [r for r in run_rows(postgres_db, ENTRY) if r.outcome == "succeeded"]

    wait_for(
        hosts[1],
        lambda: len({r.due for r in done() if r.due > both_up}) >= 8,
        25,
        "eight fires with both hosts up",
    )
    # Kill -9 the whole instance (master, workers, spooler, mule) that ran the latest fire.
    latest = max(done(), key=lambda r: r.due)
    victim = 0 if latest.pid in pids[0] else 1
    survivor = 1 - victim
    assert latest.pid in pids[victim]
    os.killpg(hosts[victim].pid, signal.SIGKILL)
    killed_at = time.time()
    wait_for(hosts[victim], lambda: not hosts[victim].running(), 10, "the killed master to die")

    wait_for(
        hosts[survivor],
        lambda: len({r.due for r in done() if r.due > killed_at + 1}) >= 4,
        20,
        "four fires after the kill",
    )
    hosts[survivor].stop()

    fires = fire_times(postgres_db, ENTRY)
    rows = run_rows(postgres_db, ENTRY)
    last = max(r.due for r in rows if r.outcome == "succeeded")
    window = [f for f in fires if f <= last]
    per_fire = collections.defaultdict(list)
    for row in rows:
        per_fire[row.due].append(row)
    assert [iso(f) for f, ran in per_fire.items() if len(ran) > 1] == [], "a fire ran twice"
    # One claim per second across both hosts, before and after the kill: no gap, no double.
    assert gaps(window, 1) == []
    assert len(set(fires)) == len(fires)
    assert len(window) >= 12
    # Each fire ran exactly once, on one host, never early -- except a fire the killed host
    # had claimed and not finished: it waits in that host's spool dir for the host to return.
    lost = [f for f in window if [r.outcome for r in per_fire[f]] != ["succeeded"]]
    assert all(stranded(spools[victim], f) for f in lost), [(iso(f), per_fire[f]) for f in lost]
    assert all(killed_at - 1.5 < f < killed_at + 1.5 for f in lost), [iso(f) for f in lost]
    assert [r for r in rows if r.due not in set(fires)] == []
    assert [r for r in rows if r.started < r.due] == []
    # Before the kill each run was on one of the two hosts; after it, all on the survivor.
    assert {r.pid for r in rows} <= pids[0] | pids[1]
    after = [r for r in rows if r.due > killed_at + 1.5]
    assert len(after) >= 4
    assert {r.pid for r in after} <= pids[survivor]
    # The tasks' own records agree: one per run, written during it, not before the fire.
    records = [r for r in runs.all() if r["task"] == "record" and r.get("label") == ENTRY]
    owners = match_records(records, rows)
    ran = collections.Counter(o.due for o in owners)
    assert [iso(f) for f in window if f not in lost and ran[f] != 1] == []
    assert [r for r, o in zip(records, owners, strict=True) if r["time"] < o.due] == []
