"""Two uWSGI hosts on one PostgreSQL; one is cut off from the database and comes back.

Host A reaches PostgreSQL through a TCP proxy (tests/faults/proxy.py) that the test cuts:
live connections closed, new ones closed at once, as a database gone away looks to its
clients. Host B connects directly. kill -9 of one host mid-run is
tests/integration/test_two_hosts.py.

While A is cut off its beat cannot claim fires: it logs the first failure with its
traceback, retries every second, and logs when it enqueues again; B goes on claiming every
fire. Jobs A had already written still run on A, without history rows (the history is
best effort: a job never waits for the database). Then B stops and A is cut off again for
longer than the beat's lateness limit: nobody claims those fires, and when A is back its
misfire policy (coalesce) enqueues one run for them. Throughout, no fire is claimed or run
twice and none is lost except as the policy declares.
"""

from __future__ import annotations

import collections
import itertools
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from spoolcron.spool import files
from tests.conftest import Runs
from tests.integration.conftest import RunUwsgi
from tests.integration.harness import UwsgiProcess, wait_until
from tests.integration.project import Database
from tests.integration.test_beat_uwsgi import RunRow, fire_times, iso, run_rows
from tests.postgres import require_postgres
from tests.testapp import tasks

from .proxy import TcpProxy
from .support import Dirs, env, options, start

pytestmark = [pytest.mark.uwsgi, pytest.mark.postgres]

ENTRY = "every-second"


def handled(db: Database, since: float) -> set[float]:
    return {r.due for r in run_rows(db, ENTRY) if r.due > since}


def wait_handled(uwsgi: UwsgiProcess, db: Database, since: float, count: int) -> None:
    wait_until(
        lambda: len(handled(db, since)) >= count,
        30,
        interval=0.2,
        message=f"{count} runs of {ENTRY} after {iso(since)}",
        uwsgi=uwsgi,
    )


