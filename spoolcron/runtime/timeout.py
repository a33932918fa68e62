"""A task's ``timeout``: a SIGALRM timer in the process running the job interrupts the task.

uWSGI's spooler runs the callable in its main thread, as do ``spoolcron worker`` and
``run-due``, so a Python signal handler can raise :class:`~spoolcron.JobTimeout` in the task
wherever it is (a ``time.sleep``, a socket read: the system call is interrupted and the handler
runs). uWSGI 2.0 uses no SIGALRM in its spooler (it sets SIGALRM to ignored when it forks one;
its harakiri for spoolers is a deadline the master checks, only ``alarm()`` without a master),
and ITIMER_REAL is the same timer ``alarm()`` sets: the previous handler and any timer already
running (less the time the job took) are put back after each job -- SIG_IGN included, which
Python would report as SIG_DFL: it read the disposition in the master, before the fork.

What it cannot stop: a task stuck in C code that never returns to Python (a C extension in a
loop, a lock acquired without timeout in some libraries) runs on until it returns; uWSGI's
``--spooler-harakiri`` stays the backstop that kills the spooler. Outside the main thread
(tests running jobs in a thread) no signal can be used: the limit is not enforced, with a
warning.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from ..exceptions import JobTimeout

__all__ = ["call_with_timeout"]

logger = logging.getLogger("spoolcron.dispatch")

T = TypeVar("T")


def _ignored_by_the_system(signum: int) -> bool:
    """Whether the process ignores ``signum`` (Linux's /proc; False where it cannot tell)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


class _Limit:
    """One armed timer; :meth:`restore` is idempotent and safe to call twice (the alarm fires
    at most once, so a restore it cut short is completed by the next)."""

    def __init__(self, task: str, seconds: float) -> None:
        self.task = task
        self.seconds = seconds
        self.error: JobTimeout | None = None
        self._previous: Any = None
        self._old_timer = (0.0, 0.0)
        self._armed_at = 0.0
        self._state = "new"  # new -> armed -> restored

    def _alarm(self, signum: int, frame: FrameType | None) -> None:
        if self._state != "armed" or self.error is not None:
            return  # once only; never after the job
        self.error = JobTimeout(self.task, self.seconds)
        raise self.error

    def arm(self) -> None:
        ignored = _ignored_by_the_system(signal.SIGALRM)
        self._previous = signal.signal(signal.SIGALRM, self._alarm)
        if ignored and self._previous is signal.SIG_DFL:
            # Python remembers the disposition from when the interpreter started (in uWSGI's
            # master); the spooler set SIG_IGN after its fork, in C. Put back what is true.
            self._previous = signal.SIG_IGN
        self._state = "armed"
        self._armed_at = time.monotonic()
        self._old_timer = signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def restore(self) -> None:
        if self._state != "armed":
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._previous)
        self._state = "restored"
        delay, interval = self._old_timer
        if delay > 0:
            # Someone's timer was running (uWSGI without a master sets alarm() for
            # --spooler-harakiri): it goes on with what was left of it.
            left = delay - (time.monotonic() - self._armed_at)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), interval)

    def run(self, call: Callable[[], T]) -> T:
        try:
            self.arm()
            try:
                value = call()
            finally:
                self.restore()
        except Exception as exc:
            if self.error is not None and exc is not self.error:
                # The task caught the timeout and raised something else (a library wrapped
                # it): the attempt still timed out.
                raise self.error from exc
            raise
        if self.error is not None:
            raise self.error  # the task caught the timeout and returned: still timed out
        return value


def call_with_timeout(call: Callable[[], T], task: str, seconds: float | None) -> T:
    """``call()``, interrupted by :class:`JobTimeout` if it runs longer than ``seconds``.

    Whatever the task does after the time passed (catches the ``JobTimeout`` and returns,
    raises another exception), the call ends in the ``JobTimeout``.
    """
    if seconds is None:
        return call()
    if threading.current_thread() is not threading.main_thread():
        logger.warning(
            "timeout not enforced task=%s timeout_s=%g reason=not-the-main-thread", task, seconds
        )
        return call()
    limit = _Limit(task, seconds)
    try:
        return limit.run(call)
    finally:
        limit.restore()
