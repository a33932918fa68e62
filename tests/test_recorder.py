"""The DatabaseRecorder through the dispatcher: no commit before the task's first line; a fast
task's start and end written in one transaction after it; a slow task's "running" rows written
while it runs, in time for the overlap check of the entry's next fire."""

from __future__ import annotations

import logging
import os
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, OperationalError, connection
from django.utils import timezone

import spoolcron
from spoolcron.core.payload import META_OVERLAP, Payload
from spoolcron.models import JobResult, Run
from spoolcron.runtime import dispatch
from spoolcron.runtime.dispatch import Outcome
from spoolcron.spool import files
from spoolcron.spool.payloads import read_payload, write_payload
from spoolcron.storage import history, recorder
from spoolcron.storage.recorder import DatabaseRecorder

# transaction=True: the recorder commits, and its background thread has a connection of its own.
pytestmark = pytest.mark.django_db(transaction=True)

WRITES = ("INSERT", "UPDATE", "DELETE")


class Statements:
    """The write statements of the test's (main thread's) connection, and its commits."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, bool]] = []  # (first word, inside an atomic block)
        self.reads: list[str] = []  # the SELECT statements
        self.commits = 0

    def __call__(self, execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        word = sql.lstrip().split(None, 1)[0].upper()
        if word == "SELECT":
            self.reads.append(sql)
        if word in WRITES:
            self.writes.append((word, connection.in_atomic_block))
        return execute(sql, *args)


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[Statements]:
    seen = Statements()
    connection.ensure_connection()
    real_commit = connection.commit

    def commit() -> None:
        seen.commits += 1
        real_commit()

    monkeypatch.setattr(connection, "commit", commit)
    with connection.execute_wrapper(seen):
        yield seen


# What the tasks below saw at their first line, and what they wait for.
first_lines: list[dict[str, Any]] = []
release = threading.Event()


@spoolcron.task
def quick(label: str) -> str:
    first_lines.append({"label": label, "writes": list(_statements_now())})
    return label


@spoolcron.task
def lingers(label: str) -> None:
    """Runs until it has seen its own RUNNING rows (or 10 s), then until released."""
    job_id = label
    deadline = time.monotonic() + 10
    seen: dict[str, Any] = {"label": label, "run": None, "result": None}
    while time.monotonic() < deadline:
        run = _read(lambda: Run.objects.filter(job_id=job_id).values_list("outcome").first())
        result = _read(lambda: JobResult.objects.filter(pk=job_id).values_list("status").first())
        if run is not None and result is not None:
            (run,), (result,) = run, result
            seen.update(run=run, result=result)
            break
        time.sleep(0.005)
    first_lines.append(seen)
    release.wait(10)


def _read(query: Callable[[], Any]) -> Any:
    # The test database is SQLite in memory, one cache shared by the threads: a table another
    # thread is writing reads as locked for a moment (a file database would wait).
    try:
        return query()
    except OperationalError:
        return None


_current: list[Statements] = []


def _statements_now() -> list[tuple[str, bool]]:
    return list(_current[0].writes) if _current else []


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    first_lines.clear()
    release.clear()
    monkeypatch.setattr(history, "_unrecorded", {})
    yield
    release.set()


def spool_job(spool_dir: Path, task: str, *, job_id: str | None = None, **fields: Any) -> Path:
    job_id = job_id or uuid.uuid4().hex
    payload = Payload(
        task=task,
        job_id=job_id,
        run_after=time.time(),
        args=[job_id],
        enqueued_at=time.time(),
        **fields,
    )
    return write_payload(spool_dir, payload)


def dispatch_file(path: Path, rec: DatabaseRecorder | None = None) -> dispatch.Result:
    result = dispatch.run_spool_file(files.read(path), rec or DatabaseRecorder())
    if result.outcome.removes_file:
        path.unlink()
    return result


def test_a_quick_task_commits_nothing_before_it_and_one_transaction_after(
    spool_dir: Path, statements: Statements
) -> None:
    _current[:] = [statements]
    try:
        path = spool_job(spool_dir, f"{__name__}.quick")
        assert dispatch_file(path).outcome is Outcome.SUCCEEDED
    finally:
        _current.clear()
    [seen] = first_lines
    assert seen["writes"] == []  # no INSERT/UPDATE between the due instant and the first line
    # Start and end together: every write inside one atomic block, committed once.
    assert statements.writes
    assert all(atomic for _, atomic in statements.writes)
    assert statements.commits == 1
    job_id = seen["label"]
    [run] = Run.objects.filter(job_id=job_id)
    assert run.outcome == Run.Outcome.SUCCEEDED
    assert run.started <= run.finished
    assert run.pid == os.getpid()
    row = JobResult.objects.get(pk=job_id)
    assert row.status == JobResult.Status.SUCCESSFUL
    assert row.attempts == 1
    assert row.return_value == job_id
    assert row.started_at == run.started


def _left_running(job_id: str) -> Run:
    """The run a process that died mid-task left "running"."""
    return Run.objects.create(
        job_id=job_id,
        task=f"{__name__}.quick",
        attempt=1,
        due=timezone.now(),
        started=timezone.now(),
        outcome=Run.Outcome.RUNNING,
        host="gone",
        pid=None,
    )


def test_a_first_start_writes_two_inserts_and_a_restart_closes_what_the_dead_one_left(
    spool_dir: Path, statements: Statements
) -> None:
    # The first start of a spool file (uWSGI's spooler counted none before it): the end of a
    # quick task is its JobResult row and its Run row, two INSERTs, nothing else.
    first = spool_job(spool_dir, f"{__name__}.quick")
    assert dispatch_file(first, DatabaseRecorder(restarted=False)).outcome is Outcome.SUCCEEDED
    assert [word for word, _ in statements.writes] == ["INSERT", "INSERT"]
    assert statements.reads == []  # nothing read first: there is no row of it yet

    # A file its spooler counted an earlier start of: the run the dead process left is closed.
    job_id = uuid.uuid4().hex
    left = _left_running(job_id)
    again = spool_job(spool_dir, f"{__name__}.quick", job_id=job_id)
    assert dispatch_file(again, DatabaseRecorder(restarted=True)).outcome is Outcome.SUCCEEDED
    left.refresh_from_db()
    assert (left.outcome, left.error) == (Run.Outcome.FAILED, history.RAN_AGAIN)
    assert Run.objects.get(job_id=job_id, outcome=Run.Outcome.SUCCEEDED)


def test_a_start_another_host_recorded_is_closed_though_this_spooler_counted_none(
    spool_dir: Path,
) -> None:
    # Host A's spooler wrote the start (its Run row and its RUNNING result, one transaction)
    # and died; the database store gave the job to host B, whose spooler never started it.
    job_id = uuid.uuid4().hex
    left = _left_running(job_id)
    path = spool_job(spool_dir, f"{__name__}.quick", job_id=job_id)
    payload = read_payload(files.read(path))
    JobResult.objects.create(
        id=job_id,
        task=payload.task,
        status=JobResult.Status.RUNNING,
        attempts=1,
        args=payload.args,
        kwargs={},
        backend="",
        queue_name="",
    )
    assert dispatch_file(path, DatabaseRecorder(restarted=False)).outcome is Outcome.SUCCEEDED
    left.refresh_from_db()
    assert (left.outcome, left.error) == (Run.Outcome.FAILED, history.RAN_AGAIN)
    row = JobResult.objects.get(pk=job_id)
    assert (row.status, row.attempts) == (JobResult.Status.SUCCESSFUL, 2)


def test_a_slow_task_gets_its_running_rows_while_it_runs(spool_dir: Path) -> None:
    job_id = uuid.uuid4().hex
    path = spool_job(spool_dir, f"{__name__}.lingers", job_id=job_id)
    release.set()  # return as soon as the rows are seen
    assert dispatch_file(path).outcome is Outcome.SUCCEEDED
    assert first_lines == [{"label": job_id, "run": "running", "result": "RUNNING"}]
    [run] = Run.objects.filter(job_id=job_id)
    assert run.outcome == Run.Outcome.SUCCEEDED
    assert run.finished is not None
    row = JobResult.objects.get(pk=job_id)
    assert (row.status, row.attempts) == (JobResult.Status.SUCCESSFUL, 1)
    assert row.started_at == run.started
    assert row.finished_at is not None


def test_the_overlap_check_sees_a_previous_run_still_going(
    spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fire 1 runs in another thread (as in another spooler); fire 2, a second later in real
    life, finds its "running" row, written by the recorder's thread after START_DELAY."""
    main = threading.main_thread()
    real_pid = os.getpid()
    # The history takes a run of this very process for a dead one's: the main thread plays
    # the second spooler process.
    monkeypatch.setattr(
        history,
        "os",
        types.SimpleNamespace(
            getpid=lambda: real_pid + 1 if threading.current_thread() is main else real_pid,
            kill=os.kill,
        ),
    )
    meta = {META_OVERLAP: "skip"}
    first = spool_job(spool_dir, f"{__name__}.lingers", entry="every-second", meta=meta)
    outcomes: list[Outcome] = []

    def spooler_one() -> None:
        try:
            outcomes.append(dispatch_file(first).outcome)
        finally:
            connection.close()

    runner = threading.Thread(target=spooler_one)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while not _read(Run.objects.filter(entry="every-second").exists):
            assert time.monotonic() < deadline, "fire 1 never got its running row"
            time.sleep(0.01)
        second = spool_job(spool_dir, f"{__name__}.quick", entry="every-second", meta=meta)
        result = dispatch_file(second)
        assert result.outcome is Outcome.SKIPPED
        assert "is still running" in result.reason
    finally:
        release.set()
        runner.join(15)
    assert outcomes == [Outcome.SUCCEEDED]
    assert sorted(Run.objects.values_list("outcome", flat=True)) == ["skipped", "succeeded"]


