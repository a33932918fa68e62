"""Helpers shared by the test modules: the runtime wired to the database, a settable clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from spoolcron.runtime import dispatch, runner
from spoolcron.spool.codec import SpoolFile
from spoolcron.storage.recorder import DatabaseRecorder


class Clock:
    """A clock the test sets by hand: ``clock.now = ...``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run_due(*, until: float | None = None, clock: Callable[[], float] = time.time) -> list[Any]:
    """``runtime.runner.run_due`` recording to the test database."""
    return runner.run_due(DatabaseRecorder(), until=until, clock=clock)


def run_spool_file(file: SpoolFile, **kwargs: Any) -> dispatch.Result:
    """``runtime.dispatch.run_spool_file`` recording to the test database."""
    return dispatch.run_spool_file(file, DatabaseRecorder(), **kwargs)
