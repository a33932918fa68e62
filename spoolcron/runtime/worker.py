"""The foreground worker (``manage.py spoolcron worker``): the spooler and the mule in one process.

Under uWSGI the mule runs the beat, publishes what comes due from the pending store, wakes the
spooler and heartbeats, and the spooler runs the jobs. Here one loop does both: the mule's
loop (:class:`~spoolcron.runtime.mule.MuleLoop`, the same beat, ledger claims, store
publishing and heartbeat) whose waker, instead of signalling a spooler, tells the worker that
a file is due; the worker then runs the due spool files itself, each locked the way uWSGI's
spooler locks it (so a spooler or another worker on the same directory never runs it too),
with the same dispatch, retries and history.

It is one process: jobs run one at a time, and while a job runs the beat does not tick (a fire
due meanwhile is enqueued when the job returns, late; past ``Beat.late_after`` the entry's
misfire policy decides).

The class only loops; what it runs against (ledger, recorder, publisher, clock) is injected by
the adapter (the ``spoolcron`` command) or a test. :func:`stop_on_signals` gives it the
Ctrl-C behaviour: a first SIGINT or SIGTERM lets the running job finish, a second aborts.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from ..core.beat import Beat
from ..core.entries import ResolvedEntry
from ..core.payload import due_of
from ..core.protocols import EntrySource, FireWriter, Ledger, Recorder
from ..exceptions import SpoolFileError
from ..spool import files, heartbeat
from ..spool.waker import FIRE_LEAD, Waker
from .dispatch import MAX_EARLY_WAIT, Outcome, Result
from .mule import MuleLoop, _failed, _recovered
from .publish import Publisher
from .runner import run_file

__all__ = ["Worker", "WorkerReport", "stop_on_signals"]

logger = logging.getLogger("spoolcron.worker")

"""What counts as a failed job for ``--once``'s exit status (as for ``run-due``)."""

_RAN = frozenset(
    {
        Outcome.SUCCEEDED,
        Outcome.RETRYING,
        Outcome.FAILED,
        Outcome.QUARANTINED,
        Outcome.SKIPPED,
        Outcome.EXPIRED,
    }
)


@dataclass
class WorkerReport:
    """What a worker ran before it returned."""

    results: list[Result] = field(default_factory=list)
    stopped_by: str = ""
    """Why it returned: "once", "max-jobs", "stop" (a signal or :meth:`Worker.stop`)."""

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.outcome.is_failure]


class _Loop(MuleLoop):
    """The mule's loop whose heartbeat says a worker (this process) runs the jobs."""

    def _heartbeat(self, now: float) -> None:
        self._next_heartbeat = now + self.heartbeat_every
        try:
            heartbeat.write(self.spool_dir, spooler_pids=[os.getpid()], frequency=None, worker=True)
        except OSError as exc:
            _failed(self._beating, "could not write the heartbeat", exc, now)
        else:
            _recovered(self._beating, "could not write the heartbeat")


