"""One-off jobs through a real uWSGI spooler, woken by the spoolcron mule.

The spooler runs with --spooler-frequency 60: anything that runs within a few seconds was
woken by the mule, not found by uWSGI's own polling.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import spoolcron
from spoolcron.core.payload import Payload
from spoolcron.spool import codec, files
from spoolcron.spool.payloads import write_payload
from tests.conftest import Runs
from tests.testapp import tasks

from .conftest import RunUwsgi
from .harness import UwsgiProcess, free_port
from .project import Database
from .test_beat_uwsgi import beat_env, beat_options

pytestmark = [pytest.mark.uwsgi, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def dirs(tmp_path: Path, settings: Any) -> tuple[Path, Path]:
    spool = files.ensure_dir(tmp_path / "spool")
    failed = tmp_path / "failed"
    settings.SPOOLCRON = {"SPOOL_DIR": str(spool), "FAILED_DIR": str(failed)}
    return spool, failed


StartServer = Callable[..., tuple[UwsgiProcess, int]]


@pytest.fixture
def start_server(
    run_uwsgi: RunUwsgi, dirs: tuple[Path, Path], runs: Runs, project_db: Database
) -> StartServer:
    def start(*options: str, **env: str) -> tuple[UwsgiProcess, int]:
        spool, _ = dirs
        port = free_port()
        uwsgi = run_uwsgi(
            *beat_options(spool, "--processes=2", *options, port=port),
            env={**beat_env(spool, runs, project_db), **env},
        )
        uwsgi.wait_for_log("spoolcron mule started")
        return uwsgi, port

    return start


@pytest.fixture
def server(start_server: StartServer) -> tuple[UwsgiProcess, int]:
    return start_server()


def wait_for_labels(
    uwsgi: UwsgiProcess, runs: Runs, labels: list[str], timeout: float = 15
) -> None:
    uwsgi.wait_until(
        lambda: sorted(runs.labels()) == sorted(labels) or None,
        timeout,
        message=f"runs {labels} (seen {runs.labels()})",
    )


def test_delayed_job_runs_once_at_its_time(
    server: tuple[UwsgiProcess, int], dirs: tuple[Path, Path], runs: Runs, project_db: Database
) -> None:
    uwsgi, _ = server
    job = tasks.record.schedule(["delayed"], run_after=1.5)
    assert job.status == "pending"
    wait_for_labels(uwsgi, runs, ["delayed"])
    [run] = runs.all()
    # Never early, though uWSGI's `at` has whole-second resolution.
    assert run["time"] >= job.run_after.timestamp()
    uwsgi.wait_until(lambda: job.status == "missing", 5, message="the spool file to go")
    assert files.list_files(dirs[0]) == []
    assert runs.labels() == ["delayed"]
    history = "SELECT outcome, attempt FROM spoolcron_run WHERE job_id = ?"
    assert project_db.query(history, job.id) == [("succeeded", 1)]


def test_the_spooler_runs_jobs_at_the_workers_priority(
    server: tuple[UwsgiProcess, int], runs: Runs
) -> None:
    # uWSGI starts its spooler at nice 19 (after the post-fork hook); the first job puts it
    # at SPOOLER_NICE (0).
    uwsgi, _ = server
    [pid] = uwsgi.spooler_pids()
    # Set up before its first job: Django and the dispatcher imported right after the fork.
    uwsgi.wait_for_log(f"spooler ready pid={pid}")
    assert os.getpriority(os.PRIO_PROCESS, pid) == 19
    tasks.record.schedule(["first"])
    wait_for_labels(uwsgi, runs, ["first"])
    assert os.getpriority(os.PRIO_PROCESS, pid) == 0
    uwsgi.wait_for_log(f"spooler priority set pid={pid} nice=0 was=19")


def test_a_projects_postfork_functions_still_run(start_server: StartServer, runs: Runs) -> None:
    uwsgi, _ = start_server("--import=tests.integration.apps.postfork_marks")
    [spooler] = uwsgi.spooler_pids()
    uwsgi.wait_for_log(f"spooler ready pid={spooler}")
    forked = [spooler, *uwsgi.worker_pids(), *uwsgi.mule_pids()]
    uwsgi.wait_until(
        lambda: all((runs.directory / f"postfork-{pid}").exists() for pid in forked) or None,
        10,
        message=f"@postfork to run in {forked}",
    )


def test_spooler_nice_none_keeps_uwsgis_priority(start_server: StartServer, runs: Runs) -> None:
    uwsgi, _ = start_server(SPOOLCRON_TEST_SPOOLER_NICE="none")
    [pid] = uwsgi.spooler_pids()
    tasks.record.schedule(["first"])
    wait_for_labels(uwsgi, runs, ["first"])
    assert os.getpriority(os.PRIO_PROCESS, pid) == 19


def test_job_enqueued_inside_a_uwsgi_worker_runs(
    server: tuple[UwsgiProcess, int], runs: Runs
) -> None:
    uwsgi, port = server
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/enqueue/?label=from-worker") as reply:
        assert json.load(reply)["id"]
    wait_for_labels(uwsgi, runs, ["from-worker"])
    assert runs.all()[0]["source"] == "worker"


def test_async_task_runs_in_the_spooler(server: tuple[UwsgiProcess, int], runs: Runs) -> None:
    uwsgi, _ = server
    tasks.record_async.schedule(["coroutine"])
    wait_for_labels(uwsgi, runs, ["coroutine"])


def test_retries_then_failed_dir(
    server: tuple[UwsgiProcess, int], dirs: tuple[Path, Path], runs: Runs
) -> None:
    uwsgi, _ = server
    spool, failed = dirs
    job = tasks.flaky.schedule(["doomed"], {"fail_times": 99})
    uwsgi.wait_until(lambda: job.status == "failed", 20, message="the job to fail for good")
    assert [r["attempt"] for r in runs.all()] == [1, 2, 3]  # retries=2
    [reason] = failed.glob("*.reason.txt")
    assert reason.read_text().startswith(
        "Task 'tests.testapp.tasks.flaky' failed on attempt 3 of 3.\nTraceback"
    )
    assert files.list_files(spool) == []
    assert uwsgi.running()


def test_retry_that_succeeds(server: tuple[UwsgiProcess, int], runs: Runs) -> None:
    uwsgi, _ = server
    tasks.flaky.schedule(["second-time"], {"fail_times": 1})
    uwsgi.wait_until(lambda: len(runs.all()) == 2 or None, 15, message="two attempts")
    uwsgi.wait_for_log("job succeeded .*task=tests.testapp.tasks.flaky attempt=2")


def test_planted_file_naming_an_unregistered_function_is_quarantined_unimported(
    server: tuple[UwsgiProcess, int], dirs: tuple[Path, Path], runs: Runs
) -> None:
    uwsgi, _ = server
    spool, failed = dirs
    planted = Payload(task="tests.integration.apps.canary.boom", job_id="planted", run_after=0)
    write_payload(spool, planted)
    uwsgi.wait_until(
        lambda: list(failed.glob("*.reason.txt")) or None, 15, message="the quarantine"
    )
    [reason] = failed.glob("*.reason.txt")
    assert reason.read_text().startswith("Unknown task 'tests.integration.apps.canary.boom'")
    assert not (runs.directory / "canary-imported").exists()
    assert not (runs.directory / "canary-ran").exists()
    assert (failed / "uwsgi_spoolfile_on_spoolcron_planted_1").exists()
    assert uwsgi.running()


def test_corrupt_file_is_quarantined(
    server: tuple[UwsgiProcess, int], dirs: tuple[Path, Path]
) -> None:
    uwsgi, _ = server
    spool, failed = dirs
    body = b"{truncated"
    files.write(spool, "uwsgi_spoolfile_on_spoolcron_corrupt_1", {codec.MARKER: b"1"}, body)
    uwsgi.wait_until(
        lambda: list(failed.glob("*.reason.txt")) or None, 15, message="the quarantine"
    )
    [reason] = failed.glob("*.reason.txt")
    assert "has a body that is not JSON" in reason.read_text()


def test_spooler_killed_mid_job_reruns_it(
    server: tuple[UwsgiProcess, int], runs: Runs, tmp_path: Path
) -> None:
    uwsgi, _ = server
    release = tmp_path / "release"
    tasks.slow.schedule(["victim"], {"release_file": str(release)})
    uwsgi.wait_until(lambda: runs.labels("slow-start") or None, 15, message="the job to start")
    [spooler] = uwsgi.spooler_pids()
    os.kill(spooler, signal.SIGKILL)  # the master stays and respawns the spooler
    uwsgi.wait_until(
        lambda: len(runs.labels("slow-start")) == 2 or None,
        30,
        message="the job to start again after the spooler respawned",
    )
    assert uwsgi.spooler_pids() != [spooler]
    release.write_text("go")
    uwsgi.wait_until(lambda: runs.labels("slow-end") or None, 15, message="the job to finish")
    assert runs.labels("slow-end") == ["victim"]


def test_cancelled_job_never_runs(server: tuple[UwsgiProcess, int], runs: Runs) -> None:
    uwsgi, _ = server
    doomed = tasks.record.schedule(["cancelled"], run_after=1.0)
    assert doomed.cancel() is True
    tasks.record.schedule(["marker"], run_after=2.0)
    # The marker was due after the cancelled job: once it ran, the other would have too.
    wait_for_labels(uwsgi, runs, ["marker"])
    assert runs.labels() == ["marker"]
    assert doomed.status == "missing"


def test_running_job_cannot_be_cancelled(
    server: tuple[UwsgiProcess, int], runs: Runs, tmp_path: Path
) -> None:
    uwsgi, _ = server
    release = tmp_path / "release"
    job = tasks.slow.schedule(["busy"], {"release_file": str(release)})
    uwsgi.wait_until(lambda: runs.labels("slow-start") or None, 15, message="the job to start")
    assert job.status == "running"
    with pytest.raises(spoolcron.JobRunning) as info:
        job.cancel()
    assert str(info.value) == f"Cannot cancel job {job.id!r}: a spooler is running it right now."
    release.write_text("go")
    uwsgi.wait_until(lambda: job.status == "missing", 15, message="the job to finish")


def test_health_sees_the_spooler(server: tuple[UwsgiProcess, int]) -> None:
    uwsgi, _ = server
    report = uwsgi.wait_until(
        lambda: (h := spoolcron.health())["spooler_attached"] and h, 10, message="a heartbeat"
    )
    assert report["spooler_pids"] == uwsgi.spooler_pids()


def test_job_enqueued_from_a_separate_script_runs(
    dirs: tuple[Path, Path], server: tuple[UwsgiProcess, int], runs: Runs
) -> None:
    """A cron script or `manage.py shell`: a separate interpreter with only Django settings."""
    uwsgi, _ = server
    script = (
        "import django; django.setup(); "
        "from tests.testapp import tasks; tasks.record.schedule(['from-script'], run_after=0.5)"
    )
    subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "SPOOLCRON_SPOOL_DIR": str(dirs[0]),
        },
        timeout=60,
    )
    wait_for_labels(uwsgi, runs, ["from-script"])
