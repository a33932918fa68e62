from __future__ import annotations

import pytest

import spoolcron
from spoolcron.core.registry import get_task, resolve_task
from tests.testapp import tasks


def test_task_registers_under_dotted_name() -> None:
    assert get_task("tests.testapp.tasks.record") is tasks.record
    assert resolve_task(tasks.record.func) is tasks.record
    assert resolve_task("tests.testapp.tasks.record") is tasks.record
    assert tasks.record("direct") == "direct"


def test_async_task_is_flagged() -> None:
    assert tasks.record_async.is_async
    assert not tasks.record.is_async


def test_unknown_task_message() -> None:
    with pytest.raises(spoolcron.UnknownTask) as info:
        get_task("nope.missing")
    assert str(info.value) == (
        "Unknown task 'nope.missing': no function is registered under that name with "
        "@spoolcron.task (is its module imported, e.g. from an app's tasks.py?)."
    )


def test_bad_retries_message() -> None:
    with pytest.raises(spoolcron.InvalidArguments) as info:

        @spoolcron.task(name="tests.bad_retries", retries=-1)
        def bad() -> None: ...

    assert str(info.value) == (
        "Task 'tests.bad_retries' option retries must be a whole number >= 0, not -1."
    )


def test_nested_function_needs_a_name() -> None:
    def inner() -> None: ...

    with pytest.raises(spoolcron.InvalidArguments) as info:
        spoolcron.task(inner)
    assert str(info.value) == (
        "Cannot register task 'tests.test_registry.test_nested_function_needs_a_name.<locals>"
        ".inner': define it at module level so the spooler can import it, or give it a name=."
    )


def test_name_clash_is_refused() -> None:
    def other() -> None: ...

    with pytest.raises(spoolcron.InvalidArguments) as info:
        spoolcron.task(name="tests.testapp.tasks.record")(other)
    assert str(info.value) == (
        "Task name 'tests.testapp.tasks.record' is already registered for "
        "tests.testapp.tasks.record."
    )
