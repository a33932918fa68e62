"""spoolcron.operations called directly: what the command's and the admin's formatting hides.

tests/test_command.py takes every operation through ``manage.py spoolcron`` (messages, exit
statuses, listings) and tests/test_admin.py through the pages; this module checks the values
the functions return: the fields of pending and failed jobs, their order, a retry's new file
at an injected instant, and the health numbers at an injected instant.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from spoolcron import operations
from spoolcron.core.payload import Payload
from spoolcron.exceptions import JobNotFound
from spoolcron.spool import files, heartbeat, locks
from spoolcron.spool.payloads import read_payload, write_payload

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 12, 0, 7, tzinfo=UTC)
RECORD = "tests.testapp.tasks.record"


def payload(job_id: str, when: datetime, **fields: Any) -> Payload:
    return Payload(task=RECORD, job_id=job_id, run_after=when.timestamp(), **fields)


def quarantined(failed: Path, job: Payload, reason: str, *, at: datetime) -> Path:
    """A file of ``job`` in the failed directory, moved there at ``at`` with ``reason``."""
    staging = failed.parent / "staging"
    staging.mkdir(exist_ok=True)
    path = files.quarantine(write_payload(staging, job), failed, reason)
    os.utime(files.reason_path(path), (at.timestamp(), at.timestamp()))
    return path


# --- pending ------------------------------------------------------------------------------


def test_pending_jobs_soonest_first_with_their_arguments(spool_dirs: tuple[Path, Path]) -> None:
    spool, _ = spool_dirs
    write_payload(spool, payload("later", NOW + timedelta(hours=1)))
    write_payload(
        spool,
        payload(
            "sooner",
            NOW,
            args=[1],
            kwargs={"to": "ops"},
            meta={"entry_manual_run": "nightly"},
            attempt=2,
        ),
    )
    fire = write_payload(spool, payload("fire", NOW + timedelta(minutes=1), entry="every-5s"))
    files.write(spool, "uwsgi_spoolfile_on_not_ours", {b"a": b"b"})
    (spool / "uwsgi_spoolfile_on_spoolcron_corrupt_1").write_bytes(b"junk")
    file = files.read(fire)
    with locks.hold(fire, file.args, file.body):  # as a spooler running it would
        jobs = operations.pending()
    assert [(j.id, j.status, j.entry) for j in jobs] == [
        ("sooner", "pending", None),
        ("fire", "running", "every-5s"),
        ("later", "pending", None),
    ]
    sooner = jobs[0]
    assert (sooner.task, sooner.due, sooner.attempt) == (RECORD, NOW, 2)
    assert (sooner.args, sooner.kwargs, sooner.meta) == (
        [1],
        {"to": "ops"},
        {"entry_manual_run": "nightly"},
    )
    assert sooner.path == spool / "uwsgi_spoolfile_on_spoolcron_sooner_2"


def test_no_spool_directory_means_nothing_pending(tmp_path: Path, settings: Any) -> None:
    settings.SPOOLCRON = {"SPOOL_DIR": str(tmp_path / "absent")}
    assert operations.pending() == []


# --- failed -------------------------------------------------------------------------------


def test_failed_jobs_newest_first_with_what_can_be_read(spool_dirs: tuple[Path, Path]) -> None:
    _, failed = spool_dirs
    traceback = "Task failed on attempt 3 of 3.\nTraceback (most recent call last):\nValueError: x"
    old = quarantined(
        failed,
        payload("old", NOW, attempt=3, entry="nightly"),
        traceback,
        at=NOW - timedelta(minutes=30),
    )
    new = quarantined(failed, payload("new", NOW), "Unknown task.", at=NOW)
    corrupt = failed / "uwsgi_spoolfile_on_spoolcron_corrupt_1"
    corrupt.write_bytes(b"junk")
    os.utime(corrupt, (NOW.timestamp() - 7200, NOW.timestamp() - 7200))
    jobs = operations.failed_jobs()
    assert [j.path for j in jobs] == [new, old, corrupt]
    assert (jobs[0].id, jobs[0].reason, jobs[0].error, jobs[0].failed_at) == (
        "new",
        "Unknown task.",
        None,  # a one-line reason is no traceback
        NOW,
    )
    assert (jobs[1].id, jobs[1].task, jobs[1].attempt, jobs[1].entry) == (
        "old",
        RECORD,
        3,
        "nightly",
    )
    assert (jobs[1].reason, jobs[1].error) == ("Task failed on attempt 3 of 3.", "ValueError: x")
    assert operations.failed_reason(jobs[1]) == traceback
    # Not decodable and no reason beside it: listed all the same, by its own time.
    assert (jobs[2].id, jobs[2].task, jobs[2].reason) == (None, None, "(no reason was recorded)")
    assert jobs[2].failed_at == NOW - timedelta(hours=2)


def test_failed_error_is_the_exception_not_the_last_line(spool_dirs: tuple[Path, Path]) -> None:
    # Issue 15 (5): the error was the reason's last line: a note, a message's second line.
    _, failed = spool_dirs
    reason = (
        "Task 'x' failed on attempt 1 of 1.\n"
        "Traceback (most recent call last):\n"
        '  File "a.py", line 1, in f\n'
        "    g()\n"
        "KeyError: 'first'\n"
        "\n"
        "During handling of the above exception, another exception occurred:\n"
        "\n"
        "Traceback (most recent call last):\n"
        '  File "a.py", line 3, in f\n'
        "    raise ValueError('two\\nlines')\n"
        "    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "ValueError: two\n"
        "lines\n"
        "a note added to the exception\n"
    )
    quarantined(failed, payload("chained", NOW), reason, at=NOW)
    [job] = operations.failed_jobs()
    assert (job.reason, job.error) == ("Task 'x' failed on attempt 1 of 1.", "ValueError: two")


@pytest.mark.parametrize(
    ("reason", "line"),
    [
        ("Unknown task 'x'.", "Unknown task 'x'."),
        ("Traceback (most recent call last):\n  File 'a.py'\nOSError: disk", "OSError: disk"),
        (
            "Task failed.\nTraceback (most recent call last):\nValueError: x",
            "Task failed. ValueError: x",
        ),
        ("first\nsecond", "first"),
        ("", "(the reason is empty)"),
    ],
)
def test_reason_line(reason: str, line: str) -> None:
    assert operations.reason_line(reason) == line


# --- delete, purge, prune (issue 15, 3) ---------------------------------------------------


def test_delete_job_removes_every_attempt_and_says_where_a_pending_one_is(
    spool_dirs: tuple[Path, Path],
) -> None:
    spool, failed = spool_dirs
    paths = [quarantined(failed, payload("j", NOW, attempt=n), "broke", at=NOW) for n in (1, 2)]
    other = quarantined(failed, payload("other", NOW), "broke", at=NOW)
    assert operations.delete_job("j") == paths
    assert files.list_quarantined(failed) == [other]
    assert not any(files.reason_path(p).exists() for p in paths)
    with pytest.raises(JobNotFound) as error:
        operations.delete_job("j")
    assert str(error.value) == f"No failed job 'j' in {str(failed)!r}."
    write_payload(spool, payload("waits", NOW))
    with pytest.raises(JobNotFound) as error:
        operations.delete_job("waits")
    assert str(error.value) == (
        "Job 'waits' is not in the failed directory: it is pending; `spoolcron cancel` removes it."
    )


def test_delete_job_matches_the_admins_delete(spool_dirs: tuple[Path, Path]) -> None:
    # The same operation underneath: one file by its listed name, or a job's files by id.
    _, failed = spool_dirs
    path = quarantined(failed, payload("j", NOW), "broke", at=NOW)
    assert operations.delete_failed(path.name) == path
    assert list(failed.iterdir()) == []


def test_purge_failed_older_than(spool_dirs: tuple[Path, Path]) -> None:
    _, failed = spool_dirs
    old = quarantined(failed, payload("old", NOW), "broke", at=NOW - timedelta(days=9))
    older = quarantined(failed, payload("older", NOW), "broke", at=NOW - timedelta(days=10))
    new = quarantined(failed, payload("new", NOW), "broke", at=NOW - timedelta(days=1))
    unreadable = failed / "uwsgi_spoolfile_on_spoolcron_corrupt_1"  # no reason: its own time
    unreadable.write_bytes(b"junk")
    os.utime(unreadable, (NOW.timestamp() - 86400 * 30,) * 2)
    cutoff = NOW - timedelta(days=7)
    assert operations.purge_failed(older_than=cutoff) == [unreadable, older, old]
    assert files.list_quarantined(failed) == [new]
    assert operations.purge_failed() == [new]
    assert sorted(failed.iterdir()) == []


@pytest.mark.django_db(transaction=True)
def test_prune_removes_failed_files_past_failed_days(
    spool_dirs: tuple[Path, Path], settings: Any
) -> None:
    from spoolcron.storage.ledger import DatabaseLedger

    _, failed = spool_dirs
    settings.SPOOLCRON = {**settings.SPOOLCRON, "HISTORY_DAYS": 7}
    week_old = quarantined(failed, payload("a", NOW), "broke", at=NOW - timedelta(days=8))
    fresh = quarantined(failed, payload("b", NOW), "broke", at=NOW - timedelta(days=6))
    assert operations.prune(DatabaseLedger(), now=NOW) == 1
    assert files.list_quarantined(failed) == [fresh]
    assert not week_old.exists()
    settings.SPOOLCRON = {**settings.SPOOLCRON, "FAILED_DAYS": 30}
    assert operations.prune(DatabaseLedger(), now=NOW) == 0
    settings.SPOOLCRON = {**settings.SPOOLCRON, "FAILED_DAYS": 1}
    assert operations.prune(DatabaseLedger(), now=NOW) == 1
    assert files.list_quarantined(failed) == []


# --- cancel and retry ---------------------------------------------------------------------


def test_cancel_returns_the_handle_of_the_job(spool_dirs: tuple[Path, Path]) -> None:
    spool, _ = spool_dirs
    write_payload(spool, payload("j1", NOW + timedelta(days=1)))
    job = operations.cancel_job("j1")
    assert (job.id, job.task, job.run_after) == ("j1", RECORD, NOW + timedelta(days=1))
    assert files.list_files(spool) == []
    with pytest.raises(JobNotFound):
        operations.cancel_job("j1")


def test_retry_puts_back_the_newest_attempt_due_at_the_given_instant(
    spool_dirs: tuple[Path, Path],
) -> None:
    spool, failed = spool_dirs
    for attempt in (1, 3, 2):  # attempts of one job quarantined one by one (e.g. killed)
        job = payload("j1", NOW - timedelta(hours=1), args=[attempt], attempt=attempt)
        quarantined(failed, job, f"attempt {attempt} failed", at=NOW)
    handle = operations.retry_job("j1", now=NOW)
    assert (handle.id, handle.task, handle.run_after) == ("j1", RECORD, NOW)
    [path] = files.list_files(spool)
    again = read_payload(files.read(path))
    assert (again.attempt, again.args) == (1, [3])  # attempt 3 is the most recent version
    assert again.run_after == again.enqueued_at == NOW.timestamp()
    assert list(failed.iterdir()) == []  # every failed file of the job and its reason


def test_retry_a_failed_file_by_its_name(spool_dirs: tuple[Path, Path]) -> None:
    spool, failed = spool_dirs
    path = quarantined(failed, payload("j1", NOW), "broke", at=NOW)
    assert operations.retry_failed(path.name, now=NOW).id == "j1"
    assert len(files.list_files(spool)) == 1
    corrupt = failed / "uwsgi_spoolfile_on_spoolcron_corrupt_1"
    corrupt.write_bytes(b"junk")
    with pytest.raises(JobNotFound) as error:
        operations.retry_failed(corrupt.name)
    assert str(error.value) == (
        f"Failed file {corrupt.name!r} cannot be retried: it is corrupt, so it holds no job to run."
    )


# --- health -------------------------------------------------------------------------------


def test_health_numbers_at_an_instant(spool_dirs: tuple[Path, Path]) -> None:
    spool, failed = spool_dirs
    current = datetime.now(UTC)  # the heartbeat carries the real time
    for job_id, seconds in [("due-soon", 60), ("late", -30), ("later", -600), ("now", -2)]:
        due = current + timedelta(seconds=seconds)
        path = write_payload(spool, payload(job_id, due))
        os.utime(path, (due.timestamp(), due.timestamp()))  # health reads uWSGI's at: the mtime
    quarantined(failed, payload("bad", current), "broke", at=current)
    heartbeat.write(spool, spooler_pids=[41, 42], frequency=30)
    numbers = operations.health(overdue_after=10, now=current.timestamp())
    assert {k: numbers[k] for k in ("pending", "overdue", "failed")} == {
        "pending": 4,
        "overdue": 2,  # "now" is 2 s late: within overdue_after
        "failed": 1,
    }
    assert numbers["oldest_overdue_seconds"] == pytest.approx(600.0)
    assert (numbers["spooler_attached"], numbers["spooler_pids"]) == (True, [41, 42])
    assert (numbers["spool_dir"], numbers["failed_dir"]) == (str(spool), str(failed))
    later = operations.health(now=current.timestamp() + heartbeat.STALE_AFTER + 1)
    assert (later["spooler_attached"], later["spooler_pids"]) == (False, [])

    report = operations.health_report(max_overdue=60, now=current.timestamp())
    assert not report.healthy
    assert report.reasons == [
        "1 job(s) are overdue by more than 60 s, the oldest by 600 s.",
        f"1 job(s) are quarantined in {str(failed)!r}: see `spoolcron jobs --failed`.",
    ]
    document = report.as_dict()
    assert (document["healthy"], document["reasons"]) == (False, report.reasons)
    assert document["overdue"] == 1


def test_health_counts_recent_failures_only_with_failed_since(
    spool_dirs: tuple[Path, Path],
) -> None:
    spool, failed = spool_dirs
    current = datetime.now(UTC)
    heartbeat.write(spool, spooler_pids=[41], frequency=30)
    quarantined(failed, payload("old", current), "broke", at=current - timedelta(days=2))
    quarantined(failed, payload("new", current), "broke", at=current - timedelta(minutes=10))
    numbers = operations.health(failed_since=3600, now=current.timestamp())
    assert (numbers["failed"], numbers["failed_recent"], numbers["failed_since_seconds"]) == (
        2,
        1,
        3600,
    )
    report = operations.health_report(failed_since=3600, now=current.timestamp())
    assert report.reasons == [
        f"1 job(s) are quarantined in {str(failed)!r} (failed in the last 1 h): "
        "see `spoolcron jobs --failed`."
    ]
    assert operations.health_report(failed_since=60, now=current.timestamp()).healthy


def test_health_is_unhealthy_while_an_entry_is_invalid(
    spool_dirs: tuple[Path, Path], settings: Any
) -> None:
    settings.SPOOLCRON = {**settings.SPOOLCRON, "MODULES": ["tests.schedule_modules.broken"]}
    report = operations.health_report()
    assert (
        "5 periodic entries are invalid and not run (spoolcron.E002, spoolcron.E003, "
        "spoolcron.E004): see `manage.py check`."
    ) in report.reasons
