"""The results store (spoolcron.results) for spoolcron's own jobs: transitions, retries,
return values, Job.status, a database that fails, and pruning."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError

import spoolcron
from spoolcron.core.payload import Payload
from spoolcron.models import JobResult
from spoolcron.runtime.dispatch import Outcome
from spoolcron.spool import codec, files
from spoolcron.spool.payloads import write_payload
from spoolcron.storage.ledger import DatabaseLedger
from tests.conftest import Runs
from tests.helpers import run_due, run_spool_file
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def the_file(spool_dir: Path) -> codec.SpoolFile:
    [path] = files.list_files(spool_dir)
    return files.read(path)


def test_schedule_writes_no_row_and_the_spooler_writes_it(spool_dir: Path, runs: Runs) -> None:
    job = spoolcron.schedule(tasks.record, ["hello"], {"colour": "red"}, meta={"m": 1})
    assert not JobResult.objects.exists()  # enqueueing stays database-free
    assert job.status == "pending"
    [ran] = run_due()
    assert ran.outcome is Outcome.SUCCEEDED
    row = JobResult.objects.get(pk=job.id)
    assert (row.task, row.entry, row.status, row.attempts) == (
        "tests.testapp.tasks.record",
        "",
        "SUCCESSFUL",
        1,
    )
    assert (row.args, row.kwargs, row.return_value, row.errors) == (
        ["hello"],
        {"colour": "red"},
        "hello",
        [],
    )
    assert row.run_after == job.run_after
    assert row.enqueued_at is not None
    assert row.started_at is not None
    assert row.finished_at is not None
    assert row.finished_at >= row.started_at
    assert (row.backend, row.queue_name) == ("", "")
    assert job.status == "succeeded"


def test_a_retry_is_ready_again_with_the_error(spool_dir: Path, runs: Runs) -> None:
    job = spoolcron.schedule(tasks.flaky, ["f"], {"fail_times": 1}, now=lambda: 2000.0)
    assert run_spool_file(the_file(spool_dir), now=lambda: 2000.0).outcome is Outcome.RETRYING
    row = JobResult.objects.get(pk=job.id)
    assert (row.status, row.attempts, row.finished_at) == ("READY", 1, None)
    assert row.run_after == datetime.fromtimestamp(2000.5, UTC)  # when the retry is due
    [error] = row.errors
    assert error["exception_class_path"] == "builtins.RuntimeError"
    assert error["traceback"].endswith("RuntimeError: flaky f failing on purpose, attempt 1\n")
    assert job.status == "pending"  # the retry's file waits
    files.list_files(spool_dir)[0].unlink()  # the first attempt's file, as uWSGI would
    assert run_spool_file(the_file(spool_dir), sleep=lambda s: None).outcome is Outcome.SUCCEEDED
    row.refresh_from_db()
    assert (row.status, row.attempts, len(row.errors)) == ("SUCCESSFUL", 2, 1)
    assert len(row.worker_ids) == 2


def test_the_last_failure_is_failed_with_every_error(spool_dir: Path, runs: Runs) -> None:
    job = tasks.flaky.schedule(["doomed"], {"fail_times": 9})
    outcomes = []
    start = datetime.now(UTC).timestamp()
    for hours in (1, 2, 3):  # each retry is due after the (pretended) time of the last one
        [ran] = run_due(until=start + hours * 3600)
        outcomes.append(ran.outcome)
    assert outcomes == [Outcome.RETRYING, Outcome.RETRYING, Outcome.FAILED]
    row = JobResult.objects.get(pk=job.id)
    assert (row.status, row.attempts, len(row.errors)) == ("FAILED", 3, 3)
    assert row.finished_at is not None
    assert job.status == "failed"


def test_a_return_value_json_cannot_carry_is_not_stored(
    spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job = tasks.returns_object.delay()
    with caplog.at_level(logging.WARNING, logger="spoolcron.results"):
        [ran] = run_due()
    assert ran.outcome is Outcome.SUCCEEDED  # a spoolcron task's value is a bonus
    row = JobResult.objects.get(pk=job.id)
    assert (row.status, row.return_value) == ("SUCCESSFUL", None)
    [record] = caplog.records
    assert record.getMessage().startswith(
        f"return value not stored job={job.id}: <object object at 0x"
    )
    assert record.getMessage().endswith("> cannot be stored as JSON")


def test_a_periodic_fire_gets_its_entry(spool_dir: Path, runs: Runs) -> None:
    fire = Payload(
        task="tests.testapp.tasks.record",
        job_id="every-fire-1",
        run_after=1000.0,
        args=["fired"],
        meta={"overlap": "allow"},
        entry="every",
    )
    write_payload(spool_dir, fire)
    assert run_spool_file(the_file(spool_dir)).outcome is Outcome.SUCCEEDED
    row = JobResult.objects.get(pk="every-fire-1")
    assert (row.entry, row.status, row.run_after) == (
        "every",
        "SUCCESSFUL",
        datetime.fromtimestamp(1000.0, UTC),
    )


def test_a_database_that_fails_does_not_stop_the_job(
    spool_dir: Path, runs: Runs, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("the database is down")

    job = tasks.record.delay("anyway")
    monkeypatch.setattr(JobResult, "save", broken)
    with caplog.at_level(logging.ERROR, logger="spoolcron"):
        [ran] = run_due()
    assert ran.outcome is Outcome.SUCCEEDED
    assert runs.labels() == ["anyway"]
    # A quick task's start and end are one transaction, written after it returned.
    assert [r.getMessage() for r in caplog.records] == [f"could not record the run of job={job.id}"]


def test_cancel_forgets_the_result(spool_dir: Path) -> None:
    from spoolcron.storage import results

    job = tasks.record.schedule(["x"], run_after=60)
    results.record_enqueued(
        Payload(task=job.task, job_id=job.id, run_after=0),
        backend="",
        queue_name="",
        run_after=None,
    )
    assert job.status == "pending"
    assert job.cancel() is True
    assert not JobResult.objects.filter(pk=job.id).exists()
    assert job.status == "missing"


def test_job_status_of_a_job_that_ran_on_another_host(spool_dir: Path) -> None:
    now = datetime.now(UTC)
    for job_id, status in [("r", "READY"), ("u", "RUNNING"), ("f", "FAILED"), ("s", "SUCCESSFUL")]:
        JobResult.objects.create(id=job_id, task="t", status=status, enqueued_at=now)
    statuses = {
        job_id: spoolcron.Job(id=job_id, task="t", run_after=now).status for job_id in "rufs"
    }
    assert statuses == {"r": "pending", "u": "running", "f": "failed", "s": "succeeded"}


def test_prune_keeps_recent_and_pending_results() -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    old, recent, future = now - timedelta(days=8), now - timedelta(days=1), now + timedelta(days=30)
    rows = {
        "old-done": {"status": "SUCCESSFUL", "finished_at": old, "run_after": old},
        "recent-done": {"status": "FAILED", "finished_at": recent, "run_after": old},
        "pending-later": {"status": "READY", "enqueued_at": old, "run_after": future},
        "asap-old": {"status": "READY", "enqueued_at": old},
        "asap-recent": {"status": "READY", "enqueued_at": recent},
        "stuck-running": {"status": "RUNNING", "run_after": old, "last_attempted_at": old},
        "retrying": {"status": "READY", "run_after": old, "last_attempted_at": recent},
    }
    for job_id, fields in rows.items():
        JobResult.objects.create(id=job_id, task="t", **fields)
    deleted = DatabaseLedger().prune(keep=timedelta(days=7), now=now)
    assert deleted == 3
    assert set(JobResult.objects.values_list("id", flat=True)) == {
        "recent-done",
        "pending-later",
        "asap-recent",
        "retrying",
    }
