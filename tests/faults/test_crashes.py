"""Crashes under real uWSGI: kill -9 of the master and of the mule, a reload (SIGHUP) and a
graceful stop during a job, and a job that never returns under --spooler-harakiri.

For each: what runs again, what is skipped, that nothing is lost, that no fire is enqueued
or run twice, and that the ledger (fire claims, run history) is consistent afterwards. The
kill -9 of the spooler alone is tests/integration/test_jobs_uwsgi.py
::test_spooler_killed_mid_job_reruns_it.

uWSGI 2.0 facts these tests rely on (core/mule.c, core/spooler.c, core/master_utils.c,
core/master_checks.c): a mule asks for SIGKILL when its parent dies (PR_SET_PDEATHSIG); a
worker or spooler notices the master is gone only between requests or scans ("the master
disconnected from this worker"), so a spooler busy with a task finishes it first; a reload
or a stop SIGKILLs the spoolers; a spooler past --spooler-harakiri is SIGKILLed and
respawned, and the file it was running is left in place.
"""

from __future__ import annotations

import itertools
import re
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import Runs
from tests.integration.conftest import RunUwsgi
from tests.integration.harness import UwsgiProcess, wait_until
from tests.integration.project import Database
from tests.integration.test_beat_uwsgi import succeeded
from tests.testapp import tasks

from .support import (
    RUNS_AGAIN,
    Dirs,
    assert_fires_once,
    interrupted_fires,
    kill,
    mule_starts,
    start,
    wait_dead,
)

pytestmark = [pytest.mark.uwsgi, pytest.mark.django_db(transaction=True)]

ENTRY = "every-second"


def fires_since(db: Database, moment: float) -> int:
    return len({r.due for r in succeeded(db, ENTRY) if r.due > moment})


def wait_fires(uwsgi: UwsgiProcess, db: Database, moment: float, count: int) -> None:
    wait_until(
        lambda: fires_since(db, moment) >= count,
        30,
        interval=0.1,
        message=f"{count} runs of {ENTRY!r} after {moment}",
        uwsgi=uwsgi,
    )


def wait_labels(uwsgi: UwsgiProcess, runs: Runs, task: str, count: int) -> None:
    uwsgi.wait_until(
        lambda: len(runs.labels(task)) >= count or None,
        40,
        message=f"{count} records of {task} (seen {runs.labels(task)})",
    )


def job_history(db: Database, job_id: str) -> list[tuple[str, int]]:
    rows = db.query(
        "SELECT outcome, attempt FROM spoolcron_run WHERE job_id = ? ORDER BY id", job_id
    )
    return [(str(o), int(a)) for o, a in rows]


def unfinished_runs(db: Database) -> list[tuple[str, str]]:
    """Runs, of periodic entries and one-off jobs alike, still marked running."""
    rows = db.query("SELECT job_id, entry FROM spoolcron_run WHERE outcome = 'running'")
    return [(str(j), str(e)) for j, e in rows]


def test_master_killed_mid_job(
    run_uwsgi: RunUwsgi, dirs: Dirs, runs: Runs, project_db: Database, tmp_path: Path
) -> None:
    """kill -9 of the master while a job runs: the mule and the idle processes end at once, the
    busy spooler finishes its job and then ends (no orphan stays); a uWSGI started meanwhile
    neither runs that job again nor loses the one due during the crash; no fire doubled."""
    first = start(run_uwsgi, dirs, runs, project_db, ["every_second"], "--spooler-processes=2")
    release = tmp_path / "release"
    job = tasks.slow.schedule(["victim"], {"release_file": str(release)})
    wait_labels(first, runs, "slow-start", 1)
    [busy] = [r["pid"] for r in runs.all() if r["task"] == "slow-start"]
    wait_fires(first, project_db, 0, 2)
    through = tasks.record.schedule(["due-during-the-crash"], run_after=3)

    kill(first.pid)
    # The mule (parent-death signal), the workers and the idle spooler end; the busy spooler
    # is an orphan until its task returns.
    first.wait_until(lambda: first.group_pids() == [busy], 15, "only the busy spooler to remain")

    restarted = time.time()
    second = start(run_uwsgi, dirs, runs, project_db, ["every_second"], "--spooler-processes=2")
    wait_fires(second, project_db, restarted, 3)
    # The orphan still holds the job's lock: the new spoolers passed it over.
    assert runs.labels("slow-start") == ["victim"]
    assert job.status == "running"
    release.write_text("go")
    wait_labels(second, runs, "slow-end", 1)
    wait_dead([busy], 15, second)
    assert first.group_pids() == []  # nothing of the killed instance is left
    second.wait_until(
        lambda: "due-during-the-crash" in runs.labels("record"), 15, "the job due meanwhile"
    )
    second.wait_until(lambda: job.status == "missing", 10, "the finished job's file to go")
    second.stop()

    assert runs.labels("slow-start") == runs.labels("slow-end") == ["victim"]
    assert job_history(project_db, job.id) == [("succeeded", 1)]
    assert job_history(project_db, through.id) == [("succeeded", 1)]
    assert runs.labels("record").count("due-during-the-crash") == 1
    assert_fires_once(project_db, runs, ENTRY, at_least=5)
    assert unfinished_runs(project_db) == []


