"""The spoolcron mule's loop: runs the beat, publishes what comes due from the pending store,
wakes the spooler when jobs fall due, heartbeats, prunes old history. A plain class: uWSGI's
adapter wires it, tests drive it step by step with their own clock, wake-up and pid lookup."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..core.beat import Beat
from ..core.logging import Throttled
from ..core.protocols import PendingStore
from ..spool import heartbeat
from ..spool.waker import Waker
from ..spool.wakers import Wakers

__all__ = ["MuleLoop"]

logger = logging.getLogger("spoolcron.uwsgi")


class MuleLoop:
    """Call :meth:`step` forever (``run``); each returns how long to sleep before the next."""

    def __init__(
        self,
        beat: Beat,
        waker: Waker | Wakers,
        *,
        spool_dir: Path,
        spooler_pids: Callable[[], list[int]],
        prune: Callable[[], object],
        store: PendingStore | None = None,
        publish_lead: float = 1.0,
        refresh: Callable[[], None] = lambda: None,
        frequency: int | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        start_retry: float = 1.0,
        heartbeat_every: float = 1.0,
        prune_every: float = 3600.0,
        log_every: float = 30.0,
        problems: Sequence[str] = (),
        nag_every: float = 600.0,
    ) -> None:
        self.beat = beat
        self.waker = waker
        self.spool_dir = spool_dir
        self.spooler_pids = spooler_pids
        self.prune = prune
        self.store = store
        self.publish_lead = publish_lead
        self.refresh = refresh
        self.frequency = frequency
        self.clock = clock
        self.sleep = sleep
        self.start_retry = start_retry
        self.heartbeat_every = heartbeat_every
        self.prune_every = prune_every
        # Invalid entries the beat runs without: said again now and then, until fixed.
        self.problems = list(problems)
        self.nag_every = nag_every
        self._next_nag = float("-inf")
        self.started = False
        self._starting = Throttled(every=log_every)
        self._beating = Throttled(every=log_every)
        self._publishing = Throttled(every=log_every)
        self._next_start = self._next_heartbeat = self._next_prune = 0.0
        self._published = 0

    def _start(self, now: float) -> None:
        # Without the database the beat waits; the waker goes on waking the spooler.
        try:
            self.beat.start()
        except Exception as exc:
            _failed(self._starting, "beat could not read the ledger", exc, now)
            self.refresh()
            self._next_start = now + self.start_retry
            return
        self.started = True
        _recovered(self._starting, "beat could not read the ledger")
        logger.info("spoolcron mule started pid=%d spool_dir=%s", os.getpid(), self.spool_dir)

    def _heartbeat(self, now: float) -> None:
        self._next_heartbeat = now + self.heartbeat_every
        try:
            heartbeat.write(
                self.spool_dir, spooler_pids=self.spooler_pids(), frequency=self.frequency
            )
        except OSError as exc:
            _failed(self._beating, "could not write the heartbeat", exc, now)
        else:
            _recovered(self._beating, "could not write the heartbeat")

    def _publish(self, now: float) -> float:
        """Move what comes due within ``publish_lead`` into the spool directory (the waker
        wakes the spooler at each one's instant); return how long until the next is due."""
        if self.store is None:
            return self.heartbeat_every
        try:
            while True:
                published = self.store.publish_due(now + self.publish_lead)
                for job in published:
                    self.waker.notify(job.file_name, job.due, job.spool_dir)
                self._published += len(published)
                if len(published) < 1000:
                    break
            following = self.store.next_due(now)
        except Exception as exc:
            _failed(self._publishing, "could not publish from the pending store", exc, now)
            self.refresh()
            return self.start_retry
        _recovered(self._publishing, "could not publish from the pending store")
        if following is None:
            return self.heartbeat_every
        return max(0.0, following - self.publish_lead - now)

    def _maintain(self, now: float) -> None:
        assert self.store is not None
        try:
            self.store.maintain(now)
        except Exception:
            logger.exception("pending store housekeeping failed")

    def step(self) -> float:
        """One turn: start or tick the beat, wake the spooler, heartbeat, prune."""
        now = self.clock()
        # A file another process just wrote (a job due now) is woken for first: the beat's
        # tick and the store may wait for the database (a round trip, a busy SQLite file).
        self.waker.step()
        if not self.started and now >= self._next_start:
            self._start(now)
        # Each delay counts from the instant it was computed: what the turn spends after it
        # (the store, the heartbeat) would otherwise make the next wake that much late.
        ticked = self.clock()
        beat_at = ticked + (self.beat.tick() if self.started else self._next_start - ticked)
        if beat_at > ticked:
            self.refresh()
        # Then the fires the tick wrote, before asking the store (its I/O is the database's
        # round trip for the database store).
        woken = self.clock()
        wake_at = woken + self.waker.step()
        self._published = 0
        publish_at = now + self._publish(now)
        if self._published:
            woken = self.clock()
            wake_at = woken + self.waker.step()  # the jobs just published
        next_at = min(beat_at, publish_at, wake_at)
        now = self.clock()
        if now >= self._next_heartbeat:
            self._heartbeat(now)
            if self.store is not None:
                self._maintain(now)
        if self.problems and now >= self._next_nag:
            self._next_nag = now + self.nag_every
            for problem in self.problems:
                logger.error("invalid entry, not run: %s", problem)
        if self.started and now >= self._next_prune:
            self._next_prune = now + self.prune_every
            try:
                self.prune()
            except Exception:
                logger.exception("could not prune the run history")
        return max(0.0, next_at - self.clock())

    def run(self, *, max_steps: int | None = None) -> None:
        """Step and sleep, forever or ``max_steps`` times."""
        steps = 0
        while max_steps is None or steps < max_steps:
            self.sleep(self.step())
            steps += 1


def _failed(state: Throttled, what: str, exc: BaseException, now: float) -> None:
    if state.failed(now):
        if state.first:
            logger.error("%s, retrying", what, exc_info=exc)
        else:
            logger.warning("%s, still failing failed_attempts=%d", what, state.failures)


def _recovered(state: Throttled, what: str) -> None:
    failures = state.recovered()
    if failures:
        logger.warning("%s: works again after failed_attempts=%d", what, failures)
