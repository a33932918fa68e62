"""``SpoolerBackend``: Django's Tasks framework on the uWSGI spooler.

::

    TASKS = {"default": {"BACKEND": "spoolcron.backends.SpoolerBackend"}}

A task's ``enqueue()`` writes a READY result row and a spool file due at ``run_after``; the
spooler runs it through spoolcron's dispatcher (which calls ``run_started``/``run_task``/
``run_finished`` below), and ``get_result()`` reads the row back, from any process sharing the
database. Works with ``django.tasks`` and with the ``django-tasks`` backport alike (see
``_tasks_compat``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage
from django.utils import timezone
from django.utils.inspect import get_func_args

from . import checks, jobs
from ._tasks_compat import (
    DEFAULT_TASK_PRIORITY,
    TASK_MAX_PRIORITY,
    TASK_MIN_PRIORITY,
    BaseTaskBackend,
    InvalidTask,
    InvalidTaskBackend,
    Task,
    TaskContext,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    normalize_json,
    task_backends,
    task_enqueued,
    task_finished,
    task_started,
)
from .conf import DEFAULT_QUEUE, get_settings
from .core import registry
from .core.payload import META_DJANGO_TASK, META_QUEUE, Payload, encode_body
from .core.times import to_db_datetime, utc
from .exceptions import InvalidArguments

__all__ = ["OPTIONS", "FrameworkExecution", "SpoolerBackend", "to_task_result"]

OPTIONS = ("ENQUEUE_ON_COMMIT",)

logger = logging.getLogger("spoolcron.backends")


def _plain(task: Task[Any, Any], what: str, value: Any) -> Any:
    """``value`` as the framework stores it (tuples become lists...), or one clear TypeError."""
    try:
        return normalize_json(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"Cannot enqueue task {task.module_path!r}: {what} = {value!r} is not JSON; the "
            "Tasks framework accepts only str, int, float, bool, None, lists and dicts."
        ) from None


class SpoolerBackend(BaseTaskBackend):
    """Runs tasks in uWSGI's spooler; results live in spoolcron's ``JobResult`` table."""

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    # uWSGI orders by priority only with --spooler-ordered and priority subdirectories;
    # spoolcron's files run in due order, so a priority would be a promise not kept.
    supports_priority = False

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        if not isinstance(self.options, Mapping):
            raise InvalidTaskBackend(
                f"TASKS[{alias!r}]['OPTIONS'] must be a dict, not {self.options!r}."
            )
        unknown = sorted(set(self.options) - set(OPTIONS))
        if unknown:
            raise InvalidTaskBackend(
                f"Unknown option {unknown[0]!r} in TASKS[{alias!r}]['OPTIONS']; "
                f"SpoolerBackend knows {', '.join(OPTIONS)}."
            )
        on_commit = self.options.get("ENQUEUE_ON_COMMIT")
        if on_commit is not None and not isinstance(on_commit, bool):
            raise InvalidTaskBackend(
                f"TASKS[{alias!r}]['OPTIONS']['ENQUEUE_ON_COMMIT'] must be True, False or "
                f"None, not {on_commit!r}."
            )
        # None: follow SPOOLCRON["ON_COMMIT"], like spoolcron.schedule().
        self.enqueue_on_commit: bool | None = on_commit

    def validate_task(self, task: Task[Any, Any]) -> None:
        func = task.func
        path = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', func)}"
        where = f"Task {path!r}"
        if not registry.is_module_level(func):
            raise InvalidTask(
                f"{where} must be a function defined at module level, so the spooler can "
                "find it by name."
            )
        first = (get_func_args(func) or ["(none)"])[0]
        if task.takes_context and first != "context":
            raise InvalidTask(
                f"{where} takes context, so its first argument must be named 'context', "
                f"not {first!r}."
            )
        priority = task.priority
        if isinstance(priority, bool) or not isinstance(priority, int | float):
            raise InvalidTask(f"{where} has priority {priority!r}, which is not a number.")
        if not (TASK_MIN_PRIORITY <= priority <= TASK_MAX_PRIORITY) or priority != int(priority):
            raise InvalidTask(
                f"{where} has priority {priority!r}; priority must be a whole number between "
                f"{TASK_MIN_PRIORITY} and {TASK_MAX_PRIORITY}."
            )
        if priority != DEFAULT_TASK_PRIORITY:
            raise InvalidTask(
                f"{where} has priority {priority!r}, but SpoolerBackend runs jobs in due "
                f"order and does not support priorities; leave it at {DEFAULT_TASK_PRIORITY}."
            )
        run_after = task.run_after
        if run_after is not None:
            if not isinstance(run_after, datetime):
                raise InvalidTask(f"{where} has run_after={run_after!r}, which is not a datetime.")
            if settings.USE_TZ and timezone.is_naive(run_after):
                raise InvalidTask(
                    f"{where} has run_after={run_after!r}, a naive datetime while USE_TZ is "
                    "on; pass an aware one, e.g. timezone.now() + timedelta(minutes=5)."
                )
        if self.queues and task.queue_name not in self.queues:
            raise InvalidTask(
                f"{where} has queue_name {task.queue_name!r}, which is not a queue of task "
                f"backend {self.alias!r} ({', '.join(sorted(map(repr, self.queues)))})."
            )
        # The framework's own rules too, should a later Django add one.
        super().validate_task(task)
        try:
            registry.register_framework_task(task, FrameworkExecution(task))
        except ValueError as exc:
            raise InvalidTask(str(exc)) from None

    def enqueue(
        self, task: Task[Any, Any], args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> TaskResult[Any, Any]:
        from .storage import results  # models: not importable before Django's apps are

        self.validate_task(task)
        plain_args = [_plain(task, f"args[{i}]", value) for i, value in enumerate(args)]
        plain_kwargs = {k: _plain(task, f"kwargs[{k!r}]", v) for k, v in kwargs.items()}
        now = time.time()
        try:
            due = jobs.timestamp_of(task.run_after, now)
        except InvalidArguments as exc:
            raise InvalidTask(str(exc)) from None
        meta: dict[str, Any] = {
            META_DJANGO_TASK: {"backend": self.alias, "queue_name": task.queue_name}
        }
        # A queue_name that names a SPOOLCRON queue routes there; any other runs in the
        # default queue, as before queues existed.
        queue = get_settings().queues.get(task.queue_name)
        if queue is not None and not queue.is_remote and queue.name != DEFAULT_QUEUE:
            meta[META_QUEUE] = queue.name
        payload = Payload(
            task=task.module_path,
            job_id=uuid.uuid4().hex,
            run_after=due,
            args=plain_args,
            kwargs=plain_kwargs,
            meta=meta,
            enqueued_at=now,
        )
        body = encode_body(payload)
        result: TaskResult[Any, Any] = TaskResult(
            task=task,
            id=payload.job_id,
            status=TaskResultStatus.READY,
            enqueued_at=utc(now),
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=plain_args,
            kwargs=plain_kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        # The row first: in autocommit it exists before any spooler can start the job; in a
        # transaction it commits (or rolls back) with the caller's data.
        results.record_enqueued(
            payload,
            backend=self.alias,
            queue_name=task.queue_name,
            run_after=None if task.run_after is None else to_db_datetime(due),
        )

        jobs.publish(
            payload,
            body,
            on_commit=self.enqueue_on_commit,
            then=partial(task_enqueued.send, type(self), task_result=result),
            queue=queue,
        )
        return result

    def get_result(self, result_id: str) -> TaskResult[Any, Any]:
        from .storage import results

        row = results.load(result_id)
        if row is None:
            raise TaskResultDoesNotExist(f"No task result has the id {result_id!r}.")
        try:
            found = registry.get_task(row.task)
        except LookupError:
            found = None
        if found is None or found.framework is None:
            raise TaskResultDoesNotExist(
                f"Result {result_id!r} is of {row.task!r}, which is not a Django task known "
                "to this process."
            )
        return to_task_result(row, found.framework)

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        return checks.check_backend(self.alias)


def to_task_result(row: Any, base: Task[Any, Any]) -> TaskResult[Any, Any]:
    """The framework's TaskResult of a ``JobResult`` row of the Django task ``base``."""
    task = base.using(
        queue_name=row.queue_name or None,
        backend=row.backend or None,
        run_after=row.run_after,
    )
    result: TaskResult[Any, Any] = TaskResult(
        task=task,
        id=row.id,
        status=TaskResultStatus(row.status),
        enqueued_at=row.enqueued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        last_attempted_at=row.last_attempted_at,
        args=list(row.args),
        kwargs=dict(row.kwargs),
        backend=row.backend or task.backend,
        errors=[TaskError(**error) for error in row.errors],
        worker_ids=list(row.worker_ids),
    )
    object.__setattr__(result, "_return_value", row.return_value)
    return result


