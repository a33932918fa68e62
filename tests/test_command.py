"""``manage.py spoolcron``: every subcommand through call_command and through a real process."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from freezegun import freeze_time

import spoolcron
import tests.schedule_modules.valid  # noqa: F401  (registers its @periodic entry before any test)
from spoolcron.core.payload import Payload
from spoolcron.models import FireClaim, Run
from spoolcron.spool import files, heartbeat, locks
from spoolcron.spool.payloads import write_payload
from tests.conftest import Runs
from tests.helpers import run_due
from tests.testapp import tasks

REPO = Path(__file__).parents[1]
VALID = "tests.schedule_modules.valid"
BROKEN = "tests.schedule_modules.broken"
NOW = datetime(2026, 11, 23, 12, 0, 7, tzinfo=UTC)
ANSI = "\x1b["
WHEN_ERROR = (
    "Cannot understand --until 'soonish': use an ISO date-time like 2026-12-24T18:00 "
    "or +2h, +3d, today, tomorrow."
)


# @periodic entries of modules another test unloaded would show up (see conftest.py).
pytestmark = pytest.mark.usefixtures("loaded_periodic_only")


def spoolcron_command(*args: str, **options: Any) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("spoolcron", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def failing(*args: str) -> CommandError:
    with pytest.raises(CommandError) as error:
        spoolcron_command(*args)
    return error.value


@pytest.fixture
def valid(spool_dirs: tuple[Path, Path], settings: Any) -> tuple[Path, Path]:
    settings.SPOOLCRON = {**settings.SPOOLCRON, "MODULES": [VALID]}
    return spool_dirs


def payload(job_id: str, when: datetime, **fields: Any) -> Payload:
    return Payload(
        task="tests.testapp.tasks.record", job_id=job_id, run_after=when.timestamp(), **fields
    )


# --- upcoming -------------------------------------------------------------------------------


def test_upcoming_table_in_local_time(valid: tuple[Path, Path], settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Rome"
    spool, _ = valid
    write_payload(spool, payload("job-overdue", NOW - timedelta(seconds=2), args=["late"]))
    write_payload(spool, payload("job-later", NOW + timedelta(minutes=4), attempt=2))
    with freeze_time(NOW):
        out, err = spoolcron_command("upcoming", "--count", "4")
    assert err == ""
    assert out.splitlines() == [
        "WHEN                         DUE      ENTRY / JOB  TASK                        "
        "SCHEDULE         ZONE         SOURCE",
        "Mon 2026-11-23 13:00:05 CET  2 s ago  job-overdue  tests.testapp.tasks.record  "
        "one-off          -            one-off",
        "Mon 2026-11-23 13:00:10 CET  in 3 s   every-5s     tests.testapp.tasks.record  "
        "every 5 seconds  Europe/Rome  periodic",
        "Mon 2026-11-23 13:00:15 CET  in 8 s   every-5s     tests.testapp.tasks.record  "
        "every 5 seconds  Europe/Rome  periodic",
        "Mon 2026-11-23 13:00:20 CET  in 13 s  every-5s     tests.testapp.tasks.record  "
        "every 5 seconds  Europe/Rome  periodic",
        "More runs follow; show them with --count 20.",
    ]


def test_upcoming_json(valid: tuple[Path, Path]) -> None:
    spool, _ = valid
    write_payload(spool, payload("job-1", NOW + timedelta(seconds=1)))
    with freeze_time(NOW):
        out, _ = spoolcron_command("upcoming", "--count", "2", "--entry", "every-5s", "--json")
    document = json.loads(out)
    assert document["now"] == "2026-11-23T12:00:07+00:00"
    assert document["until"] is None
    assert document["more"] is True
    assert document["problems"] == []
    assert document["runs"] == [
        {
            "when": "2026-11-23T12:00:10+00:00",
            "in_seconds": 3.0,
            "name": "every-5s",
            "task": "tests.testapp.tasks.record",
            "schedule": "every 5 seconds (UTC)",
            "expression": "every 5 seconds",
            "zone": "UTC",
            "source": "periodic",
            "entry": "every-5s",
            "job_id": None,
            "attempt": 1,
            "paused": False,
            "note": "",
            "origin": "module",
        },
        {
            "when": "2026-11-23T12:00:15+00:00",
            "in_seconds": 8.0,
            "name": "every-5s",
            "task": "tests.testapp.tasks.record",
            "schedule": "every 5 seconds (UTC)",
            "expression": "every 5 seconds",
            "zone": "UTC",
            "source": "periodic",
            "entry": "every-5s",
            "job_id": None,
            "attempt": 1,
            "paused": False,
            "note": "",
            "origin": "module",
        },
    ]


def test_upcoming_until(valid: tuple[Path, Path]) -> None:
    with freeze_time(NOW):
        out, _ = spoolcron_command("upcoming", "--until", "+1s")
        assert out == "Nothing is scheduled until Mon 2026-11-23 12:00:08 UTC.\n"
        out, _ = spoolcron_command("upcoming", "--until", "2026-11-23T12:01", "--entry", "object")
        assert out == "Nothing is scheduled until Mon 2026-11-23 12:01:00 UTC.\n"  # 90 s: 12:01:30
        out, _ = spoolcron_command("upcoming", "--until", "+2m", "--entry", "object", "--json")
    assert [run["when"] for run in json.loads(out)["runs"]] == ["2026-11-23T12:01:30+00:00"]


def test_upcoming_bad_arguments(valid: tuple[Path, Path]) -> None:
    error = failing("upcoming", "--until", "soonish")
    assert (str(error), error.returncode) == (WHEN_ERROR, 2)
    error = failing("upcoming", "--entry", "nope")
    assert str(error) == "Unknown entry 'nope': no schedules module declares it."
    assert error.returncode == 2
    error = failing("upcoming", "--count", "0")
    assert str(error) == "Error: argument --count: expected a whole number >= 1, not '0'"
    assert error.returncode == 2


def test_upcoming_reports_entry_problems_on_stderr(valid: tuple[Path, Path], settings: Any) -> None:
    settings.SPOOLCRON = {**settings.SPOOLCRON, "MODULES": [VALID, BROKEN]}
    with freeze_time(NOW):
        out, err = spoolcron_command("upcoming", "--count", "1")
    assert "every-5s" in out
    assert (
        "spoolcron.E003 entry 'ghost' in tests.schedule_modules.broken: Unknown task "
        "'tests.testapp.tasks.nope'"
    ) in err
    assert err.count("(left out)") == 6


# --- entries --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_entries_with_last_fire_next_fire_and_last_outcome(valid: tuple[Path, Path]) -> None:
    fire = datetime(2026, 11, 23, 12, 0, 5, tzinfo=UTC)
    FireClaim.objects.create(entry="every-5s", fire_time=fire, job_id="j1", claimed_at=fire)
    # A baseline (job_id "") is when the beat first saw the entry, not a fire.
    FireClaim.objects.create(entry="every-5s", fire_time=NOW, job_id="", claimed_at=NOW)
    for outcome, started in (("failed", fire - timedelta(seconds=5)), ("succeeded", fire)):
        Run.objects.create(
            job_id="j", entry="every-5s", task="t", due=started, started=started, outcome=outcome
        )
    with freeze_time(NOW):
        out, err = spoolcron_command("entries")
    assert err == ""
    block = out.split("\n\n")
    [every_5s] = [b for b in block if b.startswith("every-5s")]
    assert every_5s.splitlines() == [
        "every-5s",
        "  task         tests.testapp.tasks.record",
        "  schedule     every 5 seconds",
        "  in English   every 5 seconds (UTC)",
        "  zone         UTC",
        "  policies     misfire=coalesce, overlap=skip",
        "  enabled      yes",
        "  last fire    Mon 2026-11-23 12:00:05 UTC (2 s ago)",
        "  next fire    Mon 2026-11-23 12:00:10 UTC (in 3 s)",
        "  last outcome succeeded, started Mon 2026-11-23 12:00:05 UTC (2 s ago)",
        "  declared in  tests.schedule_modules.valid",
    ]
    [report] = [b for b in block if b.startswith("sunday-report")]
    assert "  policies     misfire=skip, overlap=skip" in report.splitlines()
    assert "  last fire    -" in report.splitlines()

    with freeze_time(NOW):
        out, _ = spoolcron_command("entries", "--json")
    document = json.loads(out)
    assert document["problems"] == []
    assert document["ledger_error"] is None
    by_name = {e["name"]: e for e in document["entries"]}
    assert by_name["every-5s"] == {
        "name": "every-5s",
        "task": "tests.testapp.tasks.record",
        "expression": "every 5 seconds",
        "description": "every 5 seconds (UTC)",
        "zone": "UTC",
        "misfire": "coalesce",
        "misfire_limit": 10,
        "grace": None,
        "overlap": "skip",
        "enabled": True,
        "module": VALID,
        "last_fire": "2026-11-23T12:00:05+00:00",
        "next_fire": "2026-11-23T12:00:10+00:00",
        "last_outcome": "succeeded",
        "last_run": "2026-11-23T12:00:05+00:00",
        "jitter": 0.0,
        "alert_after": None,
        "paused": False,
        "pause_note": "",
        "paused_since": None,
        "paused_until": None,
        "last_success": None,
        "overdue": False,
        "pause_after_failures": None,
        "origin": "module",
    }
    assert by_name["sunday-report"]["next_fire"] == "2026-11-29T16:03:00+00:00"
    assert by_name["sunday-report"]["last_outcome"] is None


@pytest.mark.django_db(transaction=True)
def test_entries_with_problems_lists_them_and_fails(
    valid: tuple[Path, Path], settings: Any
) -> None:
    settings.SPOOLCRON = {**settings.SPOOLCRON, "MODULES": [VALID, BROKEN]}
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as error:
        call_command("spoolcron", "entries", stdout=out, stderr=err)
    assert str(error.value) == "6 problems with the entries; `manage.py check` reports them too."
    assert error.value.returncode == 1
    assert "every-5s" in out.getvalue()
    assert (
        "spoolcron.E002 entry 'typo' in tests.schedule_modules.broken: Cannot parse schedule "
        "'every 5 secnds': unknown unit 'secnds' at position 8; did you mean 'seconds'?\n"
    ) in err.getvalue()

    out = StringIO()
    with pytest.raises(CommandError):
        call_command("spoolcron", "entries", "--json", stdout=out, stderr=StringIO())
    problems = json.loads(out.getvalue())["problems"]
    assert {k: v for k, v in problems[-1].items() if k != "message"} == {
        "id": "spoolcron.E001",
        "module": BROKEN,
        "entry": "every-5s",
    }


# --- jobs, cancel, retry -----------------------------------------------------------------


def test_jobs_lists_pending_and_running_jobs(valid: tuple[Path, Path]) -> None:
    spool, _ = valid
    write_payload(spool, payload("job-a", NOW + timedelta(hours=1)))
    path = write_payload(spool, payload("job-b", NOW - timedelta(seconds=30), attempt=2))
    file = files.read(path)
    with freeze_time(NOW), locks.hold(path, file.args, file.body):  # as a spooler would
        out, _ = spoolcron_command("jobs")
        document = json.loads(spoolcron_command("jobs", "--json")[0])
    assert out.splitlines() == [
        "ID     TASK                        DUE" + " " * 36 + "STATUS   PLACE  ATTEMPT  ENTRY",
        "job-b  tests.testapp.tasks.record  Mon 2026-11-23 11:59:37 UTC  30 s ago  "
        "running  spool  2        -",
        "job-a  tests.testapp.tasks.record  Mon 2026-11-23 13:00:07 UTC  in 1 h    "
        "pending  spool  1        -",
    ]
    assert document["jobs"][1] == {
        "id": "job-a",
        "task": "tests.testapp.tasks.record",
        "due": "2026-11-23T13:00:07+00:00",
        "status": "pending",
        "attempt": 1,
        "entry": None,
        "place": "spool",
        "queue": "default",
        "path": str(spool / "uwsgi_spoolfile_on_spoolcron_job-a_1"),
    }


def test_jobs_when_there_are_none(spool_dirs: tuple[Path, Path]) -> None:
    assert spoolcron_command("jobs") == (
        "No job is waiting in the spool directory or the pending store.\n",
        "",
    )
    assert spoolcron_command("jobs", "--failed") == ("No job is in the failed directory.\n", "")
    assert json.loads(spoolcron_command("jobs", "--failed", "--json")[0]) == {"failed": []}


@pytest.mark.django_db(transaction=True)
def test_failed_jobs_are_listed_with_their_reason(
    spool_dirs: tuple[Path, Path], runs: Runs
) -> None:
    spool, failed = spool_dirs
    job = tasks.always_fails.schedule(["boom"])
    (spool / "uwsgi_spoolfile_on_spoolcron_garbage_1").write_bytes(b"\x00not a spool file")
    run_due()
    out, _ = spoolcron_command("jobs", "--failed")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "TASK", "FAILED", "ATTEMPT", "REASON"]
    [row] = [line for line in lines if line.startswith(job.id)]
    assert "tests.testapp.tasks.always_fails" in row
    assert row.endswith(
        "Task 'tests.testapp.tasks.always_fails' failed on attempt 1 of 1. "
        "ValueError: always_fails boom"
    )
    [garbage] = [line for line in lines if line.startswith("uwsgi_spoolfile_on_spoolcron_garbage")]
    assert "is corrupt: header modifier1 is 0, expected 17." in garbage
    document = json.loads(spoolcron_command("jobs", "--failed", "--json")[0])
    [entry] = [f for f in document["failed"] if f["id"] == job.id]
    assert entry["task"] == "tests.testapp.tasks.always_fails"
    assert entry["attempt"] == 1
    assert entry["error"] == "ValueError: always_fails boom"
    assert entry["path"] == str(failed / f"uwsgi_spoolfile_on_spoolcron_{job.id}_1")


@pytest.mark.django_db(transaction=True)  # cancelling deletes the job's READY result
def test_cancel(spool_dirs: tuple[Path, Path]) -> None:
    spool, _ = spool_dirs
    job = tasks.record.schedule(["x"], run_after=datetime(2030, 1, 1, tzinfo=UTC))
    out, _ = spoolcron_command("cancel", job.id)
    assert out == (
        f"Cancelled job {job.id!r} (task tests.testapp.tasks.record, due "
        "Tue 2030-01-01 00:00:00 UTC).\n"
    )
    assert job.status == "missing"
    error = failing("cancel", job.id)
    assert str(error) == f"No job {job.id!r} is pending in {str(spool)!r}."
    assert error.returncode == 1


def test_cancel_a_running_or_failed_job(spool_dirs: tuple[Path, Path]) -> None:
    spool, failed = spool_dirs
    path = write_payload(spool, payload("busy", NOW))
    file = files.read(path)
    with locks.hold(path, file.args, file.body):
        error = failing("cancel", "busy")
    assert str(error) == "Cannot cancel job 'busy': a spooler is running it right now."
    assert error.returncode == 1
    files.quarantine(path, failed, "it broke")
    error = failing("cancel", "busy")
    assert str(error) == (
        f"Job 'busy' is not pending: it failed and is in {str(failed)!r}; "
        "`spoolcron retry` puts it back."
    )


@pytest.mark.django_db(transaction=True)
def test_retry_puts_a_failed_job_back_and_it_runs(
    spool_dirs: tuple[Path, Path], runs: Runs
) -> None:
    spool, failed = spool_dirs
    job = tasks.flaky.schedule(["r"], {"fail_times": 3})  # 3 attempts, all fail
    for hour in (1, 2, 3):
        run_due(until=time.time() + 3600 * hour)
    assert job.status == "failed"
    before = time.time()
    out, _ = spoolcron_command("retry", job.id)
    assert out == (
        f"Job {job.id!r} (task tests.testapp.tasks.flaky) is back in the spool directory, "
        "due now.\n"
    )
    assert list(failed.iterdir()) == []  # the failed file and its reason are gone
    [path] = files.list_files(spool)
    assert path.name.startswith(f"uwsgi_spoolfile_on_spoolcron_{job.id}_1-retry-")
    again = Payload.from_body(files.read(path).body, name=path.name)
    assert (again.attempt, again.args, again.kwargs) == (1, ["r"], {"fail_times": 3})
    assert before - 1 <= again.run_after <= time.time()
    assert spoolcron.Job(job.id, job.task, job.run_after).status == "pending"
    [result] = run_due()
    assert result.outcome.value == "succeeded"
    assert runs.labels("flaky") == ["r"] * 4


def test_retry_errors(spool_dirs: tuple[Path, Path]) -> None:
    _, failed = spool_dirs
    error = failing("retry", "nope")
    assert str(error) == f"No failed job 'nope' in {str(failed)!r}."
    assert error.returncode == 1
    failed.mkdir()
    corrupt = failed / "uwsgi_spoolfile_on_spoolcron_bad_1"
    corrupt.write_bytes(b"junk")
    error = failing("retry", "bad")
    assert str(error) == f"Job 'bad' cannot be retried: its file {str(corrupt)!r} is corrupt."
    write_payload(failed, Payload(task="gone.task", job_id="orphan", run_after=0))
    error = failing("retry", "orphan")
    assert str(error).startswith("Unknown task 'gone.task': no function is registered")


# --- delete, purge (issue 15, 3) ----------------------------------------------------------


def failed_file(failed: Path, job: Payload, *, at: datetime, reason: str = "broke") -> Path:
    """A file of ``job`` in the failed directory, moved there at ``at``."""
    staging = failed.parent / "staging"
    staging.mkdir(exist_ok=True)
    path = files.quarantine(write_payload(staging, job), failed, reason)
    os.utime(files.reason_path(path), (at.timestamp(), at.timestamp()))
    return path


def test_delete_a_failed_job(spool_dirs: tuple[Path, Path]) -> None:
    spool, failed = spool_dirs
    first = failed_file(failed, payload("gone", NOW, attempt=1), at=NOW)
    last = failed_file(failed, payload("gone", NOW, attempt=3), at=NOW)
    kept = failed_file(failed, payload("kept", NOW), at=NOW)
    out, _ = spoolcron_command("delete", "gone")
    assert out == (
        f"Deleted 2 failed files of 'gone' and their reasons: {first.name}, {last.name}.\n"
    )
    assert sorted(p.name for p in failed.iterdir()) == sorted(
        [kept.name, files.reason_path(kept).name]
    )
    error = failing("delete", "gone")
    assert (str(error), error.returncode) == (f"No failed job 'gone' in {str(failed)!r}.", 1)
    # An unreadable file is listed by its name, and deleted by it.
    corrupt = failed / "uwsgi_spoolfile_on_spoolcron_garbage"
    corrupt.write_bytes(b"junk")
    out, _ = spoolcron_command("delete", corrupt.name)
    assert out == f"Deleted 1 failed file of {corrupt.name!r} and its reason: {corrupt.name}.\n"
    assert not corrupt.exists()
    # A pending job is cancelled, not deleted.
    write_payload(spool, payload("waiting", NOW + timedelta(days=1)))
    error = failing("delete", "waiting")
    assert str(error) == (
        "Job 'waiting' is not in the failed directory: it is pending; "
        "`spoolcron cancel` removes it."
    )
    assert len(files.list_files(spool)) == 1


def test_purge_failed_all_or_older_than(spool_dirs: tuple[Path, Path]) -> None:
    _, failed = spool_dirs
    now = datetime.now(UTC)
    old = failed_file(failed, payload("old", now), at=now - timedelta(days=8))
    recent = failed_file(failed, payload("recent", now), at=now - timedelta(hours=1))
    out, _ = spoolcron_command("purge", "--failed", "--older-than", "7d", "--json")
    document = json.loads(out)
    assert document["deleted"] == [str(old)]
    assert datetime.fromisoformat(document["older_than"]) == pytest.approx(
        now - timedelta(days=7), abs=timedelta(seconds=5)
    )
    assert not old.exists()
    assert not files.reason_path(old).exists()
    out, _ = spoolcron_command("purge", "--failed", "--older-than", "2000-01-01T00:00")
    assert out == (
        "No file that failed before Sat 2000-01-01 00:00:00 UTC is in the failed directory.\n"
    )
    assert recent.exists()
    out, _ = spoolcron_command("purge", "--failed")
    assert out == "Deleted 1 failed file, with their reasons.\n"
    assert list(failed.iterdir()) == []
    error = failing("purge", "--failed", "--older-than", "lately")
    assert (str(error), error.returncode) == (
        "Cannot understand --older-than 'lately': use a duration like 12h, 7d, 2w or an ISO "
        "date-time like 2026-12-24T18:00.",
        2,
    )
    error = failing("purge")
    assert (str(error), error.returncode) == (
        "Error: the following arguments are required: --failed",
        2,
    )


def test_health_failed_since_lets_old_failures_stop_paging(spool_dirs: tuple[Path, Path]) -> None:
    spool, failed = spool_dirs
    now = datetime.now(UTC)
    heartbeat.write(spool, spooler_pids=[os.getpid()], frequency=None)
    failed_file(failed, payload("old", now), at=now - timedelta(days=2))
    assert str(failing("health")) == (
        f"Unhealthy: 1 job(s) are quarantined in {str(failed)!r}: see `spoolcron jobs --failed`."
    )
    out, _ = spoolcron_command("health", "--failed-since", "1d")
    assert "failed     1 (0 in the last 1 d)" in out.splitlines()
    assert out.startswith("status     healthy")
    failed_file(failed, payload("new", now), at=now - timedelta(minutes=5))
    error = failing("health", "--failed-since", "1d")
    assert str(error) == (
        f"Unhealthy: 1 job(s) are quarantined in {str(failed)!r} (failed in the last 1 d): "
        "see `spoolcron jobs --failed`."
    )
    out_json = StringIO()
    with pytest.raises(CommandError):
        call_command(
            "spoolcron",
            "health",
            "--failed-since",
            "3h",
            "--json",
            stdout=out_json,
            stderr=StringIO(),
        )
    document = json.loads(out_json.getvalue())
    assert {k: document[k] for k in ("failed", "failed_recent", "failed_since_seconds")} == {
        "failed": 2,
        "failed_recent": 1,
        "failed_since_seconds": 10800.0,
    }
    error = failing("health", "--failed-since", "a while")
    assert (str(error), error.returncode) == (
        "Cannot understand --failed-since 'a while': use a duration like 30m, 12h, 7d or a "
        "number of seconds.",
        2,
    )


@pytest.mark.django_db(transaction=True)
def test_the_worker_prunes_failed_files_past_failed_days(
    spool_dirs: tuple[Path, Path], settings: Any, runs: Runs
) -> None:
    # The mule and the worker share one prune: history and now the failed files too.
    _, failed = spool_dirs
    settings.SPOOLCRON = {**settings.SPOOLCRON, "FAILED_DAYS": 3}
    now = datetime.now(UTC)
    old = failed_file(failed, payload("old", now), at=now - timedelta(days=4))
    recent = failed_file(failed, payload("recent", now), at=now - timedelta(days=2))
    tasks.record.schedule(["go"], run_after=-1)
    spoolcron_command("worker", "--max-jobs", "1", "--no-beat")
    assert runs.labels() == ["go"]
    assert files.list_quarantined(failed) == [recent]
    assert not files.reason_path(old).exists()


# --- run, run-due -------------------------------------------------------------------------


def test_run_enqueues_an_entry_now(valid: tuple[Path, Path]) -> None:
    spool, _ = valid
    out, _ = spoolcron_command("run", "sunday-report")
    [path] = files.list_files(spool)
    job = Payload.from_body(files.read(path).body, name=path.name)
    assert out == (
        f"Enqueued job {job.job_id!r} running entry 'sunday-report' "
        "(task tests.testapp.tasks.record) now.\n"
    )
    assert (job.task, job.args, job.kwargs) == (
        "tests.testapp.tasks.record",
        [],
        {"label": "report"},
    )
    assert job.meta == {"entry_manual_run": "sunday-report"}
    assert job.entry is None  # a one-off job: no overlap check, no fire claim
    assert abs(job.run_after - time.time()) < 5


def test_run_unknown_or_broken_entry(valid: tuple[Path, Path], settings: Any) -> None:
    error = failing("run", "nope")
    assert (str(error), error.returncode) == (
        "Unknown entry 'nope': no schedules module declares it.",
        2,
    )
    settings.SPOOLCRON = {**settings.SPOOLCRON, "MODULES": [VALID, BROKEN]}
    error = failing("run", "ghost")
    assert str(error).startswith("Entry 'ghost' cannot be used: Unknown task ")


def test_run_an_unknown_entry_suggests_close_names(
    valid: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 15 (6): @periodic names its entry by the dotted path; `run heartbeat` gave no hint.
    from spoolcron.core import entries

    heartbeat = spoolcron.Entry(
        "tests.testapp.periodic.heartbeat", "tests.testapp.tasks.record", "every 5 seconds"
    )
    monkeypatch.setattr(entries, "_periodic", [*entries._periodic, (__name__, heartbeat)])
    error = failing("run", "heartbeat")
    assert (str(error), error.returncode) == (
        "Unknown entry 'heartbeat': no schedules module declares it; did you mean "
        "'tests.testapp.periodic.heartbeat'?",
        2,
    )
    error = failing("upcoming", "--entry", "sunday-reprot")
    assert str(error) == (
        "Unknown entry 'sunday-reprot': no schedules module declares it; did you mean "
        "'sunday-report'?"
    )


@pytest.mark.django_db(transaction=True)
def test_run_due(spool_dirs: tuple[Path, Path], runs: Runs) -> None:
    ok = tasks.record.schedule(["now"], run_after=-1)
    later = tasks.record.schedule(["later"], run_after=3600)
    out, _ = spoolcron_command("run-due")
    assert out.splitlines() == [
        f"OUTCOME    JOB{' ' * 29}  TASK                        ENTRY  DETAIL",
        f"succeeded  {ok.id}  tests.testapp.tasks.record  -",
    ]
    assert later.status == "pending"
    assert spoolcron_command("run-due") == ("No job was due.\n", "")
    out, _ = spoolcron_command("run-due", "--until", "+2h", "--json")
    assert json.loads(out) == {
        "results": [
            {
                "outcome": "succeeded",
                "job_id": later.id,
                "task": "tests.testapp.tasks.record",
                "entry": None,
                "attempt": 1,
                "reason": "",
            }
        ]
    }
    assert runs.labels() == ["now", "later"]


@pytest.mark.django_db(transaction=True)
def test_run_due_fails_when_a_job_fails(spool_dirs: tuple[Path, Path], runs: Runs) -> None:
    tasks.record.schedule(["fine"], run_after=-2)
    bad = tasks.always_fails.schedule(["no"], run_after=-1)
    out = StringIO()
    with pytest.raises(CommandError) as error:
        call_command("spoolcron", "run-due", stdout=out, stderr=StringIO())
    assert (str(error.value), error.value.returncode) == ("1 of 2 job(s) failed.", 1)
    [row] = [line for line in out.getvalue().splitlines() if bad.id in line]
    assert row.startswith("failed")
    assert row.endswith(
        "Task 'tests.testapp.tasks.always_fails' failed on attempt 1 of 1. "
        "ValueError: always_fails no"
    )


@pytest.mark.django_db(transaction=True)
def test_run_due_detail_is_the_error_not_the_traceback_header(
    spool_dirs: tuple[Path, Path], runs: Runs
) -> None:
    # Issue 15 (5): a retrying job's DETAIL read "Traceback (most recent call last):".
    job = tasks.flaky.schedule(["d", 1], run_after=-1)
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("spoolcron", "run-due", stdout=out, stderr=StringIO())
    [row] = [line for line in out.getvalue().splitlines() if job.id in line]
    assert row.startswith("retrying")
    assert row.endswith("RuntimeError: flaky d failing on purpose, attempt 1")
    assert "Traceback" not in out.getvalue()


# --- health -------------------------------------------------------------------------------


def test_health_without_a_spooler(spool_dirs: tuple[Path, Path]) -> None:
    spool, failed = spool_dirs
    out = StringIO()
    with pytest.raises(CommandError) as error:
        call_command("spoolcron", "health", stdout=out, stderr=StringIO())
    assert error.value.returncode == 1
    assert str(error.value) == (
        "Unhealthy: No spooler is attached: the spoolcron mule's heartbeat in "
        f"{str(spool)!r} is missing or stale (is uWSGI running with the options "
        "`spoolcron uwsgi-config` prints?)."
    )
    assert out.getvalue().splitlines() == [
        "status     unhealthy",
        "spooler    not attached",
        "pending    0",
        "overdue    0 (by more than 60 s)",
        "failed     0",
        f"spool dir  {spool}",
        f"failed dir {failed}",
    ]


def test_health_healthy_then_overdue_then_quarantined(spool_dirs: tuple[Path, Path]) -> None:
    spool, failed = spool_dirs
    heartbeat.write(spool, spooler_pids=[os.getpid()], frequency=None)
    out, _ = spoolcron_command("health")
    assert out.splitlines()[:2] == [
        "status     healthy",
        f"spooler    attached (pid {os.getpid()})",
    ]
    document = json.loads(spoolcron_command("health", "--json")[0])
    assert document["healthy"] is True
    assert document["reasons"] == []
    assert document["spooler_pids"] == [os.getpid()]

    write_payload(spool, payload("stuck", datetime.now(UTC) - timedelta(seconds=120)))
    assert spoolcron_command("health", "--max-overdue", "300")[0].startswith("status     healthy")
    error = failing("health", "--max-overdue", "60")
    assert str(error).startswith(
        "Unhealthy: 1 job(s) are overdue by more than 60 s, the oldest by 12"
    )

    files.quarantine(spool / "uwsgi_spoolfile_on_spoolcron_stuck_1", failed, "broken")
    heartbeat.write(spool, spooler_pids=[os.getpid()], frequency=None)
    json_out = StringIO()
    with pytest.raises(CommandError) as quarantined:
        call_command("spoolcron", "health", "--json", stdout=json_out, stderr=StringIO())
    document = json.loads(json_out.getvalue())
    assert document["healthy"] is False
    assert document["reasons"] == [
        f"1 job(s) are quarantined in {str(failed)!r}: see `spoolcron jobs --failed`."
    ]
    assert str(quarantined.value) == "Unhealthy: " + document["reasons"][0]


def test_health_without_a_spool_dir(tmp_path: Path, settings: Any) -> None:
    settings.SPOOLCRON = {"SPOOL_DIR": str(tmp_path / "absent")}
    error = failing("health")
    assert str(error).startswith(
        f"Unhealthy: The spool directory {str(tmp_path / 'absent')!r} does not exist"
    )


# --- uwsgi-config -------------------------------------------------------------------------


MULE_SCRIPT = Path(spoolcron.__file__).resolve().parent / "mule.py"


def test_uwsgi_config(spool_dirs: tuple[Path, Path]) -> None:
    spool, _ = spool_dirs
    with override_settings(
        WSGI_APPLICATION="myproject.wsgi.application",
        BASE_DIR="/srv/app",
        STATIC_ROOT="/srv/app/static",
        STATIC_URL="/static/",
    ):
        out, _ = spoolcron_command("uwsgi-config", "--socket", "/run/app.sock", "--processes", "8")
    options = [line for line in out.splitlines() if not line.startswith(";")]
    expected = [
        "[uwsgi]",
        "module = myproject.wsgi",
        "env = DJANGO_SETTINGS_MODULE=tests.settings",
        "chdir = /srv/app",
    ]
    if sys.prefix != sys.base_prefix:
        expected.append(f"virtualenv = {sys.prefix}")
    expected += [
        "master = true",
        "die-on-term = true",
        "processes = 8",
        "socket = /run/app.sock",
        # The test project has a remote key and an nginx token: it may receive spool requests.
        "buffer-size = 65535",
        "static-map = /static=/srv/app/static",
        f"spooler = {spool.resolve()}",
        "spooler-quiet = true",
        "shared-import = spoolcron.uwsgi",
        f"mule = {MULE_SCRIPT}",
    ]
    assert options == expected
    comments = [line for line in out.splitlines() if line.startswith(";")]
    assert "; the same directory as SPOOLCRON['SPOOL_DIR']" in comments
    assert len(comments) >= len(expected) - 1  # every option says why it is there

    with override_settings(WSGI_APPLICATION="myproject.wsgi.app"):
        out, _ = spoolcron_command("uwsgi-config")
    assert "module = myproject.wsgi:app" in out.splitlines()
    assert "http = 127.0.0.1:8000" in out.splitlines()

    error = failing("uwsgi-config", "--http", ":80", "--socket", ":81")
    assert str(error) == "Error: argument --socket: not allowed with argument --http"
    assert error.returncode == 2


# --- colour -------------------------------------------------------------------------------


def test_no_colour_unless_forced(spool_dirs: tuple[Path, Path]) -> None:
    tasks.record.schedule(["x"], run_after=3600)
    plain, _ = spoolcron_command("jobs")
    assert ANSI not in plain
    forced, _ = spoolcron_command("jobs", force_color=True)
    assert ANSI in forced


# --- through a real process ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.integration.project import sqlite_template

    return sqlite_template(tmp_path_factory.mktemp("command-db"))


@pytest.fixture
def process_env(tmp_path: Path, sqlite_template: Path) -> dict[str, str]:
    database = tmp_path / "db.sqlite3"
    shutil.copy(sqlite_template, database)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SPOOLCRON_", "DJANGO_")) and key != "PYTHONSTARTUP"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        SPOOLCRON_SPOOL_DIR=str(tmp_path / "spool"),
        SPOOLCRON_TEST_SQLITE=str(database),
        SPOOLCRON_TEST_MODULES=VALID,
        SPOOLCRON_TEST_RESULTS=str(tmp_path),
    )
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django", "spoolcron", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["upcoming", "--until", "soonish"], f"CommandError: {WHEN_ERROR}"),
        (
            ["upcoming", "--count", "zero"],
            "__main__.py spoolcron upcoming: error: argument --count: expected a whole "
            "number >= 1, not 'zero' (see --help)",
        ),
        (
            ["upcoming", "--entry", "nope"],
            "CommandError: Unknown entry 'nope': no schedules module declares it.",
        ),
        (
            [],
            "__main__.py spoolcron: error: the following arguments are required: SUBCOMMAND "
            "(see --help)",
        ),
        (
            ["bogus"],
            "__main__.py spoolcron: error: argument SUBCOMMAND: invalid choice: 'bogus' "
            "(choose from 'upcoming', 'entries', 'jobs', 'cancel', 'retry', 'delete', 'purge', "
            "'run', 'pause', 'resume', 'backfill', 'entry-add', 'entry-edit', 'entry-delete', "
            "'run-due', 'health', 'uwsgi-config', 'worker') (see --help)",
        ),
        (
            ["cancel"],
            "__main__.py spoolcron cancel: error: the following arguments are required: "
            "JOB_ID (see --help)",
        ),
        (
            ["run", "nope"],
            "CommandError: Unknown entry 'nope': no schedules module declares it.",
        ),
        (
            ["run-due", "--until", "soonish"],
            f"CommandError: {WHEN_ERROR}",
        ),
        (
            ["health", "--max-overdue", "-1"],
            "__main__.py spoolcron health: error: argument --max-overdue: expected a number "
            "of seconds >= 0, not '-1' (see --help)",
        ),
        (
            ["jobs", "--verbose"],
            "__main__.py spoolcron: error: unrecognized arguments: --verbose (see --help)",
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    process_env: dict[str, str], args: list[str], stderr: str
) -> None:
    done = manage(process_env, *args)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [stderr]
    assert done.stdout == ""


def test_exit_statuses_of_a_real_process(process_env: dict[str, str], tmp_path: Path) -> None:
    upcoming = manage(process_env, "upcoming", "--count", "3", "--no-color")
    assert (upcoming.returncode, upcoming.stderr) == (0, "")
    assert len(upcoming.stdout.splitlines()) == 5  # header, 3 runs, "More runs follow"
    assert ANSI not in upcoming.stdout  # a pipe is no terminal

    entries = manage(process_env, "entries")
    assert (entries.returncode, entries.stderr) == (0, "")
    broken = manage({**process_env, "SPOOLCRON_TEST_MODULES": f"{VALID},{BROKEN}"}, "entries")
    assert broken.returncode == 1
    assert broken.stderr.splitlines()[-1] == (
        "CommandError: 6 problems with the entries; `manage.py check` reports them too."
    )

    missing = manage(process_env, "cancel", "abc")
    assert missing.returncode == 1
    spool = tmp_path / "spool"
    assert missing.stderr == f"CommandError: No job 'abc' is pending in {str(spool)!r}.\n"
    assert manage(process_env, "retry", "abc").returncode == 1

    run = manage(process_env, "run", "every-5s")
    assert run.returncode == 0, run.stderr
    jobs = manage(process_env, "jobs", "--json")
    [job] = json.loads(jobs.stdout)["jobs"]
    assert job["task"] == "tests.testapp.tasks.record"
    ran = manage(process_env, "run-due")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[1].startswith(f"succeeded  {job['id']}")

    write_payload(
        spool,
        Payload(task="tests.testapp.tasks.always_fails", job_id="bad", run_after=0, args=["x"]),
    )
    failed = manage(process_env, "run-due")
    assert failed.returncode == 1
    assert failed.stderr.splitlines()[-1] == "CommandError: 1 of 1 job(s) failed."

    unhealthy = manage(process_env, "health")
    assert unhealthy.returncode == 1
    assert unhealthy.stderr.startswith("CommandError: Unhealthy: No spooler is attached")
    assert manage(process_env, "retry", "bad").returncode == 0
    manage(process_env, "cancel", "bad")
    heartbeat.write(spool, spooler_pids=[os.getpid()], frequency=None)
    healthy = manage(process_env, "health", "--json")
    assert healthy.returncode == 0, healthy.stderr
    assert json.loads(healthy.stdout)["healthy"] is True

    config = manage(process_env, "uwsgi-config")
    assert config.returncode == 0
    assert f"spooler = {spool.resolve()}" in config.stdout.splitlines()


@pytest.mark.parametrize(
    "subcommand",
    [
        "",
        "upcoming",
        "entries",
        "jobs",
        "cancel",
        "retry",
        "delete",
        "purge",
        "run",
        "run-due",
        "health",
        "uwsgi-config",
        "worker",
    ],
)
def test_help_reads_well(process_env: dict[str, str], subcommand: str) -> None:
    done = manage(process_env, *([subcommand] if subcommand else []), "--help")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: __main__.py spoolcron")
    # Django's options stay on the command's own help, not repeated for each subcommand.
    assert ("--pythonpath" in done.stdout) == (subcommand == "")
    assert max(len(line) for line in done.stdout.splitlines()) <= 100


def test_colour_on_a_terminal(process_env: dict[str, str]) -> None:
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "django", "spoolcron", "health"],
            cwd=REPO,
            env={**process_env, "TERM": "xterm"},
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=subprocess.PIPE,
        )
        os.close(follower)
        follower = -1
        output = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            output += chunk
        process.wait(timeout=60)
        assert process.stderr is not None
        process.stderr.close()
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    assert process.returncode == 1
    assert ANSI in output.decode()


# --- the printed configuration runs -------------------------------------------------------


@pytest.mark.uwsgi
def test_uwsgi_runs_the_printed_config(
    spool_dirs: tuple[Path, Path], runs: Runs, tmp_path: Path, sqlite_template: Path
) -> None:
    from tests.integration.harness import UwsgiProcess, free_port, wait_until

    spool, _ = spool_dirs
    database = tmp_path / "db.sqlite3"
    shutil.copy(sqlite_template, database)
    with override_settings(WSGI_APPLICATION="tests.wsgi.application"):
        ini, _ = spoolcron_command("uwsgi-config", "--http", f"127.0.0.1:{free_port()}")
    (tmp_path / "uwsgi.ini").write_text(ini)
    env = {"SPOOLCRON_SPOOL_DIR": str(spool), "SPOOLCRON_TEST_SQLITE": str(database)}
    with UwsgiProcess(
        "--ini", str(tmp_path / "uwsgi.ini"), env=env, cwd=REPO, log_path=tmp_path / "uwsgi.log"
    ) as uwsgi:
        uwsgi.wait_until(
            lambda: spoolcron.health()["spooler_attached"], 30, message="the mule's heartbeat"
        )
        tasks.record.schedule(["from-the-printed-config"], on_commit=False)
        wait_until(
            lambda: runs.labels() == ["from-the-printed-config"],
            30,
            message="the spooler to run the job",
            uwsgi=uwsgi,
        )
