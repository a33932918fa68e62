"""Two ``spoolcron worker`` processes and one uWSGI instance share a PostgreSQL ledger: each
fire of the every-second entry is claimed once and runs once across the three.

Each has its own spool directory, as separate hosts would; only the database is shared.
"""

from __future__ import annotations

import collections
import os
import time
from pathlib import Path
from typing import Any

import pytest

from spoolcron.spool import files
from tests.conftest import Runs
from tests.integration.conftest import RunUwsgi, postgres_db, run_uwsgi, uwsgi_bin  # noqa: F401
from tests.integration.project import Database
from tests.integration.test_beat_uwsgi import (
    assert_ran_once,
    beat_env,
    fire_times,
    gaps,
    iso,
    run_rows,
    start_beat,
    wait_for,
)
from tests.test_worker import WorkerProcess, start_worker  # noqa: F401

pytestmark = [pytest.mark.uwsgi, pytest.mark.postgres]

ENTRY = "every-second"


def test_two_workers_and_a_uwsgi_host_run_each_fire_once(
    run_uwsgi: RunUwsgi,  # noqa: F811
    start_worker: Any,  # noqa: F811
    tmp_path: Path,
    runs: Runs,
    postgres_db: Database,  # noqa: F811
) -> None:
    uwsgi_spool = files.ensure_dir(tmp_path / "spool-uwsgi")
    uwsgi = start_beat(run_uwsgi, uwsgi_spool, runs, postgres_db, "beat_every_second")
    workers: list[WorkerProcess] = []
    for host in ("a", "b"):
        spool = files.ensure_dir(tmp_path / f"spool-{host}")
        env = {**os.environ, **beat_env(spool, runs, postgres_db, "beat_every_second")}
        worker = start_worker(env)
        workers.append(worker)
    for worker in workers:
        worker.wait_for_log("spoolcron worker started")
    all_up = time.time()

    def done() -> list[Any]:
        return [r for r in run_rows(postgres_db, ENTRY) if r.outcome == "succeeded"]

    wait_for(
        uwsgi,
        lambda: len({r.due for r in done() if r.due > all_up + 1}) >= 10,
        40,
        "ten fires with the three up",
    )
    for worker in workers:
        assert worker.stop() == 0, worker.log()
    uwsgi.stop()

    window = assert_ran_once(postgres_db, runs, ENTRY, at_least=10)
    fires = fire_times(postgres_db, ENTRY)
    assert len(set(fires)) == len(fires)
    up = [f for f in window if f > all_up + 1]
    assert gaps(up, 1) == [], "a second with no claim while the three were up"
    # Who ran what: printed, not asserted (whichever beat claims first writes the fire).
    hosts = {worker.pid: f"worker-{name}" for worker, name in zip(workers, "ab", strict=True)}
    ran_by = collections.Counter(hosts.get(r.pid or 0, "uwsgi") for r in done())
    print(f"fires {iso(window[0])} ... {iso(window[-1])}; ran by {dict(ran_by)}")