# The dispatcher's side, in the spooler: the framework's signals around a run, as its own
# ImmediateBackend sends them.


def _send(signal: Any, result: TaskResult[Any, Any]) -> None:
    # A receiver that raises must not decide the job's fate, nor escape into uWSGI's spooler.
    sender = type(task_backends[result.task.backend])
    for receiver, outcome in signal.send_robust(sender=sender, task_result=result):
        if isinstance(outcome, Exception):
            logger.error(
                "signal receiver %r raised for job=%s",
                receiver,
                result.id,
                exc_info=(type(outcome), outcome, outcome.__traceback__),
            )


class FrameworkExecution:
    """How the dispatcher runs a Django ``@task``: with its context, its JSON return value and
    the framework's task_started/task_finished signals (registry.Execution)."""

    def __init__(self, framework_task: Task[Any, Any]) -> None:
        self.framework_task = framework_task
        self.backend = str(framework_task.backend)
        self.queue_name = str(framework_task.queue_name)

    def run(self, task: registry.Task[..., Any], payload: Payload, result: Any) -> object:
        """Call the task (async ones too) and return its value as the framework stores it."""
        started = to_task_result(result, self.framework_task)
        _send(task_started, started)
        framework = started.task
        if framework.takes_context:
            value = framework.call(
                TaskContext(task_result=started), *payload.args, **payload.kwargs
            )
        else:
            value = framework.call(*payload.args, **payload.kwargs)
        try:
            return normalize_json(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"Task {framework.module_path!r} returned {value!r}, which is not JSON; return "
                "only str, int, float, bool, None, lists and dicts."
            ) from None

    def finished(self, task: registry.Task[..., Any], result: Any) -> None:
        _send(task_finished, to_task_result(result, self.framework_task))