def test_a_database_away_at_the_end_does_not_stop_the_job(
    spool_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def away(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("the database is down")

    monkeypatch.setattr(history, "record_ended_run", away)
    path = spool_job(spool_dir, f"{__name__}.quick")
    with caplog.at_level(logging.ERROR, logger="spoolcron.recorder"):
        assert dispatch_file(path).outcome is Outcome.SUCCEEDED
    [job_id] = [seen["label"] for seen in first_lines]
    assert [r.getMessage() for r in caplog.records] == [f"could not record the run of job={job_id}"]
    # One transaction: the result row was not written either.
    assert not Run.objects.exists()
    assert not JobResult.objects.filter(pk=job_id).exists()


@pytest.mark.parametrize("how", ["argument", "module"])
def test_start_delay_none_records_the_start_before_the_task(
    spool_dir: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    path = spool_job(spool_dir, f"{__name__}.lingers", job_id="sync-job")
    release.set()
    if how == "module":  # for recorders made elsewhere (tests.helpers)
        monkeypatch.setattr(recorder, "START_DELAY", None)
        rec = DatabaseRecorder()
    else:
        rec = DatabaseRecorder(start_delay=None)
    assert rec._writer is None
    assert dispatch_file(path, rec).outcome is Outcome.SUCCEEDED
    assert first_lines == [{"label": "sync-job", "run": "running", "result": "RUNNING"}]
    assert JobResult.objects.get(pk="sync-job").status == JobResult.Status.SUCCESSFUL


def test_the_writer_thread_is_one_per_process() -> None:
    first = DatabaseRecorder()
    second = DatabaseRecorder()
    assert first._writer is second._writer is recorder._start_writer()
