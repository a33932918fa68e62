"""run_due: the spooler's job done in a plain process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import spoolcron
from spoolcron.core.payload import Payload
from spoolcron.jobs import pending_store
from spoolcron.runtime.dispatch import Outcome
from spoolcron.spool import files
from spoolcron.spool.payloads import pending_payloads
from tests.conftest import Runs
from tests.helpers import run_due
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

LOCK_HOLDER = """
import fcntl, sys
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def test_runs_what_is_due_in_order_and_leaves_the_rest(spool_dir: Path, runs: Runs) -> None:
    tasks.record.schedule(["second"], run_after=-5)
    tasks.record.schedule(["first"], run_after=-10)
    later = tasks.record.schedule(["later"], run_after=3600)
    results = run_due()
    assert [r.outcome for r in results] == [Outcome.SUCCEEDED, Outcome.SUCCEEDED]
    assert runs.labels() == ["first", "second"]
    assert later.status == "pending"
    assert files.list_files(spool_dir) == []  # due in an hour: it waits in the pending store
    assert pending_store().count() == 1


def test_until_runs_future_jobs_now(spool_dir: Path, runs: Runs) -> None:
    tasks.record.schedule(["in-an-hour"], run_after=3600)
    run_due(until=time.time() + 7200)
    assert runs.labels() == ["in-an-hour"]
    assert files.list_files(spool_dir) == []


def test_failures_retry_as_new_files_then_fail(spool_dirs: tuple[Path, Path], runs: Runs) -> None:
    spool, _failed = spool_dirs
    job = tasks.flaky.schedule(["f"], {"fail_times": 9})
    outcomes = []
    for hour in (1, 2, 3):  # each retry is due a little after the `until` it ran at
        outcomes += [r.outcome for r in run_due(until=time.time() + 3600 * hour)]
    assert outcomes == [Outcome.RETRYING, Outcome.RETRYING, Outcome.FAILED]
    assert job.status == "failed"
    assert files.list_files(spool) == []


def test_a_file_locked_by_a_spooler_is_left_alone(spool_dir: Path, runs: Runs) -> None:
    job = tasks.record.schedule(["busy"])
    [path] = files.list_files(spool_dir)
    # Another process takes the lock uWSGI's spooler takes on a file it runs.
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        assert job.status == "running"
        assert run_due() == []
    finally:
        holder.communicate("", timeout=30)
    assert job.status == "pending"
    assert runs.labels() == []


def test_corrupt_file_is_quarantined(spool_dirs: tuple[Path, Path]) -> None:
    spool, failed = spool_dirs
    (spool / "uwsgi_spoolfile_on_broken").write_bytes(b"\x11\xff\xff\x00ab")
    [result] = run_due()
    assert result.outcome is Outcome.QUARANTINED
    assert (failed / "uwsgi_spoolfile_on_broken").exists()


def test_job_handle_sees_the_run(spool_dir: Path, runs: Runs) -> None:
    job = spoolcron.schedule("tests.testapp.tasks.record", ["x"])
    run_due()
    assert job.status == "succeeded"  # from the results store


def spooled_payloads(spool_dir: Path) -> list[Payload]:
    return [payload for _, payload in pending_payloads(spool_dir)]


def test_until_does_not_move_a_retry_by_its_offset(spool_dir: Path, runs: Runs) -> None:
    """`run-due --until +5m` runs a job due in a minute now; when it fails, its retry is due a
    backoff after the real time, not five minutes later."""
    tasks.flaky.schedule(["offset"], {"fail_times": 1}, run_after=60)
    before = time.time()
    [ran] = run_due(until=before + 300)
    assert ran.outcome is Outcome.RETRYING
    [retry] = [
        payload
        for payload in pending_store().waiting() + spooled_payloads(spool_dir)
        if payload.attempt == 2
    ]
    assert before + 0.5 <= retry.run_after <= time.time() + 0.5  # flaky's retry_backoff: 0.5 s