def test_mule_killed(run_uwsgi: RunUwsgi, dirs: Dirs, runs: Runs, project_db: Database) -> None:
    """kill -9 of the mule (the beat and the waker): the master respawns it, the new beat goes
    on from the ledger; every fire claimed runs once, none twice, and the only fires not
    claimed are the ones the misfire policy coalesced (logged)."""
    uwsgi = start(run_uwsgi, dirs, runs, project_db, ["every_second"])
    wait_fires(uwsgi, project_db, 0, 3)
    [mule] = uwsgi.mule_pids()
    kill(mule)
    killed = time.time()
    uwsgi.wait_until(lambda: mule_starts(uwsgi) == 2, 30, "the mule to be respawned")
    assert uwsgi.mule_pids() != [mule]
    wait_fires(uwsgi, project_db, killed + 1, 4)
    uwsgi.stop()

    fires = assert_fires_once(project_db, runs, ENTRY, at_least=7)
    holes = [(a, b) for a, b in itertools.pairwise(fires) if b - a != 1]
    log = uwsgi.log()
    # A respawn within the beat's 5 s lateness limit catches up each fire; a slower one
    # coalesces the missed fires into one run and says so.
    assert len(holes) <= 1
    if holes:
        assert re.search(rf"missed fires entry={ENTRY} .*policy=coalesce .*enqueued=1$", log, re.M)
    assert unfinished_runs(project_db) == []


def test_reload_during_a_job(
    run_uwsgi: RunUwsgi, dirs: Dirs, runs: Runs, project_db: Database, tmp_path: Path
) -> None:
    """SIGHUP while a job runs: uWSGI SIGKILLs the spooler and the mule and starts new ones;
    the interrupted job runs again once (at least once), the fires go on, none doubled."""
    uwsgi = start(run_uwsgi, dirs, runs, project_db, ["every_second"], "--spooler-processes=2")
    release = tmp_path / "release"
    job = tasks.slow.schedule(["reloaded"], {"release_file": str(release)})
    wait_labels(uwsgi, runs, "slow-start", 1)
    old_spoolers = uwsgi.spooler_pids()
    wait_fires(uwsgi, project_db, 0, 2)

    uwsgi.kill(signal.SIGHUP)
    reloaded = time.time()
    wait_dead(old_spoolers, 30, uwsgi)
    wait_labels(uwsgi, runs, "slow-start", 2)  # the new spooler runs it again
    uwsgi.wait_until(lambda: mule_starts(uwsgi) == 2, 30, "the mule to start again")
    release.write_text("go")
    wait_labels(uwsgi, runs, "slow-end", 1)
    wait_fires(uwsgi, project_db, reloaded + 2, 3)
    uwsgi.wait_until(lambda: job.status == "missing", 10, "the job's file to go")
    uwsgi.stop()

    assert runs.labels("slow-start") == ["reloaded", "reloaded"]
    assert runs.labels("slow-end") == ["reloaded"]
    log = uwsgi.log()
    assert f"spool file runs again after its spooler died path={dirs.spool}/" in log
    [again] = [m["job"] for m in RUNS_AGAIN.finditer(log) if not m["job"].startswith(ENTRY)]
    assert again == job.id
    assert job_history(project_db, job.id)[-1] == ("succeeded", 1)
    # The reload may also kill a fire's run: that fire runs again (at least once).
    assert_fires_once(
        project_db, runs, ENTRY, at_least=5, interrupted=interrupted_fires(log, ENTRY)
    )
    assert unfinished_runs(project_db) == []


