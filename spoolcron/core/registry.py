"""``@task`` and the name → task table. Only registered tasks ever run.

Registration happens when the module defining a task is imported (the app config imports each
installed app's ``tasks`` and ``schedules`` modules), never by importing a name read from a
spool file. Functions of Django's ``@task`` (Tasks framework) join the table under their
module path when spoolcron's backend validates them, which Django does as it builds the task;
they carry the backend's :class:`Execution`, the strategy that runs them.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from ..exceptions import InvalidArguments, SpoolcronImproperlyConfigured, UnknownTask
from .execution import PLAIN, Execution
from .routing import Routing

if TYPE_CHECKING:
    from ..jobs import Job

__all__ = [
    "NO_ROUTING",
    "PLAIN",
    "Execution",
    "Task",
    "all_tasks",
    "get_task",
    "install_enqueuer",
    "is_module_level",
    "register_framework_task",
    "resolve_task",
    "task",
    "task_names",
]

P = ParamSpec("P")
R = TypeVar("R")

_tasks: dict[str, Task[Any, Any]] = {}


_enqueue: Callable[..., Job] | None = None


def install_enqueuer(enqueue: Callable[..., Job]) -> None:
    """Give ``Task.schedule`` the function that enqueues (``spoolcron.schedule``).

    Called by the app config when Django starts: tasks live in the core layer, enqueueing
    above it.
    """
    global _enqueue
    _enqueue = enqueue


def is_module_level(func: Any) -> bool:
    """Whether the spooler can find ``func`` again by its dotted name."""
    return callable(func) and "<locals>" not in getattr(func, "__qualname__", "<locals>")


NO_ROUTING = Routing()


class Task(Generic[P, R]):
    """A registered function and its options; calling it runs the function directly."""

    __slots__ = (
        "_shapes",
        "_signature",
        "execution",
        "expires",
        "func",
        "name",
        "retries",
        "retry_backoff",
        "retry_jitter",
        "retry_on",
        "routing",
        "timeout",
    )

    def __init__(
        self,
        func: Callable[P, R],
        *,
        name: str,
        retries: int = 0,
        retry_backoff: float | None = None,
        retry_on: type[Exception] | tuple[type[Exception], ...] | None = None,
        retry_jitter: float = 0.0,
        timeout: float | timedelta | None = None,
        expires: float | timedelta | None = None,
        execution: Execution = PLAIN,
        routing: Routing = NO_ROUTING,
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
        if (
            isinstance(retry_jitter, bool)
            or not isinstance(retry_jitter, int | float)
            or not 0 <= retry_jitter <= 1
        ):
            raise InvalidArguments(
                f"Task {name!r} option retry_jitter must be a fraction of the backoff from 0 "
                f"to 1, not {retry_jitter!r}."
            )
        self.func = func
        self.name = name
        self.retries = retries
        self.retry_backoff = None if retry_backoff is None else float(retry_backoff)
        self.retry_on = _exception_classes(name, retry_on, retries)
        self.retry_jitter = float(retry_jitter)
        self.timeout = _seconds(name, "timeout", timeout)
        self.expires = _seconds(name, "expires", expires)
        self.execution = execution
        self.routing = routing
        self._signature: inspect.Signature | None = None
        # Call shapes (positional count, keyword names) the signature accepted: binding looks
        # at nothing else, and a bulk enqueue repeats one shape many times.
        self._shapes: set[tuple[int, frozenset[str]]] = set()

    def retries_on(self, exc: BaseException) -> bool:
        """Whether a failure with ``exc`` is retried (while attempts remain): any exception
        without ``retry_on``, else only those classes (and their subclasses)."""
        return self.retry_on is None or isinstance(exc, self.retry_on)

    @property
    def framework(self) -> Any:
        """The django.tasks Task this one runs (see register_framework_task), else None."""
        return self.execution.framework_task

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    def check_call(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """InvalidArguments unless the function accepts ``args`` and ``kwargs``: a call that
        cannot work fails when enqueued, not later in the spooler."""
        shape = (len(args), frozenset(kwargs))
        if shape in self._shapes:
            return
        if self._signature is None:
            try:
                self._signature = inspect.signature(self.func)
            except (TypeError, ValueError):  # a builtin or C function: nothing to check
                return
        framework = self.framework
        # A Django task that takes context gets it first, from the runner.
        leading = [None] if framework is not None and framework.takes_context else []
        try:
            self._signature.bind(*leading, *args, **kwargs)
        except TypeError as exc:
            raise InvalidArguments(f"Cannot schedule task {self.name!r}: {exc}.") from None
        if len(self._shapes) < 64:
            self._shapes.add(shape)

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
        expires: datetime | timedelta | float | None = None,
        queue: str | None = None,
    ) -> Job:
        """Enqueue one run of this task; see :func:`spoolcron.schedule`."""
        if _enqueue is None:
            raise SpoolcronImproperlyConfigured(
                f"Cannot schedule task {self.name!r}: Django is not set up with 'spoolcron' "
                "in INSTALLED_APPS."
            )
        # Only the options given: an enqueuer swapped in by tests may not take them all.
        options = {
            key: value
            for key, value in (("expires", expires), ("queue", queue))
            if value is not None
        }
        return _enqueue(self, args, kwargs, run_after, meta, on_commit=on_commit, **options)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Enqueue one run of this task as soon as possible with these arguments."""
        return self.schedule(args, kwargs)


