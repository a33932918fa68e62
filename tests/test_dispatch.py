"""The dispatcher in a plain process: success, async, retries, failure and quarantine."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

import spoolcron
from spoolcron.core.payload import DUE_ARG, Payload, spool_at
from spoolcron.runtime.dispatch import Outcome, not_due_yet
from spoolcron.spool import codec, files
from spoolcron.spool.payloads import write_payload
from tests.conftest import Runs
from tests.helpers import run_spool_file
from tests.testapp import tasks

# transaction=True: inside a test transaction schedule() would wait for a commit.
pytestmark = pytest.mark.django_db(transaction=True)


@spoolcron.task(retries=1)
def fails_once_more(label: str) -> None:
    """Fails every attempt; one retry is due after the first."""
    raise RuntimeError(f"fails_once_more {label}")


def the_file(spool_dir: Path) -> codec.SpoolFile:
    found = files.list_files(spool_dir)
    assert len(found) == 1, found
    return files.read(found[0])


def reason_of(failed: Path) -> str:
    reasons = list(failed.glob("*.reason.txt"))
    assert len(reasons) == 1, reasons
    return reasons[0].read_text().rstrip("\n")


def test_success(spool_dir: Path, runs: Runs) -> None:
    tasks.record.schedule(["hello"])
    result = run_spool_file(the_file(spool_dir))
    assert result.outcome is Outcome.SUCCEEDED
    assert runs.labels() == ["hello"]


def test_async_task_runs_to_completion(spool_dir: Path, runs: Runs) -> None:
    tasks.record_async.schedule(["coro"])
    assert run_spool_file(the_file(spool_dir)).outcome is Outcome.SUCCEEDED
    assert runs.labels("record_async") == ["coro"]


def test_a_moment_early_waits_for_the_precise_instant(spool_dir: Path, runs: Runs) -> None:
    spoolcron.schedule(tasks.record, ["x"], run_after=0.4, now=lambda: 1000.0)
    slept: list[float] = []
    result = run_spool_file(the_file(spool_dir), now=lambda: 1000.397, sleep=slept.append)
    assert result.outcome is Outcome.SUCCEEDED
    assert slept == [pytest.approx(0.003)]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({DUE_ARG: b"1000.006"}, True),  # more than MAX_EARLY_WAIT (5 ms) ahead
        ({DUE_ARG: b"1000.004"}, False),  # the dispatcher waits for it
        ({DUE_ARG: b"999.5"}, False),
        ({}, False),  # an earlier release's file: only its `at`, which uWSGI compared
        ({DUE_ARG: b"soon"}, False),  # dispatch quarantines it, with its reason
    ],
)
def test_not_due_yet_is_told_from_the_due_argument(
    args: dict[bytes, bytes], expected: bool
) -> None:
    assert not_due_yet(args, 1000.0) is expected


@pytest.mark.parametrize("early", [0.3, 60], ids=["later_in_the_same_second", "clock_stepped"])
def test_early_is_left_waiting(spool_dir: Path, runs: Runs, early: float, settings: Any) -> None:
    # The spooler picks up everything due within the current second; running it now would be
    # early, and sleeping would hold up the files behind it. (A horizon of an hour puts the
    # file in the spool directory, as if the clock had stepped back after it was written.)
    settings.SPOOLCRON = {**settings.SPOOLCRON, "HORIZON": 3600}
    spoolcron.schedule(tasks.record, ["x"], run_after=early, now=lambda: 1000.0)
    result = run_spool_file(the_file(spool_dir), now=lambda: 1000.0, sleep=pytest.fail)
    assert result.outcome is Outcome.NOT_DUE
    assert runs.labels() == []


def test_failure_retries_with_backoff_then_succeeds(spool_dir: Path, runs: Runs) -> None:
    spoolcron.schedule(tasks.flaky, ["f"], {"fail_times": 1}, now=lambda: 2000.0)
    first = the_file(spool_dir)
    result = run_spool_file(first, now=lambda: 2000.0)
    assert result.outcome is Outcome.RETRYING
    first.path.unlink()  # what uWSGI does on SPOOL_OK
    second = the_file(spool_dir)
    assert second.path.name.endswith("_2")
    # retry_backoff=0.5 * 2**0; uWSGI's `at` is a whole second before the due second
    assert float(second.args[DUE_ARG]) == pytest.approx(2000.5)
    assert second.at == spool_at(2000.5)
    assert json.loads(second.body)["attempt"] == 2
    assert run_spool_file(second, sleep=lambda s: None).outcome is Outcome.SUCCEEDED
    assert [r["attempt"] for r in runs.all()] == [1, 2]


def test_last_attempt_goes_to_failed_with_traceback(
    spool_dirs: tuple[Path, Path], runs: Runs
) -> None:
    spool, failed = spool_dirs
    job = tasks.always_fails.schedule(["boom"])
    result = run_spool_file(the_file(spool))
    assert result.outcome is Outcome.FAILED
    assert files.list_files(spool) == []
    reason = reason_of(failed)
    assert reason.startswith(
        "Task 'tests.testapp.tasks.always_fails' failed on attempt 1 of 1.\nTraceback"
    )
    assert "ValueError: always_fails boom" in reason
    assert job.status == "failed"


def test_unknown_task_is_quarantined_and_never_imported(
    spool_dirs: tuple[Path, Path], runs: Runs
) -> None:
    spool, failed = spool_dirs
    planted = Payload(task="os.system", job_id="planted", run_after=0.0, args=["touch /tmp/x"])
    write_payload(spool, planted)
    result = run_spool_file(the_file(spool))
    assert result.outcome is Outcome.QUARANTINED
    assert reason_of(failed) == (
        "Unknown task 'os.system': no function is registered under that name with "
        "@spoolcron.task (is its module imported, e.g. from an app's tasks.py?)."
    )
    assert files.list_files(spool) == []


def test_undecodable_body_is_quarantined(spool_dirs: tuple[Path, Path]) -> None:
    spool, failed = spool_dirs
    path = files.write(
        spool, "uwsgi_spoolfile_on_spoolcron_bad_1", {codec.MARKER: b"1"}, b"{not json"
    )
    assert run_spool_file(files.read(path)).outcome is Outcome.QUARANTINED
    assert reason_of(failed).startswith(f"Spool file {str(path)!r} has a body that is not JSON: ")


def test_not_ours_is_left_alone(spool_dir: Path) -> None:
    path = files.write(spool_dir, "uwsgi_spoolfile_on_other", {b"a": b"b"}, b"")
    assert run_spool_file(files.read(path)).outcome is Outcome.NOT_OURS
    assert path.exists()


def test_a_manual_run_of_an_entry_is_in_its_history(spool_dir: Path, runs: Runs) -> None:
    from spoolcron.models import Run

    tasks.record.schedule(["by-hand"], meta={"entry_manual_run": "nightly"})
    assert run_spool_file(the_file(spool_dir)).outcome is Outcome.SUCCEEDED
    assert list(Run.objects.values_list("entry", "outcome")) == [("nightly", "succeeded")]


def test_the_end_of_a_run_the_database_missed_is_written_before_the_next_run(
    spool_dir: Path, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that ended while the database was away is recorded as it ended, not later taken
    for one its process abandoned (which would read "failed")."""
    from django.db import DatabaseError

    from spoolcron.models import Run
    from spoolcron.storage import history, recorder

    # The start recorded before the task (as for a task that runs a while): the case the
    # buffer is for. A quick task's start and end are written together, in one transaction.
    monkeypatch.setattr(recorder, "START_DELAY", None)
    real_record_end = history._record_end

    def database_away(*args: object) -> None:
        raise DatabaseError("connection refused")

    monkeypatch.setattr(history, "_record_end", database_away)
    tasks.record.schedule(["during-the-outage"])
    first = the_file(spool_dir)
    assert run_spool_file(first).outcome is Outcome.SUCCEEDED
    first.path.unlink()  # as the spooler does after SPOOL_OK
    assert list(Run.objects.values_list("outcome", flat=True)) == ["running"]

    monkeypatch.setattr(history, "_record_end", real_record_end)
    tasks.record.schedule(["after-it"])
    assert run_spool_file(the_file(spool_dir)).outcome is Outcome.SUCCEEDED
    assert sorted(Run.objects.values_list("outcome", flat=True)) == ["succeeded", "succeeded"]
    assert history._unrecorded == {}