class Worker:
    """Run :meth:`run` (until stopped) or :meth:`run_once` (what is due now, then return).

    ``entries`` and ``ledger``: the beat's (``beat=False``: no beat, jobs only); ``source``,
    if given, replaces the entries while it runs (database entries). ``writer``
    writes claimed fires into ``spool_dir``; ``recorder`` and ``publisher`` are dispatch's.
    ``on_result`` is called after each job; ``max_jobs`` makes :meth:`run` return after that
    many. ``stop_event`` lets another thread (a signal handler) ask it to stop between jobs.
    """

    def __init__(
        self,
        entries: Sequence[ResolvedEntry],
        ledger: Ledger,
        writer: FireWriter,
        recorder: Recorder,
        publisher: Publisher,
        *,
        spool_dir: Path,
        failed_dir: Path | None = None,
        max_body: int | None = None,
        beat: bool = True,
        max_jobs: int | None = None,
        on_result: Callable[[Result], None] = lambda result: None,
        prune: Callable[[], object] = lambda: None,
        refresh: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        watch: bool = True,
        scan_every: float = 1.0,
        max_wait: float = 0.25,
        stop_event: threading.Event | None = None,
        source: EntrySource | None = None,
    ) -> None:
        self.entries = list(entries) if beat else []
        self.source = source if beat else None
        self.ledger = ledger
        self.writer = writer
        self.recorder = recorder
        self.publisher = publisher
        self.spool_dir = spool_dir
        self.failed_dir = failed_dir
        self.max_body = max_body
        self.max_jobs = max_jobs
        self.on_result = on_result
        self.prune = prune
        self.refresh = refresh
        self.clock = clock
        self.watch = watch
        self.scan_every = scan_every
        self.max_wait = max_wait
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self._woken = True
        self._next_scan = 0.0
        self.report = WorkerReport()

    # --- control ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Return from :meth:`run` once the running job (if any) has finished."""
        self.stop_event.set()

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def _wake(self) -> None:
        # The waker's "signal the spooler": a file is due, look at the directory.
        self._woken = True

    def _done(self) -> bool:
        if self.stopping:
            self.report.stopped_by = self.report.stopped_by or "stop"
            return True
        if self.max_jobs is not None and len(self.report.results) >= self.max_jobs:
            self.report.stopped_by = "max-jobs"
            return True
        return False

    # --- running files -------------------------------------------------------------------

    def _due_files(self, now: float) -> list[Path]:
        """The spool files due by ``now`` (their precise due, not their ``at``), oldest first."""
        try:
            paths = files.list_files(self.spool_dir)
        except FileNotFoundError:
            return []
        due = []
        for path in paths:
            try:
                at = path.stat().st_mtime
            except FileNotFoundError:
                continue
            if at > now:
                continue
            try:
                file = files.read(path)
            except FileNotFoundError:
                continue
            except SpoolFileError:
                due.append((at, path))  # run_file quarantines it (unless still being written)
                continue
            when = due_of(file.args, file.at)
            if when <= now + MAX_EARLY_WAIT:
                due.append((when, path))
        return [path for _, path in sorted(due)]

    def _run_due_files(self, between: Callable[[], object] = lambda: None) -> None:
        for path in self._due_files(self.clock()):
            if self._done():
                return
            result = run_file(path, self.recorder, self.publisher, now=self.clock)
            if result is None or result.outcome not in _RAN:
                continue
            self.report.results.append(result)
            self.on_result(result)
            between()

    # --- the loops -------------------------------------------------------------------------

    def _beat(self, *, lead: float, waker: Waker | None) -> Beat:
        return Beat(
            self.entries,
            self.ledger,
            self.writer,
            clock=self.clock,
            notify=None if waker is None else functools.partial(waker.notify, lead=FIRE_LEAD),
            lead=lead,
            source=self.source,
        )

    def run_once(self) -> WorkerReport:
        """Enqueue what the beat owes now, publish what the pending store holds due by now,
        run every job due by now (retries due later wait), and return.

        A ledger that cannot be read raises (the caller reports it), unlike :meth:`run`,
        which waits for the database to come back.
        """
        beat = self._beat(lead=0.0, waker=None)
        beat.start()
        now = self.clock()
        store = self.publisher.store
        if store is not None:
            while len(store.publish_due(now)) >= 1000:
                pass
        beat.tick()
        self._run_due_files()
        self.report.stopped_by = self.report.stopped_by or "once"
        return self.report

    def run(self) -> WorkerReport:
        """Loop until :meth:`stop` (or ``max_jobs`` jobs ran): the mule's step, then the due
        files, then wait for the next step or a new file in the spool directory."""
        files.ensure_dir(self.spool_dir)
        waker = Waker(
            self.spool_dir,
            self._wake,
            clock=self.clock,
            watch=self.watch,
            failed_dir=self.failed_dir,
            max_body=self.max_body,
        )
        loop = _Loop(
            self._beat(lead=0.5, waker=waker),
            waker,
            spool_dir=self.spool_dir,
            spooler_pids=lambda: [os.getpid()],
            prune=self.prune,
            store=self.publisher.store,
            refresh=self.refresh,
            clock=self.clock,
        )
        logger.info(
            "spoolcron worker started pid=%d spool_dir=%s beat=%s inotify=%s",
            os.getpid(),
            self.spool_dir,
            "on" if self.entries else "off",
            "on" if waker.watching else "off",
        )
        try:
            while not self._done():
                delay = loop.step()
                now = self.clock()
                if self._woken or now >= self._next_scan:
                    self._woken = False
                    self._next_scan = now + self.scan_every
                    # Between jobs the beat ticks and the heartbeat goes on.
                    self._run_due_files(between=loop.step)
                    if self._woken:
                        continue
                if self._done():
                    break
                waker.wait(min(delay, self.max_wait, max(0.0, self._next_scan - self.clock())))
        finally:
            waker.close()
            logger.info(
                "spoolcron worker stopped pid=%d jobs=%d reason=%s",
                os.getpid(),
                len(self.report.results),
                self.report.stopped_by,
            )
        return self.report


@contextlib.contextmanager
def stop_on_signals(
    stop: Callable[[], None],
    *,
    notice: Callable[[str], None] = lambda message: None,
    signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM),
) -> Iterator[None]:
    """While the block runs, the first of ``signals`` calls ``stop`` (the running job
    finishes) and the second raises KeyboardInterrupt (it aborts). Main thread only."""
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        name = signal.Signals(signum).name
        if len(received) == 1:
            notice(
                f"{name} received: finishing the running job, then stopping "
                f"({name} again aborts it)."
            )
            stop()
            return
        notice(f"{name} received again: aborting.")
        raise KeyboardInterrupt(name)

    previous = {signum: signal.signal(signum, handler) for signum in signals}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