def upstream(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432


def test_host_cut_off_from_the_database(
    run_uwsgi: RunUwsgi, tmp_path: Path, runs: Runs, postgres_db: Database
) -> None:
    url = require_postgres()
    host, port = upstream(url)
    dirs_a = Dirs(tmp_path / "spool-a", tmp_path / "failed-a")
    dirs_b = Dirs(tmp_path / "spool-b", tmp_path / "failed-b")
    with TcpProxy(host, port) as proxy:
        via_proxy = {"SPOOLCRON_TEST_PROCESS_DATABASE_URL": proxy.url(url)}
        a = start(run_uwsgi, dirs_a, runs, postgres_db, ["every_second"], environ=via_proxy)
        b = start(run_uwsgi, dirs_b, runs, postgres_db, ["every_second"])
        spoolers_a, spoolers_b = set(a.spooler_pids()), set(b.spooler_pids())
        wait_handled(a, postgres_db, time.time(), 3)

        # 1. A cut off while B runs: B claims every fire, A logs and retries.
        first_cut = time.time()
        proxy.cut()
        a.wait_for_log(r"ERROR spoolcron\.beat beat could not enqueue entry=every-second", 10)
        wait_handled(b, postgres_db, first_cut + 1, 6)
        proxy.restore()
        restored = time.time()
        a.wait_for_log(r"beat enqueues again entry=\S+ failed_attempts=\d+ outage_s=", 15)
        wait_handled(a, postgres_db, restored + 1, 3)
        stops = [(time.time(), b.stop(), time.time())]

        # 2. A alone, cut off for longer than the beat's 5 s lateness limit.
        wait_handled(a, postgres_db, time.time(), 2)
        second_cut = time.time()
        proxy.cut()
        time_cut = wait_until(
            lambda: time.time() - second_cut > 9 and time.time(), 15, message="a long cut"
        )
        proxy.restore()
        a.wait_for_log(r"missed fires entry=every-second .*policy=coalesce .*enqueued=1$", 15)
        wait_handled(a, postgres_db, time_cut + 1, 3)
        stops.append((time.time(), a.stop(), time.time()))
        assert proxy.refused > 0  # A really tried while it was cut off

    fires = fire_times(postgres_db, ENTRY)
    assert len(set(fires)) == len(fires), "a fire claimed twice"
    rows = run_rows(postgres_db, ENTRY)
    last = max(r.due for r in rows if r.outcome == "succeeded")
    window = [f for f in fires if f <= last]
    per_fire = collections.Counter(r.due for r in rows)
    assert [iso(f) for f in window if per_fire[f] > 1] == [], "a fire ran twice"
    assert [r for r in rows if r.due not in set(fires)] == []

    # A host stopped mid-job leaves that run unfinished ("running", or "failed" once another
    # run of the entry notices its process is gone): only such runs may be neither.
    def cut_short_by_a_stop(run: RunRow) -> bool:
        return run.outcome in ("running", "failed") and any(
            run.started <= after and (run.finished is None or run.finished >= before)
            for before, _, after in stops
        )

    assert [r for r in rows if r.outcome not in ("succeeded", "skipped")] == [
        r for r in rows if cut_short_by_a_stop(r)
    ]

    # Every second claimed while at least one host could reach the database...
    holes = [(a_, b_) for a_, b_ in itertools.pairwise(window) if b_ - a_ != 1]
    # ...and one hole, A's second cut, closed by a single coalesced run at its end.
    assert len(holes) == 1, [(iso(x), iso(y)) for x, y in holes]
    [(before, after)] = holes
    assert second_cut - 2 < before < second_cut + 1.5
    assert after > second_cut + 5

    # Each fire ran once: a history row, or (A cut off) a task record no row explains.
    records = [r for r in runs.all() if r["task"] == "record" and r.get("label") == ENTRY]
    explained = [
        r
        for r in records
        if any(
            row.pid == r["pid"]
            and row.started - 1e-4 <= r["time"] <= (row.finished or float("inf")) + 1e-4
            for row in rows
        )
    ]
    unexplained = [r for r in records if r not in explained]
    ran_without_row = [f for f in window if per_fire[f] == 0]
    assert len(unexplained) == len(ran_without_row), (unexplained, ran_without_row)
    assert {r["pid"] for r in unexplained} <= spoolers_a
    assert len(explained) == len([r for r in rows if r.outcome == "succeeded"])
    assert {r.pid for r in rows} <= spoolers_a | spoolers_b


@pytest.mark.django_db(transaction=True)
def test_database_down_when_the_mule_starts(
    run_uwsgi: RunUwsgi, tmp_path: Path, runs: Runs, postgres_db: Database, settings: Any
) -> None:
    """The beat cannot read the ledger at start: the mule logs it and retries, and meanwhile
    still wakes the spooler for one-off jobs; once the database answers, the beat starts."""
    dirs = Dirs(files.ensure_dir(tmp_path / "spool"), tmp_path / "failed")
    settings.SPOOLCRON = {"SPOOL_DIR": str(dirs.spool), "FAILED_DIR": str(dirs.failed)}
    with TcpProxy(*upstream(require_postgres())) as proxy:
        proxy.cut()
        uwsgi = run_uwsgi(
            *options(dirs),
            env={
                **env(dirs, runs, postgres_db, "every_second"),
                "SPOOLCRON_TEST_PROCESS_DATABASE_URL": proxy.url(require_postgres()),
            },
        )
        uwsgi.wait_for_log(r"ERROR spoolcron\.uwsgi beat could not read the ledger, retrying", 20)
        tasks.record.schedule(["while-the-database-is-down"])
        # --spooler-frequency is 60: a run within seconds was woken by the mule.
        uwsgi.wait_until(lambda: runs.labels() == ["while-the-database-is-down"], 10, "the job")
        assert "spoolcron mule started" not in uwsgi.log()
        proxy.restore()
        uwsgi.wait_for_log(
            r"beat could not read the ledger: works again after failed_attempts=", 15
        )
        uwsgi.wait_for_log("spoolcron mule started", 5)
        uwsgi.wait_until(lambda: "every-second" in runs.labels(), 15, "the first fire")
        uwsgi.stop()
    assert uwsgi.log().count("beat started entries=") == 1