def test_a_retry_that_cannot_be_written_fails_the_job(spool_dirs: tuple[Path, Path]) -> None:
    """The attempt is the last one after all: its run and its result are closed as failed
    (not left "running" forever) and its file is quarantined with the reason."""
    from spoolcron.models import JobResult, Run

    spool, failed = spool_dirs
    job = fails_once_more.schedule(["no-room"])
    first = the_file(spool)
    retry = Payload.from_body(first.body, name=str(first.path)).next_attempt(0.0)
    # A real failure of the retry's write alone: its name is taken by a directory, so the
    # rename into place fails (EISDIR), as a full disk fails the write before it.
    (spool / retry.file_name / "occupied").mkdir(parents=True)
    unwritten = (
        f"Its retry could not be written: Cannot write the spool file for job {job.id!r} in "
        f"{str(spool)!r}: Is a directory."
    )

    result = run_spool_file(first)

    assert result.outcome is Outcome.FAILED
    assert not first.path.exists()
    assert [p.name for p in files.list_quarantined(failed)] == [first.path.name]
    reason = reason_of(failed)
    assert reason.splitlines()[0] == (
        f"Task 'tests.test_dispatch.fails_once_more' failed on attempt 1 of 2. {unwritten}"
    )
    assert reason.splitlines()[1] == "Traceback (most recent call last):"
    assert reason.endswith("RuntimeError: fails_once_more no-room")
    assert result.reason.rstrip("\n") == reason
    [run] = Run.objects.filter(job_id=job.id)
    assert (run.outcome, run.attempt) == ("failed", 1)
    assert run.finished is not None
    assert run.error.startswith(f"{unwritten}\nTraceback (most recent call last):\n")
    row = JobResult.objects.get(id=job.id)
    assert row.status == "FAILED"
    assert row.finished_at is not None
    [error] = row.errors
    assert error["exception_class_path"] == "builtins.RuntimeError"
    assert error["traceback"].startswith(f"{unwritten}\nTraceback")
    assert job.status == "failed"


