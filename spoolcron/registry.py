"""``@task`` and the name → task table. Only registered tasks ever run.

Registration happens when the module defining a task is imported (the app config imports each
installed app's ``tasks`` and ``schedules`` modules), never by importing a name read from a
spool file.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from .exceptions import InvalidArguments, UnknownTask

if TYPE_CHECKING:
    from .jobs import Job

__all__ = ["Task", "get_task", "registered_tasks", "resolve_task", "task"]

P = ParamSpec("P")
R = TypeVar("R")

_tasks: dict[str, Task[Any, Any]] = {}


class Task(Generic[P, R]):
    """A registered function and its options; calling it runs the function directly."""

    __slots__ = ("func", "name", "retries", "retry_backoff")

    def __init__(
        self,
        func: Callable[P, R],
        *,
        name: str,
        retries: int = 0,
        retry_backoff: float | None = None,
    ) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidArguments(
                f"Task {name!r} option retries must be a whole number >= 0, not {retries!r}."
            )
        if retry_backoff is not None and (
            isinstance(retry_backoff, bool)
            or not isinstance(retry_backoff, int | float)
            or retry_backoff < 0
        ):
            raise InvalidArguments(
                f"Task {name!r} option retry_backoff must be a number of seconds >= 0, "
                f"not {retry_backoff!r}."
            )
        self.func = func
        self.name = name
        self.retries = retries
        self.retry_backoff = None if retry_backoff is None else float(retry_backoff)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)

    def schedule(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        run_after: datetime | timedelta | float | None = None,
        meta: Mapping[str, Any] | None = None,
        *,
        on_commit: bool | None = None,
    ) -> Job:
        """Enqueue one run of this task; see :func:`spoolcron.schedule`."""
        from .jobs import schedule

        return schedule(self, args, kwargs, run_after, meta, on_commit=on_commit)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Enqueue one run of this task as soon as possible with these arguments."""
        return self.schedule(args, kwargs)


@overload
def task(func: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(
    *, name: str | None = None, retries: int = 0, retry_backoff: float | None = None
) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def task(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    retry_backoff: float | None = None,
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Register a function (plain or ``async def``) as a task under its dotted name.

    ``retries`` is how many times a failing run is tried again; the n-th retry waits
    ``retry_backoff * 2**(n-1)`` seconds (default: ``SPOOLCRON["RETRY_BACKOFF"]``).
    """

    def register(f: Callable[P, R]) -> Task[P, R]:
        if not callable(f):
            raise InvalidArguments(f"@spoolcron.task needs a function, not {f!r}.")
        task_name = name or f"{f.__module__}.{f.__qualname__}"
        if name is None and "<locals>" in f.__qualname__:
            raise InvalidArguments(
                f"Cannot register task {task_name!r}: define it at module level so the "
                "spooler can import it, or give it a name=."
            )
        new = Task(f, name=task_name, retries=retries, retry_backoff=retry_backoff)
        old = _tasks.get(task_name)
        if old is not None and _origin(old.func) != _origin(f):
            raise InvalidArguments(
                f"Task name {task_name!r} is already registered for {_origin(old.func)}."
            )
        _tasks[task_name] = new
        return new

    return register if func is None else register(func)


def _origin(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def get_task(name: str) -> Task[Any, Any]:
    """Return the task registered under ``name`` or raise :class:`UnknownTask`."""
    try:
        return _tasks[name]
    except (KeyError, TypeError):
        raise UnknownTask(name) from None


def resolve_task(function: Task[Any, Any] | Callable[..., Any] | str) -> Task[Any, Any]:
    """Accept a task, the function a task wraps, or a registered name."""
    if isinstance(function, Task):
        return function
    if isinstance(function, str):
        return get_task(function)
    if callable(function):
        for registered in _tasks.values():
            if registered.func is function:
                return registered
        raise UnknownTask(_origin(function))
    raise InvalidArguments(
        f"A task must be a @spoolcron.task function or its name, not {function!r}."
    )


def registered_tasks() -> Mapping[str, Task[Any, Any]]:
    return dict(_tasks)