@overload
def task(func: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(
    *,
    name: str | None = None,
    retries: int = 0,
    retry_backoff: float | None = None,
    retry_on: type[Exception] | tuple[type[Exception], ...] | None = None,
    retry_jitter: float = 0.0,
    timeout: float | timedelta | None = None,
    expires: float | timedelta | None = None,
    queue: str | None = None,
    remote: bool = False,
    nginx: Mapping[str, str] | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def task(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    retry_backoff: float | None = None,
    retry_on: type[Exception] | tuple[type[Exception], ...] | None = None,
    retry_jitter: float = 0.0,
    timeout: float | timedelta | None = None,
    expires: float | timedelta | None = None,
    queue: str | None = None,
    remote: bool = False,
    nginx: Mapping[str, str] | None = None,
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Register a function (plain or ``async def``) as a task under its dotted name.

    ``retries`` is how many times a failing run is tried again; the n-th retry waits
    ``retry_backoff * 2**(n-1)`` seconds (default: ``SPOOLCRON["RETRY_BACKOFF"]``), capped by
    ``SPOOLCRON["MAX_RETRY_DELAY"]``, plus a random fraction of that wait up to
    ``retry_jitter`` (uniform; 0.25: 100-125 % of it). ``retry_on`` (exception classes) limits
    the retries to those exceptions: any other fails the job at once. ``timeout`` (seconds)
    interrupts an attempt that runs longer with :class:`~spoolcron.JobTimeout`, a failure
    like any other (retried unless ``retry_on`` leaves it out). ``expires`` (seconds) drops a
    job whose first attempt has not started that long after its due time.

    ``queue`` names the queue its jobs go to (``SPOOLCRON["QUEUES"]``; default: the default
    queue). ``remote=True`` lets a signed request from another uWSGI instance enqueue it;
    ``nginx`` (nginx ``uwsgi_param`` name -> keyword argument) lets an nginx location do so.
    """

    def register(f: Callable[P, R]) -> Task[P, R]:
        if not callable(f):
            raise InvalidArguments(f"@spoolcron.task needs a function, not {f!r}.")
        task_name = name or f"{f.__module__}.{f.__qualname__}"
        if name is None and not is_module_level(f):
            raise InvalidArguments(
                f"Cannot register task {task_name!r}: define it at module level so the "
                "spooler can import it, or give it a name=."
            )
        new = Task(
            f,
            name=task_name,
            retries=retries,
            retry_backoff=retry_backoff,
            retry_on=retry_on,
            retry_jitter=retry_jitter,
            timeout=timeout,
            expires=expires,
            routing=Routing.of(task_name, f, queue=queue, remote=remote, nginx=nginx),
        )
        old = _tasks.get(task_name)
        if old is not None and _origin(old.func) != _origin(f):
            raise InvalidArguments(
                f"Task name {task_name!r} is already registered for {_origin(old.func)}."
            )
        _tasks[task_name] = new
        return new

    return register if func is None else register(func)


def _seconds(task: str, option: str, value: float | timedelta | None) -> float | None:
    """``value`` (seconds, or a timedelta) as a float > 0, or None; InvalidArguments naming
    the option otherwise."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise InvalidArguments(
            f"Task {task!r} option {option} must be a number of seconds > 0 (or a timedelta) "
            f"or None, not {value!r}."
        )
    return float(seconds)


def _exception_classes(
    task: str, retry_on: object, retries: int
) -> tuple[type[Exception], ...] | None:
    """``retry_on`` as a tuple of exception classes, or None (retry on any exception)."""
    if retry_on is None:
        return None
    classes = retry_on if isinstance(retry_on, tuple) else (retry_on,)
    if not classes or not all(
        isinstance(kind, type) and issubclass(kind, Exception) for kind in classes
    ):
        raise InvalidArguments(
            f"Task {task!r} option retry_on must be an exception class or a tuple of them, "
            f"not {retry_on!r}."
        )
    if retries == 0:
        # Celery's autoretry_for retries on its own; here retries says how many times.
        raise InvalidArguments(
            f"Task {task!r} option retry_on needs retries >= 1 to retry anything, not "
            f"retries={retries!r}."
        )
    return classes


def _origin(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def all_tasks() -> list[Task[Any, Any]]:
    """Every registered task, by name."""
    return [_tasks[name] for name in sorted(_tasks)]


def get_task(name: str) -> Task[Any, Any]:
    """Return the task registered under ``name`` or raise :class:`UnknownTask`."""
    try:
        return _tasks[name]
    except (KeyError, TypeError):
        raise UnknownTask(name) from None


def task_names() -> list[str]:
    """The names of every registered task, sorted: what a database entry may run (a name
    looked up here, never an import path)."""
    return sorted(_tasks)


def register_framework_task(framework_task: Any, execution: Execution) -> Task[Any, Any]:
    """Make a Django ``@task`` runnable by the spooler, under its module path, by ``execution``.

    Called by SpoolerBackend.validate_task, so for every copy ``.using()`` makes: the first
    one seen (the decorated task) stays, unless its module was imported again.
    """
    func = framework_task.func
    name = f"{func.__module__}.{func.__qualname__}"
    old = _tasks.get(name)
    if old is not None and old.framework is None:
        raise InvalidArguments(
            f"Django task {name!r} cannot be registered: the name is taken by the "
            f"@spoolcron.task for {_origin(old.func)}."
        )
    if old is not None and old.func is func:
        return old
    new: Task[Any, Any] = Task(func, name=name, execution=execution)
    _tasks[name] = new
    return new


def _framework_task_of(function: Any) -> Task[Any, Any] | None:
    # A django.tasks Task: not callable, it has the function and a module path.
    func = getattr(function, "func", None)
    if func is None or not hasattr(function, "module_path"):
        return None
    for registered in _tasks.values():
        if registered.framework is not None and registered.func is func:
            return registered
    raise InvalidArguments(
        f"Django task {function.module_path!r} does not run on spoolcron: its backend "
        f"{function.backend!r} is not a spoolcron.backends.SpoolerBackend."
    )


def resolve_task(function: Task[Any, Any] | Callable[..., Any] | str) -> Task[Any, Any]:
    """Accept a task, the function a task wraps, a registered name or a Django ``@task``."""
    if isinstance(function, Task):
        return function
    if isinstance(function, str):
        return get_task(function)
    framework = _framework_task_of(function)
    if framework is not None:
        return framework
    if callable(function):
        for registered in _tasks.values():
            if registered.func is function:
                return registered
        raise UnknownTask(_origin(function))
    raise InvalidArguments(
        f"A task must be a @spoolcron.task function or its name, not {function!r}."
    )
