"""SpoolerBackend in a plain process: Django's Tasks framework API, run by ``run_due``.

The same tests run on Django 6.1 (django.tasks) and on Django 5.2 with the django-tasks
backport; spoolcron._tasks_compat is the one place that tells them apart.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

import spoolcron
from spoolcron._tasks_compat import (
    FRAMEWORK,
    InvalidTask,
    InvalidTaskBackend,
    Task,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_backends,
    task_enqueued,
    task_finished,
    task_started,
)
from spoolcron.backends import SpoolerBackend
from spoolcron.checks import ServerOptions
from spoolcron.core.entries import Entry, resolve_entry
from spoolcron.core.payload import Payload
from spoolcron.core.registry import resolve_task
from spoolcron.exceptions import InvalidArguments
from spoolcron.jobs import pending_store
from spoolcron.models import JobResult
from spoolcron.runtime.dispatch import Outcome
from spoolcron.spool import codec, files
from spoolcron.spool.payloads import write_payload
from tests.conftest import Runs
from tests.helpers import run_due, run_spool_file
from tests.testapp import framework_tasks

pytestmark = pytest.mark.django_db(transaction=True)

ADD = "tests.testapp.framework_tasks.add"


def no_context(label: str) -> None:
    """A module-level function that claims to take context but does not."""


def plain(label: str) -> str:
    return label


def the_file(spool_dir: Path) -> codec.SpoolFile:
    [path] = files.list_files(spool_dir)
    return files.read(path)


@pytest.fixture
def signals() -> Iterator[list[tuple[str, type[Any], str, str]]]:
    """(signal, sender, result id, status) of every framework signal sent during the test."""
    seen: list[tuple[str, type[Any], str, str]] = []

    def receiver(name: str) -> Any:
        def receive(sender: type[Any], task_result: Any, **kwargs: Any) -> None:
            seen.append((name, sender, task_result.id, str(task_result.status)))

        return receive

    handlers = {
        signal: receiver(name)
        for signal, name in [
            (task_enqueued, "enqueued"),
            (task_started, "started"),
            (task_finished, "finished"),
        ]
    }
    for signal, handler in handlers.items():
        signal.connect(handler)
    try:
        yield seen
    finally:
        for signal, handler in handlers.items():
            signal.disconnect(handler)


def test_the_framework_in_use_matches_the_django_version() -> None:
    import django

    assert ("django.tasks" if django.VERSION >= (6,) else "django_tasks") == FRAMEWORK
    assert type(task_backends["default"]) is SpoolerBackend
    backend = task_backends["default"]
    assert (backend.supports_defer, backend.supports_get_result) == (True, True)
    assert (backend.supports_async_task, backend.supports_priority) == (True, False)


def test_enqueue_then_run_then_get_result(spool_dir: Path, runs: Runs) -> None:
    before = time.time()
    result = framework_tasks.add.enqueue(2, 3)
    assert result.status == TaskResultStatus.READY
    assert (result.args, result.kwargs, result.backend) == ([2, 3], {}, "default")
    assert result.enqueued_at is not None
    assert result.enqueued_at.timestamp() >= before
    file = the_file(spool_dir)
    assert file.args[b"task"] == ADD.encode()
    assert file.args[b"job"] == result.id.encode()
    assert abs(file.at - before) < 60
    # READY in the store at once, for any process sharing the database.
    stored = task_backends["default"].get_result(result.id)
    assert stored.status == TaskResultStatus.READY
    assert stored.task.func is framework_tasks.add.func

    [ran] = run_due()
    assert ran.outcome is Outcome.SUCCEEDED
    assert runs.labels("add") == ["2+3"]
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 5
    assert result.attempts == 1
    assert result.worker_ids == [f"{socket.gethostname()}:{__import__('os').getpid()}"]
    assert result.errors == []
    assert result.started_at is not None
    assert result.finished_at is not None
    assert result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at
    assert framework_tasks.add.get_result(result.id).return_value == 5
    job = spoolcron.Job(id=result.id, task=ADD, run_after=datetime.now(UTC))
    assert job.status == "succeeded"


def test_run_after_is_the_spool_files_at(spool_dir: Path, runs: Runs) -> None:
    when = timezone.now() + timedelta(seconds=90)
    result = framework_tasks.add.using(run_after=when).enqueue(1, 1)
    assert result.task.run_after == when
    # Due later than the horizon: it waits in the pending store, due at run_after.
    [waiting] = pending_store().waiting()
    assert (waiting.job_id, waiting.run_after) == (result.id, when.timestamp())
    assert run_due() == []  # not due yet
    assert task_backends["default"].get_result(result.id).task.run_after == when
    [ran] = run_due(until=when.timestamp())
    assert ran.outcome is Outcome.SUCCEEDED
    result.refresh()
    assert result.return_value == 2


def test_a_failing_task_is_failed_with_its_traceback(
    spool_dirs: tuple[Path, Path], runs: Runs
) -> None:
    _, failed = spool_dirs
    result = framework_tasks.fail.enqueue("boom")
    [ran] = run_due()
    assert ran.outcome is Outcome.FAILED
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    [error] = result.errors
    assert error.exception_class_path == "builtins.ValueError"
    assert error.exception_class is ValueError
    assert error.traceback.startswith("Traceback (most recent call last):\n")
    assert error.traceback.endswith("ValueError: fail boom on purpose\n")
    assert result.finished_at is not None
    with pytest.raises(ValueError, match=r"^Task failed$"):
        result.return_value  # noqa: B018
    assert len(files.list_quarantined(failed)) == 1


def test_an_async_task_runs_to_completion(spool_dir: Path, runs: Runs) -> None:
    result = framework_tasks.add_async.enqueue(20, 22)
    run_due()
    result.refresh()
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 42)
    assert runs.labels("add_async") == ["20+22"]


def test_aenqueue_and_aget_result(spool_dir: Path, runs: Runs) -> None:
    result = asyncio.run(framework_tasks.add.aenqueue(4, 4))
    run_due()
    fetched = asyncio.run(framework_tasks.add.aget_result(result.id))
    assert fetched.return_value == 8
    asyncio.run(result.arefresh())
    assert result.status == TaskResultStatus.SUCCESSFUL


def test_takes_context_gets_the_task_result(spool_dir: Path, runs: Runs) -> None:
    result = framework_tasks.with_context.enqueue("ctx")
    run_due()
    result.refresh()
    assert result.return_value == {"id": result.id, "attempt": 1}


def test_a_return_value_json_cannot_carry_fails_the_task(spool_dir: Path) -> None:
    result = framework_tasks.not_json.enqueue()
    run_due()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    [error] = result.errors
    assert error.exception_class_path == "builtins.TypeError"
    last = error.traceback.rstrip("\n").splitlines()[-1]
    assert re.fullmatch(
        r"TypeError: Task 'tests\.testapp\.framework_tasks\.not_json' returned <object object "
        r"at 0x[0-9a-f]+>, which is not JSON; return only str, int, float, bool, None, lists "
        r"and dicts\.",
        last,
    ), last


def test_get_result_of_an_unknown_id() -> None:
    with pytest.raises(TaskResultDoesNotExist) as raised:
        task_backends["default"].get_result("nope")
    assert str(raised.value) == "No task result has the id 'nope'."


def test_get_result_of_a_spoolcron_job_is_not_a_framework_result(
    spool_dir: Path, runs: Runs
) -> None:
    job = spoolcron.schedule("tests.testapp.tasks.record", ["x"])
    run_due()
    with pytest.raises(TaskResultDoesNotExist) as raised:
        task_backends["default"].get_result(job.id)
    assert str(raised.value) == (
        f"Result {job.id!r} is of 'tests.testapp.tasks.record', which is not a Django task "
        "known to this process."
    )


def test_signals_are_sent_at_enqueue_start_and_finish(
    spool_dir: Path, runs: Runs, signals: list[tuple[str, type[Any], str, str]]
) -> None:
    ok = framework_tasks.add.enqueue(1, 2)
    bad = framework_tasks.fail.enqueue("x")
    assert signals == [
        ("enqueued", SpoolerBackend, ok.id, "READY"),
        ("enqueued", SpoolerBackend, bad.id, "READY"),
    ]
    signals.clear()
    run_due()
    assert sorted(signals) == sorted(
        [
            ("started", SpoolerBackend, ok.id, "RUNNING"),
            ("finished", SpoolerBackend, ok.id, "SUCCESSFUL"),
            ("started", SpoolerBackend, bad.id, "RUNNING"),
            ("finished", SpoolerBackend, bad.id, "FAILED"),
        ]
    )


def test_enqueue_on_commit(spool_dir: Path, signals: list[Any]) -> None:
    with transaction.atomic():
        result = framework_tasks.add.enqueue(1, 2)
        assert files.list_files(spool_dir) == []
        assert signals == []
        # The READY row is in the transaction already.
        assert task_backends["default"].get_result(result.id).status == TaskResultStatus.READY
    assert len(files.list_files(spool_dir)) == 1
    assert [s[0] for s in signals] == ["enqueued"]


def test_a_rolled_back_enqueue_leaves_nothing(spool_dir: Path, signals: list[Any]) -> None:
    enqueued: list[Any] = []

    def enqueue_then_fail() -> None:
        with transaction.atomic():
            enqueued.append(framework_tasks.add.enqueue(1, 2))
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        enqueue_then_fail()
    [result] = enqueued
    assert files.list_files(spool_dir) == []
    assert signals == []
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["default"].get_result(result.id)


@pytest.mark.parametrize("option", [False, None])
def test_enqueue_on_commit_off(spool_dirs: tuple[Path, Path], settings: Any, option: Any) -> None:
    spool, failed = spool_dirs
    if option is None:  # not set: SPOOLCRON["ON_COMMIT"] decides
        settings.SPOOLCRON = {
            "SPOOL_DIR": str(spool),
            "FAILED_DIR": str(failed),
            "ON_COMMIT": False,
        }
    options = {"ENQUEUE_ON_COMMIT": option}
    tasks = {"default": {"BACKEND": BACKEND, "OPTIONS": options}}
    with override_settings(TASKS=tasks), transaction.atomic():
        framework_tasks.add.enqueue(1, 2)
        assert len(files.list_files(spool)) == 1


BACKEND = "spoolcron.backends.SpoolerBackend"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: framework_tasks.add.using(priority=5),
            "Task 'tests.testapp.framework_tasks.add' has priority 5, but SpoolerBackend runs "
            "jobs in due order and does not support priorities; leave it at 0.",
        ),
        (
            lambda: framework_tasks.add.using(priority=500),
            "Task 'tests.testapp.framework_tasks.add' has priority 500; priority must be a "
            "whole number between -100 and 100.",
        ),
        (
            lambda: framework_tasks.add.using(run_after=datetime(2030, 1, 1)),
            "Task 'tests.testapp.framework_tasks.add' has run_after=datetime.datetime(2030, 1, "
            "1, 0, 0), a naive datetime while USE_TZ is on; pass an aware one, e.g. "
            "timezone.now() + timedelta(minutes=5).",
        ),
        (
            lambda: framework_tasks.add.using(queue_name="urgent"),
            "Task 'tests.testapp.framework_tasks.add' has queue_name 'urgent', which is not a "
            "queue of task backend 'default' ('default').",
        ),
        (
            lambda: Task(func=no_context, takes_context=True),
            "Task 'tests.test_backend.no_context' takes context, so its first argument must be "
            "named 'context', not 'label'.",
        ),
    ],
    ids=["priority", "priority-range", "naive-run-after", "queue", "context"],
)
def test_invalid_tasks_are_refused_in_one_sentence(make: Any, message: str) -> None:
    with pytest.raises(InvalidTask) as raised:
        make()
    assert str(raised.value) == message


def test_arguments_json_cannot_carry_are_refused(spool_dir: Path) -> None:
    with pytest.raises(TypeError) as raised:
        framework_tasks.add.enqueue(1, b=datetime(2030, 1, 1, tzinfo=UTC))
    assert str(raised.value) == (
        "Cannot enqueue task 'tests.testapp.framework_tasks.add': kwargs['b'] = "
        "datetime.datetime(2030, 1, 1, 0, 0, tzinfo=datetime.timezone.utc) is not JSON; the "
        "Tasks framework accepts only str, int, float, bool, None, lists and dicts."
    )
    assert files.list_files(spool_dir) == []
    assert not JobResult.objects.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"ENQUEUE_ON_COMIT": True},
            "Unknown option 'ENQUEUE_ON_COMIT' in TASKS['default']['OPTIONS']; SpoolerBackend "
            "knows ENQUEUE_ON_COMMIT.",
        ),
        (
            {"ENQUEUE_ON_COMMIT": "yes"},
            "TASKS['default']['OPTIONS']['ENQUEUE_ON_COMMIT'] must be True, False or None, "
            "not 'yes'.",
        ),
        (
            ["ENQUEUE_ON_COMMIT"],
            "TASKS['default']['OPTIONS'] must be a dict, not ['ENQUEUE_ON_COMMIT'].",
        ),
    ],
)
def test_bad_backend_options(options: Any, message: str) -> None:
    tasks = {"default": {"BACKEND": BACKEND, "OPTIONS": options}}
    with override_settings(TASKS=tasks), pytest.raises(InvalidTaskBackend) as raised:
        task_backends["default"]
    assert str(raised.value) == message


def test_check_is_quiet_when_all_is_well(spool_dir: Path) -> None:
    assert task_backends["default"].check() == []


def test_check_spool_dir_problems(tmp_path: Path, settings: Any) -> None:
    backend = task_backends["default"]
    settings.SPOOLCRON = {}
    [error] = backend.check()
    assert (error.id, error.msg) == (
        "spoolcron.E021",
        "Task backend 'default' cannot enqueue: SPOOLCRON['SPOOL_DIR'] is not set; set it to "
        "the directory uWSGI's --spooler uses.",
    )
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    settings.SPOOLCRON = {"SPOOL_DIR": str(not_a_dir)}
    [error] = backend.check()
    assert (error.id, error.msg) == (
        "spoolcron.E021",
        f"Task backend 'default' cannot enqueue: the spool directory {str(not_a_dir)!r} is not "
        "a directory this process can write to.",
    )


def test_check_under_uwsgi_wants_a_spooler_on_the_spool_dir(
    spool_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ServerOptions(spooler_dirs=(), spooler_frequency=30, has_spoolcron_mule=True)
    monkeypatch.setattr("spoolcron.checks.server_options", lambda: server)
    [error] = task_backends["default"].check()
    assert (error.id, error.msg) == (
        "spoolcron.E022",
        f"Task backend 'default' writes its jobs to {str(spool_dir)!r} but this uWSGI runs no "
        "spooler there (spoolers: none): its tasks would never run.",
    )
    server = ServerOptions(spooler_dirs=(spool_dir,), spooler_frequency=30, has_spoolcron_mule=True)
    assert task_backends["default"].check() == []


def test_check_needs_spoolcron_installed(spool_dir: Path) -> None:
    from django.test import modify_settings

    with modify_settings(INSTALLED_APPS={"remove": ["spoolcron"]}):
        [error] = SpoolerBackend("default", {}).check()
    assert (error.id, error.msg) == (
        "spoolcron.E020",
        "Task backend 'default' is a SpoolerBackend but 'spoolcron' is not in INSTALLED_APPS, "
        "where its results table lives.",
    )


def test_a_django_task_in_a_periodic_entry(
    spool_dir: Path, runs: Runs, signals: list[tuple[str, type[Any], str, str]]
) -> None:
    resolved = resolve_entry("tests.x", Entry("tick", framework_tasks.tick, "every 5 seconds"))
    assert not isinstance(resolved, Exception)
    assert hasattr(resolved, "task")
    assert resolved.task is resolve_task(framework_tasks.tick)
    assert resolved.task.name == "tests.testapp.framework_tasks.tick"
    # A fire as the beat writes it.
    fire = Payload(
        task=resolved.task.name,
        job_id="tick-fire-1",
        run_after=time.time(),
        args=["fired"],
        meta={"overlap": "skip"},
        enqueued_at=time.time(),
        entry="tick",
    )
    write_payload(spool_dir, fire)
    assert run_spool_file(the_file(spool_dir)).outcome is Outcome.SUCCEEDED
    assert runs.labels("tick") == ["fired"]
    row = JobResult.objects.get(pk="tick-fire-1")
    assert (row.entry, row.status, row.backend, row.return_value) == (
        "tick",
        "SUCCESSFUL",
        "default",
        "fired",
    )
    assert [s[0] for s in signals] == ["started", "finished"]
    result = framework_tasks.tick.get_result("tick-fire-1")
    assert result.return_value == "fired"


def test_an_entry_naming_a_django_task_of_another_backend(spool_dir: Path) -> None:
    tasks = {
        "default": {"BACKEND": BACKEND},
        "immediate": {"BACKEND": f"{FRAMEWORK}.backends.immediate.ImmediateBackend"},
    }
    with override_settings(TASKS=tasks):
        elsewhere = Task(func=plain, backend="immediate")
        problem = resolve_entry("tests.x", Entry("elsewhere", elsewhere, "every 5 seconds"))
        with pytest.raises(InvalidArguments):
            resolve_task(elsewhere)
    assert (problem.id, problem.message) == (  # type: ignore[union-attr]
        "spoolcron.E003",
        "Django task 'tests.test_backend.plain' does not run on spoolcron: its backend "
        "'immediate' is not a spoolcron.backends.SpoolerBackend.",
    )


def test_an_unknown_django_task_is_quarantined_and_failed(
    spool_dirs: tuple[Path, Path],
) -> None:
    spool, failed = spool_dirs
    planted = Payload(
        task="tests.nowhere.gone",
        job_id="planted",
        run_after=0,
        meta={"django_task": {"backend": "default", "queue_name": "default"}},
    )
    write_payload(spool, planted)
    ran = run_spool_file(the_file(spool))
    assert ran.outcome is Outcome.QUARANTINED
    assert ran.reason == (
        "Unknown Django task 'tests.nowhere.gone': no @task function of a SpoolerBackend has "
        "that module path in this process (is its module imported, e.g. from an app's "
        "tasks.py?)."
    )
    row = JobResult.objects.get(pk="planted")
    assert row.status == "FAILED"
    assert row.errors[0]["exception_class_path"] == "spoolcron.exceptions.UnknownTask"
    assert len(files.list_quarantined(failed)) == 1


def test_a_signal_receiver_that_raises_is_logged_not_fatal(
    spool_dir: Path, runs: Runs, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sender: type[Any], task_result: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver broke")

    task_finished.connect(broken)
    try:
        result = framework_tasks.add.enqueue(1, 1)
        with caplog.at_level(logging.ERROR, logger="spoolcron.backends"):
            [ran] = run_due()
    finally:
        task_finished.disconnect(broken)
    assert ran.outcome is Outcome.SUCCEEDED
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    [record] = [r for r in caplog.records if r.name == "spoolcron.backends"]
    assert record.getMessage() == f"signal receiver {broken!r} raised for job={result.id}"
