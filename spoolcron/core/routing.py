"""Where a task's jobs may come from and go to: its queue, whether a remote instance may
enqueue it, and which nginx parameters become its keyword arguments. Validated once, when the
task is declared; whether a queue exists is a system check (settings are not read at import).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import InvalidArguments

__all__ = ["Routing", "check_queue_name"]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# nginx sends uwsgi_param names as given; these two are spoolcron's own.
_RESERVED = frozenset({"spoolcron_task", "spoolcron_token"})


def check_queue_name(owner: str, queue: object) -> str | None:
    """``queue`` if it can name a queue (None: the default one); InvalidArguments otherwise."""
    if queue is None:
        return None
    if not isinstance(queue, str) or not _NAME.fullmatch(queue):
        raise InvalidArguments(
            f"{owner} has queue={queue!r}: a queue name is 1-64 letters, digits, '_' or '-'."
        )
    return queue


@dataclass(frozen=True)
class Routing:
    """A task's routing options (``@spoolcron.task(queue=..., remote=..., nginx=...)``)."""

    queue: str | None = None
    remote: bool = False
    """Whether a signed request from another uWSGI instance may enqueue the task."""
    nginx: Mapping[str, str] = field(default_factory=dict)
    """nginx ``uwsgi_param`` name -> keyword argument; empty: nginx may not enqueue it."""

    @classmethod
    def of(
        cls,
        task: str,
        func: Callable[..., Any],
        *,
        queue: object = None,
        remote: object = False,
        nginx: object = None,
    ) -> Routing:
        owner = f"Task {task!r}"
        if not isinstance(remote, bool):
            raise InvalidArguments(f"{owner} option remote must be True or False, not {remote!r}.")
        return cls(check_queue_name(owner, queue), remote, _nginx(task, func, nginx))


def _nginx(task: str, func: Callable[..., Any], mapping: object) -> dict[str, str]:
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping) or not mapping:
        raise InvalidArguments(
            f"Task {task!r} option nginx must be a non-empty dict of nginx parameter -> "
            f"keyword argument, not {mapping!r}."
        )
    parameters: Mapping[str, inspect.Parameter]
    try:
        parameters = inspect.signature(func).parameters
    except (TypeError, ValueError):
        parameters = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for param, kwarg in mapping.items():
        if not isinstance(param, str) or not param or param.lower() in _RESERVED:
            raise InvalidArguments(
                f"Task {task!r} option nginx maps the parameter {param!r}: use a name other "
                "than spoolcron_task and spoolcron_token."
            )
        if not isinstance(kwarg, str) or not (takes_any or kwarg in parameters):
            raise InvalidArguments(
                f"Task {task!r} option nginx maps {param!r} to {kwarg!r}, which is not a "
                "keyword argument of the task."
            )
    return dict(mapping)
