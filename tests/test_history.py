"""spoolcron.storage.history: the run history on the test database, called directly.

tests/test_dispatch.py takes the same rows through the dispatcher; this module pins what each
function writes, how the overlap check tells a live run from an abandoned one, and the buffer
of run ends written while the database was away.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import DatabaseError

from spoolcron.core.payload import META_MANUAL_RUN, Payload
from spoolcron.models import Run
from spoolcron.storage import history

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
INTERRUPTED = "The process running it ended before it finished."


@pytest.fixture(autouse=True)
def _no_unrecorded_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    # The buffer is per process: a test must neither see nor leave another test's ends.
    monkeypatch.setattr(history, "_unrecorded", {})


def fire(job_id: str = "j1", entry: str | None = "nightly", **fields: Any) -> Payload:
    return Payload(
        task="tests.testapp.tasks.record",
        job_id=job_id,
        run_after=T0.timestamp(),
        entry=entry,
        **fields,
    )


def running(job_id: str, *, entry: str = "nightly", **fields: Any) -> Run:
    values: dict[str, Any] = {
        "host": socket.gethostname(),
        "pid": os.getppid(),  # alive, and not this process
        "started": datetime.now(UTC),
        **fields,
    }
    return Run.objects.create(
        job_id=job_id, entry=entry, task="t", due=T0, outcome=Run.Outcome.RUNNING, **values
    )


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def rows() -> list[tuple[str, str, str]]:
    return list(Run.objects.order_by("pk").values_list("job_id", "outcome", "error"))


def database_away(*args: object, **kwargs: object) -> None:
    raise DatabaseError("connection refused")


# --- start, finish, skip ------------------------------------------------------------------


def test_start_then_finish_a_run() -> None:
    before = datetime.now(UTC)
    run_id = history.start_run(fire(attempt=2))
    assert run_id is not None
    run = Run.objects.get(pk=run_id)
    assert (run.job_id, run.entry, run.task, run.attempt) == (
        "j1",
        "nightly",
        "tests.testapp.tasks.record",
        2,
    )
    assert (run.due, run.outcome, run.finished) == (T0, Run.Outcome.RUNNING, None)
    assert (run.host, run.pid) == (socket.gethostname(), os.getpid())
    assert before <= run.started <= datetime.now(UTC)

    history.finish_run(run_id, Run.Outcome.FAILED, "Traceback ...")
    run.refresh_from_db()
    assert (run.outcome, run.error) == (Run.Outcome.FAILED, "Traceback ...")
    assert run.finished is not None
    assert run.started <= run.finished


def test_a_manual_run_is_in_the_history_of_its_entry() -> None:
    run_id = history.start_run(fire(entry=None, meta={META_MANUAL_RUN: "nightly"}))
    assert Run.objects.get(pk=run_id).entry == "nightly"
    one_off = history.start_run(fire("j2", entry=None))
    assert Run.objects.get(pk=one_off).entry == ""


def test_finishing_no_run_does_nothing() -> None:
    history.finish_run(None, Run.Outcome.SUCCEEDED)
    assert rows() == []


def test_a_new_start_closes_what_a_killed_process_left_running_of_the_same_job() -> None:
    running("j1")
    running("other")
    history.start_run(fire("j1", attempt=1))
    assert rows() == [
        ("j1", "failed", "The process running it ended before it finished; it ran again."),
        ("other", "running", ""),
        ("j1", "running", ""),
    ]


def test_mark_interrupted_closes_only_the_running_runs_of_the_job() -> None:
    running("j1")
    Run.objects.create(
        job_id="j1", task="t", due=T0, started=T0, finished=T0, outcome=Run.Outcome.RETRYING
    )
    running("j2")
    history.mark_interrupted("j1", "Killed too often.")
    assert rows() == [
        ("j1", "failed", "Killed too often."),
        ("j1", "retrying", ""),
        ("j2", "running", ""),
    ]
    assert Run.objects.get(job_id="j1", outcome="failed").finished is not None


def test_record_skipped() -> None:
    history.record_skipped(fire("j2"), "The previous run (job j1) is still running.")
    run = Run.objects.get()
    assert (run.job_id, run.entry, run.outcome) == ("j2", "nightly", Run.Outcome.SKIPPED)
    assert run.error == "The previous run (job j1) is still running."
    assert run.started == run.finished


def test_a_database_that_fails_is_logged_and_the_job_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(Run.objects, "create", database_away)
    monkeypatch.setattr(history, "_record_end", database_away)
    monkeypatch.setattr(Run.objects, "filter", database_away)
    monkeypatch.setattr(Run.objects, "raw", database_away)
    caplog.set_level(logging.ERROR, logger="spoolcron.history")
    assert history.start_run(fire()) is None
    history.record_skipped(fire(), "busy")
    history.mark_interrupted("j1", "gone")
    assert history.previous_still_running(fire("j2")) is None
    assert [r.getMessage() for r in caplog.records] == [
        "could not close the interrupted runs of job=j1",
        "could not record the start of job=j1",
        "could not record the skip of job=j1",
        "could not close the interrupted runs of job=j1",
        "could not check for overlapping runs of entry=nightly",
    ]


# --- previous_still_running ---------------------------------------------------------------


def test_a_live_run_of_the_entry_is_still_running() -> None:
    previous = running("j1")
    assert history.previous_still_running(fire("j2")) == previous
    assert rows() == [("j1", "running", "")]


def test_only_runs_of_the_same_entry_and_other_jobs_count() -> None:
    running("j1", entry="other")
    running("j2")  # the job itself, started by this check's caller
    assert history.previous_still_running(fire("j2")) is None
    assert history.previous_still_running(fire("j3", entry=None)) is None


@pytest.mark.parametrize(
    "fields",
    [{"pid": None}, {"pid": os.getpid()}, {"pid": "dead"}],
    ids=["no_pid", "this_process", "dead_pid"],
)
def test_a_run_whose_process_is_gone_is_closed_as_failed(fields: dict[str, Any]) -> None:
    if fields["pid"] == "dead":
        fields = {"pid": dead_pid()}
    running("j1", **fields)
    assert history.previous_still_running(fire("j2")) is None
    assert rows() == [("j1", "failed", INTERRUPTED)]
    assert Run.objects.get().finished is not None


def test_a_run_on_another_host_counts_until_it_is_stale() -> None:
    now = datetime.now(UTC)
    recent = running("j1", host="elsewhere", pid=1, started=now - timedelta(hours=5))
    assert history.previous_still_running(fire("j3")) == recent
    running("j2", host="elsewhere", pid=1, started=now - timedelta(hours=6, minutes=1))
    Run.objects.filter(pk=recent.pk).delete()
    assert timedelta(hours=6) == history.FOREIGN_RUN_STALE_AFTER
    assert history.previous_still_running(fire("j3")) is None
    assert rows() == [("j2", "failed", INTERRUPTED)]


# --- the ends of runs the database missed -------------------------------------------------


def test_an_end_the_database_missed_is_kept_and_written_before_the_overlap_check(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = history.start_run(fire("j1"))
    real_record_end = history._record_end
    monkeypatch.setattr(history, "_record_end", database_away)
    history.finish_run(run_id, Run.Outcome.SUCCEEDED)
    assert f"could not record the end of run={run_id}; it is written later" in caplog.text
    assert rows() == [("j1", "running", "")]
    [(outcome, finished, error)] = history._unrecorded.values()
    assert (outcome, error) == (Run.Outcome.SUCCEEDED, "")

    # Still away: the check gives up (logged) and marks nothing.
    assert history.previous_still_running(fire("j2")) is None
    assert list(history._unrecorded) == [run_id]
    assert rows() == [("j1", "running", "")]

    monkeypatch.setattr(history, "_record_end", real_record_end)
    assert history.previous_still_running(fire("j2")) is None
    assert history._unrecorded == {}
    run = Run.objects.get(pk=run_id)
    assert (run.outcome, run.finished) == (Run.Outcome.SUCCEEDED, finished)


def test_the_next_start_writes_the_missed_ends_first(monkeypatch: pytest.MonkeyPatch) -> None:
    first = history.start_run(fire("j1", entry=None))
    real_record_end = history._record_end
    monkeypatch.setattr(history, "_record_end", database_away)
    history.finish_run(first, Run.Outcome.FAILED, "boom")
    monkeypatch.setattr(history, "_record_end", real_record_end)
    history.start_run(fire("j2", entry=None))
    assert rows() == [("j1", "failed", "boom"), ("j2", "running", "")]
    assert history._unrecorded == {}


def test_the_buffer_of_missed_ends_keeps_the_newest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "MAX_UNRECORDED", 2)
    monkeypatch.setattr(history, "_record_end", database_away)
    for run_id in (11, 12, 13):
        history.finish_run(run_id, Run.Outcome.SUCCEEDED)
    assert list(history._unrecorded) == [12, 13]