def test_graceful_stop_during_a_job(
    run_uwsgi: RunUwsgi, dirs: Dirs, runs: Runs, project_db: Database, tmp_path: Path
) -> None:
    """SIGINT (or SIGTERM with die-on-term) while a job runs: uWSGI stops at once, SIGKILLing
    the spooler; the job's file stays and runs again, once, at the next start."""
    uwsgi = start(run_uwsgi, dirs, runs, project_db, ["every_second"])
    release = tmp_path / "release"
    job = tasks.slow.schedule(["stopped"], {"release_file": str(release)})
    wait_labels(uwsgi, runs, "slow-start", 1)
    assert uwsgi.stop() == 0
    assert uwsgi.group_pids() == []
    assert job.status == "pending"

    release.write_text("go")  # the next run finishes
    again = start(run_uwsgi, dirs, runs, project_db, ["every_second"])
    wait_labels(again, runs, "slow-end", 1)
    again.wait_until(lambda: job.status == "missing", 10, "the job's file to go")
    wait_fires(again, project_db, time.time(), 2)
    again.stop()

    assert runs.labels("slow-start") == ["stopped", "stopped"]
    assert runs.labels("slow-end") == ["stopped"]
    assert job_history(project_db, job.id)[-1] == ("succeeded", 1)
    interrupted = interrupted_fires(again.log(), ENTRY)
    assert_fires_once(project_db, runs, ENTRY, at_least=3, interrupted=interrupted)
    assert unfinished_runs(project_db) == []


def test_job_that_never_returns_is_quarantined_after_three_harakiri(
    run_uwsgi: RunUwsgi, dirs: Dirs, runs: Runs, project_db: Database, tmp_path: Path
) -> None:
    """--spooler-harakiri SIGKILLs a spooler whose task takes too long and uWSGI would run the
    file again forever; spoolcron runs it at most three times, then moves it to the failed
    directory with the reason. The spooler goes on with the other jobs."""
    uwsgi = start(run_uwsgi, dirs, runs, project_db, (), "--spooler-harakiri=2")
    job = tasks.slow.schedule(["never-returns"], {"release_file": str(tmp_path / "never")})
    uwsgi.wait_until(lambda: dirs.quarantined(), 60, "the file to be quarantined")
    [moved] = dirs.quarantined()
    name = moved.name
    assert dirs.reasons() == [
        f"Spool file {str(dirs.spool / name)!r} was started 3 times and the spooler died "
        "each time before its task returned (killed, a reload, or --spooler-harakiri); it is "
        "not run again."
    ]
    assert runs.labels("slow-start") == ["never-returns"] * 3
    assert runs.labels("slow-end") == []
    assert uwsgi.log().count("HARAKIRI ON THE SPOOLER") == 3
    assert job.status == "failed"
    assert [p for p in dirs.pending() if job.id in p.name] == []
    uwsgi.wait_until(
        lambda: not (dirs.spool / ".spoolcron-starts" / name).exists(), 5, "its count cleared"
    )
    # Its history: three runs, none left "running"; its result: FAILED with the reason.
    assert [outcome for outcome, _ in job_history(project_db, job.id)] == ["failed"] * 3
    assert unfinished_runs(project_db) == []
    [(status, errors)] = project_db.query(
        "SELECT status, errors FROM spoolcron_jobresult WHERE id = ?", job.id
    )
    assert status == "FAILED"
    assert "it is not run again." in str(errors)

    tasks.record.schedule(["after-harakiri"])
    uwsgi.wait_until(lambda: runs.labels("record") == ["after-harakiri"], 15, "the next job")
