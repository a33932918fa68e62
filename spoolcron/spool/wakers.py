"""Several queues' spool directories woken together: one Waker per directory, each waking
the spooler processes of its own directory, stepped and waited on as one."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from .inotify import wait_readable
from .waker import Waker, settle_event

__all__ = ["Wakers"]


class Wakers:
    """The Waker interface the mule uses (``step``, ``notify``, ``wait``) over many."""

    def __init__(self, wakers: Sequence[Waker]) -> None:
        if not wakers:
            raise ValueError("Wakers needs at least one Waker.")
        self.wakers = list(wakers)

    def step(self) -> float:
        return min(waker.step() for waker in self.wakers)

    def notify(
        self, name: str, due: float, spool_dir: Path | None = None, *, lead: float | None = None
    ) -> None:
        """Tell the waker of ``spool_dir`` (None: any that has the file) about a new file."""
        for waker in self.wakers:
            if spool_dir is None or waker.spool_dir == spool_dir:
                waker.notify(name, due, lead=lead)

    def wait(self, timeout: float) -> None:
        """Sleep ``timeout`` seconds, or less if a file appears in any of the directories."""
        if len(self.wakers) == 1:
            self.wakers[0].wait(timeout)
            return
        for waker in self.wakers:
            waker.wait(0.0)  # marks each as waited on (see Waker.step), returns at once
        fds = [fd for waker in self.wakers if (fd := waker.watch_fd) is not None]
        if len(fds) < len(self.wakers):
            # A polled directory: its step() asked for at most poll_interval anyway.
            time.sleep(max(0.0, timeout))
        else:
            began = time.monotonic()
            readable = wait_readable(fds, timeout)
            if readable:
                delay = max(w.event_delay for w in self.wakers if w.watch_fd in readable)
                settle_event(delay, began + timeout)

    @property
    def wakes(self) -> int:
        return sum(waker.wakes for waker in self.wakers)

    def close(self) -> None:
        for waker in self.wakers:
            waker.close()
