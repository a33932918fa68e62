"""Wakes the uWSGI spooler at the instant each spool file becomes due.

uWSGI's spooler looks at its directory every ``--spooler-frequency`` seconds (30 by default)
and compares ``at`` (the file's mtime) in whole seconds, so on its own a job runs up to a
whole frequency late. The waker runs in the spoolcron mule: it watches the spool directory
(new files from any process show up as a change of the directory's mtime), keeps a heap of due
times read from the files' nanosecond mtimes, and signals the spooler (SIGUSR1) at each due
instant. The dispatcher waits out the sub-second remainder, so jobs start on time, not early.

It also looks at the header of each file another process wrote before waking the spooler for
it: a file uWSGI would skip forever (shorter than its header) or delete unseen (arguments cut
short or malformed), or one too large to read, is moved to the failed directory with the
reason (see ``files.check``). A file still being written (locked, or changed within
``settle`` seconds) is looked at again later; meanwhile, for up to ``hold_wakes`` seconds, the
spooler is not woken at all, since a woken spooler scans the whole directory and would delete
or skip such a file before it is moved. uWSGI's own ``--spooler-frequency`` scan can still
get there first: spoolcron cannot stop that one.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from . import files, locks
from .codec import PREFIX

__all__ = ["COARSE_LAG", "Waker", "coarse_time", "wake_time"]

logger = logging.getLogger("spoolcron.waker")


# uWSGI compares `at` with time(NULL), which reads the kernel's coarse clock: it turns to a
# new second only at the next tick after the precise clock does, 1-10 ms later, and later still
# on a busy virtual machine. Woken before that, the spooler still sees the previous second and
# skips the file. CLOCK_REALTIME_COARSE is that clock; Python's time module does not name it.
_CLOCK_REALTIME_COARSE = 5


def _coarse_clock() -> Callable[[], float]:
    if sys.platform.startswith("linux"):
        try:
            time.clock_gettime(_CLOCK_REALTIME_COARSE)
        except OSError:
            pass
        else:
            return partial(time.clock_gettime, _CLOCK_REALTIME_COARSE)
    return time.time


def _coarse_lag() -> float:
    if not sys.platform.startswith("linux"):
        return 0.011
    try:
        return float(time.clock_getres(_CLOCK_REALTIME_COARSE)) + 0.001
    except OSError:
        return 0.011


coarse_time = _coarse_clock()
# The usual lag: the first look at a due file waits this long past its second, then the waker
# checks the coarse clock itself (the lag has been seen at 6 ms where the tick is 4 ms).
COARSE_LAG = _coarse_lag()
# How soon to look again while the coarse clock has not reached the due second.
COARSE_RECHECK = 0.001


def wake_time(due: float) -> float:
    """When to first look at waking the spooler for a file due at ``due`` (its precise mtime)."""
    return max(due, math.floor(due) + COARSE_LAG)


class Waker:
    """One step at a time (``step``), so the mule's loop and tests can drive it with any clock."""

    def __init__(
        self,
        spool_dir: Path,
        wake: Callable[[], None],
        *,
        clock: Callable[[], float] = time.time,
        coarse_clock: Callable[[], float] = coarse_time,
        poll_interval: float = 0.02,
        rescan_interval: float = 2.0,
        rewake_interval: float = 0.25,
        failed_dir: Path | None = None,
        max_body: int | None = None,
        settle: float = 0.1,
        hold_wakes: float = 1.0,
    ) -> None:
        self.spool_dir = spool_dir
        self._wake = wake
        self._clock = clock
        self._coarse_clock = coarse_clock
        self.poll_interval = poll_interval
        self.rescan_interval = rescan_interval
        self.rewake_interval = rewake_interval
        self.failed_dir = failed_dir
        self.max_body = max_body
        self.settle = settle
        self.hold_wakes = hold_wakes
        self._suspects: dict[str, float] = {}  # name -> when to look at it again
        self._suspect_since: dict[str, float] = {}
        self.quarantined = 0
        self._dir_mtime_ns = -1
        self._next_rescan = 0.0
        self._known: set[str] = set()
        self._heap: list[tuple[float, str]] = []  # (when to look at the file, name)
        self.wakes = 0

    def notify(self, name: str, due: float) -> None:
        """Tell the waker about a file this process wrote, without waiting for a scan."""
        if name not in self._known:
            self._known.add(name)
            heapq.heappush(self._heap, (wake_time(due), name))

    def _scan(self, now: float) -> None:
        try:
            mtime_ns = os.stat(self.spool_dir).st_mtime_ns
        except FileNotFoundError:
            return
        # Two renames within one timestamp tick leave the mtime unchanged: rescan now and then.
        if mtime_ns == self._dir_mtime_ns and now < self._next_rescan:
            return
        self._dir_mtime_ns = mtime_ns
        self._next_rescan = now + self.rescan_interval
        present = set()
        with os.scandir(self.spool_dir) as entries:
            for entry in entries:
                if not entry.name.startswith(PREFIX):
                    continue
                present.add(entry.name)
                if entry.name in self._known:
                    continue
                try:
                    due = entry.stat().st_mtime_ns / 1e9
                except FileNotFoundError:
                    continue
                self._known.add(entry.name)
                if self._admissible(entry.name, now):
                    heapq.heappush(self._heap, (wake_time(due), entry.name))
        self._known &= present
        for name in list(self._suspects):
            if name not in present:
                self._forget(name)

    def _forget(self, name: str) -> None:
        self._suspects.pop(name, None)
        self._suspect_since.pop(name, None)

    def _holding_wakes(self, now: float) -> bool:
        return any(now - since < self.hold_wakes for since in self._suspect_since.values())

    def _admissible(self, name: str, now: float) -> bool:
        """Whether the file can be left to the spooler; quarantines it if it never can."""
        if self.failed_dir is None or self.max_body is None:
            return True
        path = self.spool_dir / name
        try:
            reason = files.check(path, max_body=self.max_body)
            if reason is None:
                self._forget(name)
                return True
            # ctime is wall-clock time, whatever clock drives the waker.
            changed = path.stat().st_ctime
            if time.time() - changed < self.settle or locks.is_locked(path):
                self._suspects[name] = now + self.settle  # maybe still being written
                self._suspect_since.setdefault(name, now)
                return False
            files.quarantine(path, self.failed_dir, reason)
        except (FileNotFoundError, BlockingIOError):
            pass  # gone, or a spooler took it meanwhile
        except OSError:
            logger.exception("could not look at spool file path=%s", path)
            return True
        else:
            self.quarantined += 1
            logger.error("spool file quarantined path=%s reason=%s", path, reason)
        self._forget(name)
        return False

    def _recheck_suspects(self, now: float) -> None:
        for name, when in list(self._suspects.items()):
            if when > now:
                continue
            if self._admissible(name, now):
                path = self.spool_dir / name
                try:
                    due = path.stat().st_mtime_ns / 1e9
                except FileNotFoundError:
                    continue
                heapq.heappush(self._heap, (wake_time(due), name))

    def step(self) -> float:
        """Scan if needed, wake the spooler for what is due; return seconds until the next step."""
        now = self._clock()
        self._scan(now)
        if self._suspects:
            self._recheck_suspects(now)
        if self._suspects and self._holding_wakes(now):
            return min(self.poll_interval, self.settle)  # nothing is woken meanwhile
        wake = False
        coarse_second: float | None = None
        while self._heap and self._heap[0][0] <= now:
            when, name = self._heap[0]
            if coarse_second is None:
                coarse_second = math.floor(self._coarse_clock())
            if coarse_second < math.floor(when):
                # uWSGI would still see the previous second and pass the file over.
                heapq.heapreplace(self._heap, (now + COARSE_RECHECK, name))
                continue
            heapq.heappop(self._heap)
            path = self.spool_dir / name
            if not path.exists():
                self._known.discard(name)
                continue
            if not locks.is_locked(path):
                wake = True
            # Look again later: a busy spooler may have passed the file over in its scan.
            heapq.heappush(self._heap, (now + self.rewake_interval, name))
        if wake:
            self.wakes += 1
            self._wake()
        until_due = self._heap[0][0] - now if self._heap else self.poll_interval
        return max(0.0, min(self.poll_interval, until_due))
