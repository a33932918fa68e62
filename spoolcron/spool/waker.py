"""Wakes the uWSGI spooler at the instant each spool file becomes due.

uWSGI's spooler looks at its directory every ``--spooler-frequency`` seconds (30 by default)
and compares ``at`` (the file's mtime) in whole seconds, so on its own a job runs up to a
whole frequency late. The waker runs in the spoolcron mule: it watches the spool directory,
keeps a heap of the files' due times, and signals the spooler (SIGUSR1) at each due instant.

* **Which instant.** spoolcron writes each file with an ``at`` second that begins at least
  0.1 s before its due instant (``core.payload.spool_at``) and the precise due time in its
  arguments (``due``), so by the due instant uWSGI's ``time(NULL)`` -- the kernel's coarse
  clock, which turns a new second 1-10 ms after the precise one -- has passed ``at``: the
  waker only waits for that clock when it lags by more (it checks). It wakes the spooler
  ``lead`` seconds (a few ms) before the due instant, which covers the signal, uWSGI's
  directory scan and the decoding of the file; the dispatcher then sleeps out the remainder,
  so jobs start on time, never early. A file
  without ``due`` (written by an earlier release) is due at its mtime and is woken for once
  the coarse clock has reached that second, as before.
* **Noticing new files.** The kernel's inotify reports each file renamed, linked or written
  into the directory by any process, so a job enqueued elsewhere is seen at once; ``wait``
  blocks until the next step is due or such a file appears. Where inotify is missing (not
  Linux, no watches left, or ``watch=False``) the waker polls the directory's mtime every
  ``poll_interval`` seconds instead. Either way the whole directory is rescanned every
  ``rescan_interval`` seconds.

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

from ..core.payload import due_of
from ..exceptions import SpoolFileError
from . import files, locks
from .codec import PREFIX, check_header, decode
from .inotify import DirectoryWatch

__all__ = [
    "COARSE_LAG",
    "EVENT_DELAY",
    "FIRE_LEAD",
    "WAKE_LEAD",
    "Waker",
    "coarse_time",
    "wake_time",
]

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
# The usual lag: the first look at a file due at its mtime's whole second (written by an
# earlier release) waits this long past it, then the waker checks the coarse clock itself (the
# lag has been seen at 6 ms where the tick is 4 ms).
COARSE_LAG = _coarse_lag()
# How soon to look again while the coarse clock has not reached a file's `at` second.
COARSE_RECHECK = 0.001

EVENT_DELAY = 0.003
"""How long the mule lets a new file's event wait before it looks: the writer of a job due now
wakes the spoolers itself (``Publisher.to_spool``), and a mule reading the same file at that
instant takes a CPU from the spooler it woke -- on a two-core host the job due now then waits
milliseconds for one. After 3 ms that spooler holds the file and the mule leaves it; a file
whose writer wakes nobody (``uwsgi.spool()`` in other code) is woken 3 ms later."""

WAKE_LEAD = 0.002
"""How long before a file's due instant the spooler is woken: the signal, uWSGI's scan and the
decoding of the file take a few tenths of a millisecond on an idle machine, and the dispatcher
sleeps out what remains (it waits up to ``dispatch.MAX_EARLY_WAIT``, 5 ms). Not longer: a
spooler sleeping out the lead cannot start a job due now meanwhile."""

FIRE_LEAD = 0.005
"""The lead of a periodic entry's fire (the beat's ``notify``): before its task the dispatcher
asks the database whether the entry's previous run still goes (``overlap="skip"``, the
default), a query on a connection opened for it, which does not fit in ``WAKE_LEAD``. At
most ``dispatch.MAX_EARLY_WAIT``, or the woken spooler would put the file back."""


def wake_time(due: float, at: float | None = None, *, lead: float = WAKE_LEAD) -> float:
    """When to first look at waking the spooler for a file due at ``due`` whose mtime is
    ``at`` (default: ``due``, a file of an earlier release): ``lead`` seconds before the due
    instant, but not before uWSGI can see the file (the coarse clock past ``at``'s second)."""
    mtime = due if at is None else at
    return max(due - lead, math.floor(mtime) + COARSE_LAG)


def settle_event(delay: float, deadline: float) -> None:
    """Let an event wait ``delay`` seconds (see EVENT_DELAY), but not past ``deadline``
    (``time.monotonic()``), when the next step is due anyway."""
    pause = min(delay, deadline - time.monotonic())
    if pause > 0:
        time.sleep(pause)


def _due_from_head(head: bytes, mtime: float) -> float:
    try:
        args, _ = decode(head)
    except SpoolFileError:
        return mtime
    return due_of(args, mtime)


class Waker:
    """One step at a time (``step``), so the mule's loop and tests can drive it with any clock.

    Between steps, call ``wait(seconds)`` with what ``step`` returned: it returns early when a
    file appears in the directory. Until ``wait`` is first called, ``step`` answers at most
    ``poll_interval`` (the caller sleeps by itself, so the directory must be polled).
    """

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
        lead: float = WAKE_LEAD,
        watch: bool = True,
        failed_dir: Path | None = None,
        max_body: int | None = None,
        settle: float = 0.1,
        hold_wakes: float = 1.0,
        event_delay: float = 0.0,
    ) -> None:
        self.spool_dir = spool_dir
        self._wake = wake
        self._clock = clock
        self._coarse_clock = coarse_clock
        self.poll_interval = poll_interval
        self.rescan_interval = rescan_interval
        self.rewake_interval = rewake_interval
        self.lead = lead
        self.failed_dir = failed_dir
        self.max_body = max_body
        self.settle = settle
        self.hold_wakes = hold_wakes
        self.event_delay = event_delay
        self._suspects: dict[str, float] = {}  # name -> when to look at it again
        self._suspect_since: dict[str, float] = {}
        self.quarantined = 0
        self._dir_mtime_ns = -1
        self._next_rescan = 0.0
        self._known: set[str] = set()
        # (when to look at the file, name, the whole second of its mtime: uWSGI's `at`)
        self._heap: list[tuple[float, str, int]] = []
        self.wakes = 0
        self._wants_watch = watch
        self._watch = DirectoryWatch.open(spool_dir) if watch else None
        self._waited = False

    @property
    def watch_fd(self) -> int | None:
        """The inotify descriptor that becomes readable when a file appears; None: polled."""
        return None if self._watch is None else self._watch.fileno()

    @property
    def watching(self) -> bool:
        """Whether inotify tells the waker about new files (else it polls)."""
        return self._watch is not None

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def wait(self, timeout: float) -> None:
        """Sleep ``timeout`` seconds, or less if a file appears in the spool directory
        (``event_delay`` seconds after it appeared, at most ``timeout``)."""
        self._waited = True
        if self._watch is None:
            time.sleep(max(0.0, timeout))
            return
        began = time.monotonic()
        if self._watch.wait(timeout):
            settle_event(self.event_delay, began + timeout)

    def notify(
        self, name: str, due: float, spool_dir: Path | None = None, *, lead: float | None = None
    ) -> None:
        """Tell the waker about a file this process wrote, without waiting for a scan
        (``spool_dir``: the file's directory, when it may be another waker's; ``lead``: wake
        that long before ``due``, default the waker's)."""
        if name in self._known or (spool_dir is not None and spool_dir != self.spool_dir):
            return
        try:
            mtime = os.stat(self.spool_dir / name).st_mtime_ns / 1e9
        except FileNotFoundError:
            return  # run and gone already
        self._known.add(name)
        self._push(due, mtime, name, lead)

    def _push(self, due: float, mtime: float, name: str, lead: float | None = None) -> None:
        when = wake_time(due, mtime, lead=self.lead if lead is None else lead)
        heapq.heappush(self._heap, (when, name, math.floor(mtime)))

    def _look_at(self, appeared: set[str], changed: set[str], now: float) -> None:
        for name in appeared:
            # A name seen before is a new file too (it replaced one, or reuses a gone one's
            # name before the next rescan forgets it): at worst one more look at the spooler.
            if name.startswith(PREFIX):
                self._forget(name)
                self._consider(name, now)
        for name in changed - appeared:
            if name.startswith(PREFIX) and name not in self._known:
                self._consider(name, now)

    def _scan(self, now: float) -> None:
        if self._watch is not None:
            self._look_at(*self._watch.take(), now)
            if self._watch.broken or self._watch.overflowed:
                self._watch.close()
                self._watch = None
                self._next_rescan = 0.0  # find what the lost events named
        if self._watch is None and self._wants_watch and now >= self._next_rescan:
            # The directory may exist again, or a watch may be free again.
            self._watch = DirectoryWatch.open(self.spool_dir)
        try:
            mtime_ns = os.stat(self.spool_dir).st_mtime_ns
        except FileNotFoundError:
            return
        # Two renames within one timestamp tick leave the mtime unchanged: rescan now and then.
        changed = mtime_ns != self._dir_mtime_ns and self._watch is None
        if not changed and now < self._next_rescan:
            return
        self._dir_mtime_ns = mtime_ns
        self._next_rescan = now + self.rescan_interval
        present = set()
        with os.scandir(self.spool_dir) as entries:
            for entry in entries:
                if not entry.name.startswith(PREFIX):
                    continue
                present.add(entry.name)
                if entry.name not in self._known:
                    self._consider(entry.name, now)
        self._known &= present
        for name in list(self._suspects):
            if name not in present:
                self._forget(name)

    def _consider(self, name: str, now: float) -> None:
        """A file not seen before: schedule its wake, unless it must wait or be moved aside."""
        self._known.add(name)
        looked = self._admissible(name, now)
        if looked is not None:
            due, mtime = looked
            self._push(due, mtime, name)

    def _forget(self, name: str) -> None:
        self._suspects.pop(name, None)
        self._suspect_since.pop(name, None)

    def _holding_wakes(self, now: float) -> bool:
        return any(now - since < self.hold_wakes for since in self._suspect_since.values())

    def _admissible(self, name: str, now: float) -> tuple[float, float] | None:
        """The file's due time and mtime if it can be left to the spooler; None if it must
        wait (maybe still being written) or was quarantined (uWSGI never could run it)."""
        path = self.spool_dir / name
        try:
            head, size, mtime = files.read_head(path)
        except FileNotFoundError:
            self._known.discard(name)
            self._forget(name)
            return None
        except OSError:
            logger.exception("could not look at spool file path=%s", path)
            try:
                mtime = path.stat().st_mtime_ns / 1e9
            except OSError:
                return None
            return mtime, mtime
        due = _due_from_head(head, mtime)
        if self.failed_dir is None or self.max_body is None:
            return due, mtime
        try:
            reason = check_header(head, size, name=os.fspath(path), max_body=self.max_body)
            if reason is None:
                self._forget(name)
                return due, mtime
            # ctime is wall-clock time, whatever clock drives the waker.
            changed = path.stat().st_ctime
            if time.time() - changed < self.settle or locks.is_locked(path):
                self._suspects[name] = now + self.settle  # maybe still being written
                self._suspect_since.setdefault(name, now)
                return None
            files.quarantine(path, self.failed_dir, reason)
        except (FileNotFoundError, BlockingIOError):
            pass  # gone, or a spooler took it meanwhile
        except OSError:
            logger.exception("could not look at spool file path=%s", path)
            return due, mtime
        else:
            self.quarantined += 1
            logger.error("spool file quarantined path=%s reason=%s", path, reason)
        self._forget(name)
        return None

    def _recheck_suspects(self, now: float) -> None:
        for name, when in list(self._suspects.items()):
            if when > now:
                continue
            looked = self._admissible(name, now)
            if looked is not None:
                due, mtime = looked
                self._push(due, mtime, name)

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
            _, name, at_second = self._heap[0]
            if coarse_second is None:
                coarse_second = math.floor(self._coarse_clock())
            if coarse_second < at_second:
                # uWSGI would still see an earlier second and pass the file over.
                heapq.heapreplace(self._heap, (now + COARSE_RECHECK, name, at_second))
                continue
            heapq.heappop(self._heap)
            path = self.spool_dir / name
            if not path.exists():
                self._known.discard(name)
                continue
            if not locks.is_locked(path):
                wake = True
            # Look again later: a busy spooler may have passed the file over in its scan.
            heapq.heappush(self._heap, (now + self.rewake_interval, name, at_second))
        if wake:
            self.wakes += 1
            self._wake()
        # Watched and waited on, nothing needs a poll: the next rescan bounds the wait.
        watched = self._watch is not None and self._waited
        delay = self.rescan_interval if watched else self.poll_interval
        if self._heap:
            delay = min(delay, self._heap[0][0] - now)
        if self._suspects:
            delay = min(delay, min(self._suspects.values()) - now)
        return max(0.0, delay)