def test_every_failed_attempt_is_logged_with_its_exception(
    spool_dir: Path, runs: Runs, caplog: pytest.LogCaptureFixture
) -> None:
    """Log-based alerting (Sentry's logging integration, ...) sees each failure: WARNING with
    the traceback while a retry follows, ERROR with it on the last attempt."""
    job = fails_once_more.schedule(["loud"])
    with caplog.at_level(logging.WARNING, logger="spoolcron.dispatch"):
        first_file = the_file(spool_dir)
        assert run_spool_file(first_file).outcome is Outcome.RETRYING
        first_file.path.unlink()  # what uWSGI does on SPOOL_OK
        retry = the_file(spool_dir)
        [first] = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert first.getMessage() == (
            f"job failed, will retry job={job.id} task=tests.test_dispatch.fails_once_more "
            "attempt=1 retry_in_s=2.0 error=RuntimeError: fails_once_more loud"
        )
        assert first.exc_info is not None
        assert first.exc_info[0] is RuntimeError
        caplog.clear()
        later = time.time() + 60
        assert run_spool_file(retry, now=lambda: later).outcome is Outcome.FAILED
    [last] = [r for r in caplog.records if r.getMessage().startswith("job failed ")]
    assert last.levelno == logging.ERROR
    assert last.getMessage() == (
        f"job failed job={job.id} task=tests.test_dispatch.fails_once_more attempt=2 of 2 "
        "error=RuntimeError: fails_once_more loud"
    )
    assert last.exc_info is not None
    assert last.exc_info[0] is RuntimeError
