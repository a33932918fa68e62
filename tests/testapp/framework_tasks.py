"""Tasks of Django's Tasks framework (``@task`` of django.tasks or the django-tasks backport),
run by spoolcron's SpoolerBackend. Imported by tasks.py, so the spooler knows them."""

from __future__ import annotations

import asyncio
from typing import Any

from spoolcron._tasks_compat import TaskContext, task_finished, task_started

from .tasks import _record

try:
    from django.tasks import task
except ImportError:  # Django 5.2
    from django_tasks import task


@task
def add(a: int, b: int) -> int:
    _record("add", label=f"{a}+{b}")
    return a + b


@task
def fail(label: str) -> None:
    _record("fail", label=label)
    raise ValueError(f"fail {label} on purpose")


@task
async def add_async(a: int, b: int) -> int:
    await asyncio.sleep(0)
    _record("add_async", label=f"{a}+{b}")
    return a + b


@task(takes_context=True)
def with_context(context: TaskContext, label: str) -> dict[str, Any]:
    _record("with_context", label=label)
    return {"id": context.task_result.id, "attempt": context.attempt}


@task
def not_json() -> object:
    return object()


@task
def tick(label: str) -> str:
    """Run by a periodic entry (tests/integration/apps/tasks_backend_entry.py)."""
    _record("tick", label=label)
    return label


def _signal(name: str) -> Any:
    def receive(sender: type[Any], task_result: Any, **kwargs: Any) -> None:
        _record("signal", label=f"{name} {task_result.id} {task_result.status}")

    return receive


# Kept in the module (not collected): the integration tests see which process sent what.
_receivers = {"started": _signal("started"), "finished": _signal("finished")}
task_started.connect(_receivers["started"])
task_finished.connect(_receivers["finished"])
