"""A task's ``timeout`` under a real uWSGI spooler: the attempt is stopped, recorded as failed
"timed out", retried per the task's policy, and the spooler goes on with the next job.

``tests.testapp.tasks.oversleeps`` has ``timeout=1, retries=1, retry_backoff=0.5`` and sleeps
10 s. The spooler polls only every 60 s: anything that runs within seconds was woken by the
mule.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from spoolcron.spool import files
from tests.conftest import Runs
from tests.testapp import tasks

from .conftest import RunUwsgi
from .harness import UwsgiProcess
from .project import Database
from .test_beat_uwsgi import beat_env, beat_options

pytestmark = [pytest.mark.uwsgi, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def dirs(tmp_path: Path, settings: Any) -> tuple[Path, Path]:
    spool = files.ensure_dir(tmp_path / "spool")
    failed = tmp_path / "failed"
    settings.SPOOLCRON = {"SPOOL_DIR": str(spool), "FAILED_DIR": str(failed)}
    return spool, failed


@pytest.fixture
def server(
    run_uwsgi: RunUwsgi, dirs: tuple[Path, Path], runs: Runs, project_db: Database
) -> UwsgiProcess:
    spool, _ = dirs
    uwsgi = run_uwsgi(
        *beat_options(spool, "--processes=1"),
        env=beat_env(spool, runs, project_db),
    )
    uwsgi.wait_for_log("spoolcron mule started")
    return uwsgi


def sigalrm_ignored(pid: int) -> bool:
    """Whether SIGALRM is ignored in ``pid`` (uWSGI's spooler sets it so when it forks)."""
    status = Path(f"/proc/{pid}/status").read_text()
    [mask] = [line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")]
    return bool(int(mask, 16) & (1 << (signal.SIGALRM - 1)))


def test_a_task_past_its_timeout_is_stopped_retried_and_the_spooler_goes_on(
    server: UwsgiProcess, dirs: tuple[Path, Path], runs: Runs, project_db: Database
) -> None:
    uwsgi = server
    _, failed = dirs
    [spooler] = uwsgi.spooler_pids()
    ignored_before = sigalrm_ignored(spooler)

    job = tasks.oversleeps.schedule(["stopped"], {"seconds": 10})
    # Enqueued after it, due while its first attempt runs: runs once that attempt is stopped.
    tasks.record.schedule(["next"], run_after=0.5)

    uwsgi.wait_until(lambda: job.status == "failed", 20, message="the job to fail for good")
    starts = [r["time"] for r in runs.all() if r["task"] == "oversleeps-start"]
    assert len(starts) == 2  # retries=1: the timeout was retried
    assert runs.labels("oversleeps-end") == []  # never slept its 10 s
    # Each attempt stopped after ~1 s: the retry began 1 s (timeout) + 0.5 s (backoff) later.
    assert 1.4 < starts[1] - starts[0] < 4
    uwsgi.wait_until(lambda: "next" in runs.labels() or None, 10, message="the next job")
    [next_run] = [r for r in runs.all() if r["task"] == "record"]
    assert starts[0] < next_run["time"] < starts[1]  # between the attempts, not after 10 s

    def closed_runs() -> list[tuple[Any, ...]] | None:
        rows = project_db.query(
            "SELECT attempt, outcome, error FROM spoolcron_run WHERE job_id = ? ORDER BY attempt",
            job.id,
        )
        return rows if rows and rows[-1][1] != "running" else None

    # The file reaches the failed directory (status "failed") just before the run is closed.
    history = uwsgi.wait_until(closed_runs, 5, message="the last run to be closed")
    assert [(attempt, outcome) for attempt, outcome, _ in history] == [
        (1, "retrying"),
        (2, "failed"),
    ]
    timed_out = "JobTimeout: Task 'tests.testapp.tasks.oversleeps' timed out after 1 s."
    assert all(timed_out in error for _, _, error in history)
    [reason] = failed.glob("*.reason.txt")
    text = reason.read_text()
    assert text.startswith("Task 'tests.testapp.tasks.oversleeps' failed on attempt 2 of 2.")
    assert timed_out in text
    uwsgi.wait_for_log(r"job failed, will retry .*attempt=1 .*error=JobTimeout: .*timed out")

    # The same spooler, its SIGALRM disposition as uWSGI left it, and it runs what comes next.
    assert uwsgi.spooler_pids() == [spooler]
    assert sigalrm_ignored(spooler) == ignored_before
    tasks.record.schedule(["after-the-failure"])
    uwsgi.wait_until(
        lambda: "after-the-failure" in runs.labels() or None, 10, message="a job after it"
    )
    assert uwsgi.running()
