"""The soak: two uWSGI hosts on one PostgreSQL for SPOOLCRON_SOAK_MINUTES (default 30) with
100 entries of mixed schedules and a stream of one-off jobs enqueued through their workers.

At the end, per entry: the fires its schedule has in the window, the fires claimed and the
runs -- equal, none doubled, none missing; each one-off job ran once; the spoolers' memory
flat. Only ``make soak`` runs it (SPOOLCRON_SOAK=1); it needs PostgreSQL and fails without.
"""

from __future__ import annotations

import collections
import json
import os
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

import schedules
from spoolcron.spool import files
from tests import postgres
from tests.conftest import Runs
from tests.integration.conftest import RunUwsgi
from tests.integration.harness import UwsgiProcess, wait_until
from tests.integration.project import Database
from tests.integration.test_beat_uwsgi import claims, iso, timestamp

from .apps.soak import ENTRIES
from .support import Dirs, start

pytestmark = [
    pytest.mark.soak,
    pytest.mark.uwsgi,
    pytest.mark.postgres,
    pytest.mark.skipif(
        os.environ.get("SPOOLCRON_SOAK") != "1",
        reason="the 30-minute soak runs only with `make soak` (SPOOLCRON_SOAK=1)",
    ),
]

MINUTES = float(os.environ.get("SPOOLCRON_SOAK_MINUTES", "30"))
ONE_OFF_EVERY = 0.5
# Memory samples: ten over the run, a minute apart at most, the first after the warm-up.
SAMPLE_EVERY = max(10.0, min(60.0, MINUTES * 6))
# Growth of a spooler's resident memory from the first minute to the end that still counts
# as flat: allocator noise and caches warming up, not a leak of a few bytes per job.
RSS_SLACK = 8 * 1024 * 1024


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def expected_fires(expression: str, after: float, until: float) -> list[float]:
    schedule = schedules.parse(expression, tz="UTC")
    fires = []
    moment = datetime.fromtimestamp(after, UTC)
    while (fire := schedule.next_after(moment)) is not None and fire.timestamp() <= until:
        fires.append(fire.timestamp())
        moment = fire
    return fires


def enqueue(port: int, label: str, delay: float) -> str:
    url = f"http://127.0.0.1:{port}/enqueue/?label={label}&delay={delay}"
    with urllib.request.urlopen(url, timeout=30) as reply:
        return str(json.load(reply)["id"])


def http_port(uwsgi: UwsgiProcess) -> int:
    [option] = [o for o in uwsgi.options if o.startswith("--http-socket=")]
    return int(option.rsplit(":", 1)[1])


@pytest.fixture(autouse=True)
def _needs_postgres() -> None:
    """A soak that skips is not a soak that passed: without PostgreSQL it fails."""
    if postgres.database_url() is None:
        pytest.fail(
            "the soak needs PostgreSQL: set SPOOLCRON_TEST_DATABASE_URL=postgresql://user@host/db"
            " or CI=true for postgresql://root@127.0.0.1:5432/test"
        )


def test_soak(run_uwsgi: RunUwsgi, tmp_path: Path, runs: Runs, postgres_db: Database) -> None:
    hosts = []
    for name in ("a", "b"):
        dirs = Dirs(files.ensure_dir(tmp_path / f"spool-{name}"), tmp_path / f"failed-{name}")
        uwsgi = start(run_uwsgi, dirs, runs, postgres_db, ["soak"], "--spooler-processes=2")
        hosts.append((uwsgi, dirs))
    began = time.time()
    end = began + MINUTES * 60
    one_offs: dict[str, str] = {}  # label -> job id
    memory: dict[int, list[int]] = collections.defaultdict(list)
    next_sample = began + SAMPLE_EVERY
    n = 0
    while time.time() < end:
        uwsgi, _ = hosts[n % 2]
        label = f"oneoff-{n:06d}"
        one_offs[label] = enqueue(http_port(uwsgi), label, delay=(n % 7) * 0.5)
        n += 1
        if time.time() >= next_sample:
            next_sample += SAMPLE_EVERY
            for host, _ in hosts:
                for pid in host.spooler_pids():
                    memory[pid].append(rss(pid))
        for host, _ in hosts:
            assert host.running(), host.log()[-3000:]
        time.sleep(ONE_OFF_EVERY)
    stopped_enqueueing = time.time()

    # Let the last fires and jobs run, then stop both hosts.
    cutoff = stopped_enqueueing - 2

    def settled() -> bool:
        unfinished = postgres_db.query(
            "SELECT COUNT(*) FROM spoolcron_run WHERE outcome = 'running'"
        )
        return unfinished == [(0,)] and set(one_offs) <= set(runs.labels("record"))

    wait_until(settled, 120, interval=1, message="the last jobs to finish")
    for host, _ in hosts:
        host.stop()

    rows = postgres_db.query("SELECT entry, due, outcome, job_id FROM spoolcron_run")
    runs_per_fire: dict[tuple[str, float], list[str]] = collections.defaultdict(list)
    for entry, due, outcome, _ in rows:
        if entry:
            runs_per_fire[(entry, timestamp(due))].append(outcome)
    records = collections.Counter(runs.labels("record"))
    report = []
    problems = []
    for e in ENTRIES:
        entry_claims = claims(postgres_db, e.name)
        baseline = min(c.fire_time for c in entry_claims)  # the first beat's start
        expected = expected_fires(str(e.schedule), baseline, cutoff)
        claimed = [c.fire_time for c in entry_claims if c.job_id and c.fire_time <= cutoff]
        ran = [f for f in expected if runs_per_fire.get((e.name, f)) == ["succeeded"]]
        doubled = [f for f in claimed if len(runs_per_fire.get((e.name, f), [])) > 1]
        missing = sorted(set(expected) - set(ran))
        report.append((e.name, str(e.schedule), len(expected), len(claimed), len(ran)))
        if sorted(claimed) != expected or doubled or missing or records[e.name] < len(ran):
            problems.append(
                (e.name, len(expected), len(claimed), len(ran), [iso(f) for f in missing][:5])
            )
    lines = [
        f"{name:10} {expr:18} expected {x:6} claimed {c:6} ran {r:6}"
        for name, expr, x, c, r in report
    ]
    totals = [sum(r[i] for r in report) for i in (2, 3, 4)]
    lines.append(f"total: expected {totals[0]}, claimed {totals[1]}, ran {totals[2]}")
    print("\n".join(lines))
    assert problems == [], problems
    # Each one-off job ran once.
    assert {label: records[label] for label in one_offs if records[label] != 1} == {}
    assert len(one_offs) >= MINUTES * 60 / ONE_OFF_EVERY * 0.5
    # No quarantined or stranded file.
    for _, dirs in hosts:
        assert dirs.quarantined() == []
    # Memory: flat from the first sample to the last.
    grown = {
        pid: (s[0], s[-1]) for pid, s in memory.items() if len(s) >= 2 and s[-1] - s[0] > RSS_SLACK
    }
    assert grown == {}, grown
