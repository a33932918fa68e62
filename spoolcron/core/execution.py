"""How the dispatcher calls a task: the ``Execution`` strategy a task carries. A
``@spoolcron.task`` is called as it is (``PLAIN``); a Django ``@task`` carries the Tasks
backend's execution, which sends the framework's signals (spoolcron.backends)."""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any, Protocol

from .payload import Payload

if TYPE_CHECKING:
    from .registry import Task

__all__ = ["PLAIN", "Execution"]


class Execution(Protocol):
    """How the dispatcher runs a task: a plain call, or a Django task with its signals.

    ``result`` is the recorder's record of the job (``Attempt.result``).
    """

    backend: str
    queue_name: str
    framework_task: Any

    def run(self, task: Task[..., Any], payload: Payload, result: Any) -> object: ...

    def finished(self, task: Task[..., Any], result: Any) -> None: ...


class _Plain:
    """A ``@spoolcron.task``: call the function (run a coroutine function to completion)."""

    backend = ""
    queue_name = ""
    framework_task = None

    def run(self, task: Task[..., Any], payload: Payload, result: Any) -> object:
        value = task.func(*payload.args, **payload.kwargs)
        if inspect.isawaitable(value):
            # The spooler has no event loop of its own: run the coroutine to completion here.
            awaitable = value

            async def wait() -> object:
                return await awaitable

            return asyncio.run(wait())
        return value

    def finished(self, task: Task[..., Any], result: Any) -> None:
        pass


PLAIN: Execution = _Plain()
