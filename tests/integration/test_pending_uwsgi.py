"""The files pending store under a real uWSGI: jobs due later than the horizon wait beside the
spool directory, the spoolcron mule publishes them at their time, and killing the mule while it
publishes loses and doubles nothing (publishing is a rename: a job is in one place or the
other)."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import spoolcron
from spoolcron.jobs import pending_store
from spoolcron.spool import files
from tests.conftest import Runs
from tests.testapp import tasks

from .conftest import RunUwsgi
from .harness import UwsgiProcess, pid_alive
from .project import Database
from .test_beat_uwsgi import beat_options

pytestmark = [pytest.mark.uwsgi, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def dirs(tmp_path: Path, settings: Any) -> tuple[Path, Path]:
    spool = files.ensure_dir(tmp_path / "spool")
    pending = tmp_path / "pending"
    settings.SPOOLCRON = {"SPOOL_DIR": str(spool), "PENDING_DIR": str(pending)}
    return spool, pending


@pytest.fixture
def server(
    run_uwsgi: RunUwsgi, dirs: tuple[Path, Path], runs: Runs, project_db: Database
) -> UwsgiProcess:
    spool, pending = dirs
    uwsgi = run_uwsgi(
        *beat_options(spool),
        env={
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "SPOOLCRON_SPOOL_DIR": str(spool),
            "SPOOLCRON_PENDING_DIR": str(pending),
            "SPOOLCRON_TEST_RESULTS": str(runs.directory),
            **project_db.env,
        },
    )
    uwsgi.wait_for_log("spoolcron mule started")
    return uwsgi


def test_a_job_waits_in_the_store_and_runs_at_its_time(
    server: UwsgiProcess, dirs: tuple[Path, Path], runs: Runs
) -> None:
    spool, _ = dirs
    job = tasks.record.schedule(["later"], run_after=7)
    assert files.list_files(spool) == []
    assert [p.job_id for p in pending_store().waiting()] == [job.id]
    assert job.status == "pending"
    server.wait_until(lambda: runs.labels() == ["later"] or None, 15, message="the job to run")
    [run] = runs.all()
    assert run["time"] >= job.run_after.timestamp()  # never early
    assert pending_store().count() == 0


def test_killing_the_mule_while_it_publishes_loses_and_doubles_nothing(
    server: UwsgiProcess, dirs: tuple[Path, Path], runs: Runs
) -> None:
    count = 400
    # Due over three seconds from 7 s on: the mule publishes them a second ahead, a few each
    # step.
    spoolcron.schedule_many(
        tasks.record,
        [{"args": [f"job-{i}"], "run_after": 7 + 3 * i / count} for i in range(count)],
    )
    assert pending_store().count() == count
    [mule] = server.mule_pids()
    # Kill it once it has published some and not all of them.
    server.wait_until(
        lambda: 0 < pending_store().count() < count * 3 // 4 or None,
        15,
        message="the mule to be half way through publishing",
    )
    os.kill(mule, signal.SIGKILL)
    server.wait_until(lambda: not pid_alive(mule) or None, 10, message="the mule to die")
    server.wait_until(
        lambda: server.mule_pids() != [mule] or None, 10, message="the master to respawn it"
    )
    server.wait_until(lambda: len(runs.labels()) >= count or None, 60, message=f"{count} runs")
    labels = Counter(runs.labels())
    assert sorted(labels) == sorted(f"job-{i}" for i in range(count))
    assert [label for label, n in labels.items() if n > 1] == []
    assert pending_store().count() == 0
