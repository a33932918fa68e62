"""The beat: which periodic fires are due, the misfire policy, and enqueueing each fire once.

It keeps no cursor beyond the ledger: on start each entry's next fire is computed from its
last claimed fire (or from now for an entry that never fired). A heap ordered by due time
makes an idle tick cost O(1) however many entries exist. Each fire is written ``lead``
seconds ahead as a spool file due at the fire time, and the waker signals the spooler at
that instant.

When a fire cannot be enqueued (the database unreachable, the spool directory full or
read-only) the beat tries again every ``retry_delay`` seconds, one attempt per tick whatever
the number of due entries (the others wait with it, so a dead database costs one connection
attempt a second, not one per entry). The first failure is logged with its traceback, the
following ones in one line at most every ``log_every`` seconds, and the first success after
an outage says how long it lasted.

A fire found more than ``late_after`` seconds late -- after downtime, a database outage or
the wall clock jumping forward -- is a misfire: the entry's policy decides what runs
(``coalesce``: the latest missed fire, once; ``all``: up to ``misfire_limit`` of the latest;
``skip``: nothing), and missed fires older than the entry's ``grace`` are dropped.

Pausing (``spoolcron pause``) is stored in the database; the beat reads the ledger's
``states_version()`` about once a second and all the states only when it changed, so every
beat on every host honours a pause or a resume within a second. A paused entry's fires are
not enqueued; a resume with ``catch_up`` applies the misfire policy to the fires missed while
paused (the same fires on every host: the ledger claims each once), one without skips them.

An entry's ``jitter`` delays each fire by a deterministic offset (``ResolvedEntry.due``):
the spool file is due at the delayed instant, the ledger claims the undelayed fire time.

Entries stored in the database change while the beat runs: given an ``EntrySource``, the beat
reads its ``version()`` at the same pace as the pause states and, when it changed, the
entries, which replace its own (``replace_entries``): a new entry or an edited schedule fires
from its next fire after now (never a past one), a removed entry stops.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from . import signals
from .entries import ResolvedEntry
from .fires import count_fires, fire_job_id, recent_fires
from .fires import next_fire as _next
from .logging import Throttled, one_line
from .payload import META_OVERLAP, META_PAUSE_AFTER_FAILURES, META_QUEUE, Payload
from .protocols import EntryPause, EntrySource, FireWriter, Ledger
from .reload import EntryReloading

__all__ = ["Beat", "Ledger", "count_fires", "fire_job_id", "recent_fires"]

logger = logging.getLogger("spoolcron.beat")


class Beat(EntryReloading):
    """Drive it with ``start()`` once, then ``tick()`` whenever the time it returns is up."""

    def __init__(
        self,
        entries: Sequence[ResolvedEntry],
        ledger: Ledger,
        writer: FireWriter,
        *,
        clock: Callable[[], float] = time.time,
        notify: Callable[[str, float], None] | None = None,
        lead: float = 0.5,
        late_after: float = 5.0,
        retry_delay: float = 1.0,
        log_every: float = 30.0,
        max_sleep: float = 1.0,
        state_every: float = 1.0,
        source: EntrySource | None = None,
    ) -> None:
        self.entries = [e for e in entries if e.enabled]
        self.source = source
        self._entries_token: object = object()
        self._entries_failing = Throttled(every=log_every)
        self.ledger = ledger
        self.writer = writer
        self.clock = clock
        self.notify = notify
        self.lead = lead
        self.late_after = late_after
        self.retry_delay = retry_delay
        self.max_sleep = max_sleep
        # (when to look at it, tie-breaker, entry index, fire time)
        self._heap: list[tuple[float, int, int, float]] = []
        self._seq = itertools.count()
        self.enqueued = 0
        self._failing = Throttled(every=log_every)
        self.state_every = state_every
        self._states: dict[str, EntryPause] = {}
        self._states_token: object = object()
        self._states_read = float("-inf")
        self._states_loaded = False
        self._states_failing = Throttled(every=log_every)
        # (entry index, paused since, resumed at): resumes asking for the missed fires.
        self._catch_ups: list[tuple[int, float, float]] = []

    def _push(self, index: int, fire_time: float | None, not_before: float | None = None) -> None:
        if fire_time is None:
            return  # a spent one-shot
        due = self.entries[index].due(fire_time)
        when = due - self.lead if not_before is None else max(not_before, due)
        heapq.heappush(self._heap, (when, next(self._seq), index, fire_time))

    def start(self) -> None:
        """Seed each entry's next fire from the ledger: missed fires then count as late."""
        now = self.clock()
        if self.source is not None:
            self._read_entries(now, starting=True)
        self._read_states(now)
        last = self.ledger.last_fires()
        # Remember since when each new entry is watched, so a first fire that falls in a
        # restart is caught up like any other missed fire.
        self.ledger.baseline([e.name for e in self.entries if e.name not in last], now)
        for index, entry in enumerate(self.entries):
            self._push(index, _next(entry.schedule, last.get(entry.name, now)))
        logger.info("beat started entries=%d", len(self.entries))

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def tick(self) -> float:
        """Enqueue what is due within ``lead``; return seconds until the next tick is needed."""
        now = self.clock()
        if now - self._states_read >= self.state_every:
            if self.source is not None:
                self._read_entries(now)
            self._read_states(now)
        self._catch_up(now)
        fresh = False
        while self._heap and self._heap[0][0] <= now:
            _, _, index, fire_time = heapq.heappop(self._heap)
            entry = self.entries[index]
            if self._paused(entry.name, now) and not fresh and now - self._states_read >= 0.5:
                # A resume may be less than a second old: look before dropping the fire.
                fresh = True
                self._read_states(now)
                self._catch_up(now)
            if self._paused(entry.name, now):
                self._skip_paused(index, fire_time, now)
                continue
            if entry.due(fire_time) < now - self.late_after:
                fires = self._apply_misfire_policy(entry, fire_time, now)
                following = _next(entry.schedule, max(now, fires[-1]) if fires else now)
            else:
                fires = [fire_time]
                following = _next(entry.schedule, fire_time)
            try:
                for fire in fires:
                    self._enqueue(entry, fire)
            except Exception as exc:
                # Database or disk trouble: look again shortly. By then the fire may be late,
                # and the misfire policy decides.
                self._push(index, fire_time, not_before=now + self.retry_delay)
                self._failed(entry, fire_time, exc, now)
                signals.send_beat(
                    signals.fire_failed, Beat, entry=entry.name, fire_time=fire_time, exception=exc
                )
                self._postpone_due(now)
                break
            if self._failing.failures:
                outage = self._failing.outage(now)
                logger.warning(
                    "beat enqueues again entry=%s failed_attempts=%d outage_s=%.1f",
                    entry.name,
                    self._failing.recovered(),
                    outage,
                )
            self._push(index, following)
        if not self._heap:
            return self.max_sleep
        return max(0.0, min(self.max_sleep, self._heap[0][0] - now))

    # --- pause state ------------------------------------------------------------------------

    def _paused(self, name: str, now: float) -> bool:
        state = self._states.get(name)
        return state is not None and state.active(now)

    def paused(self, name: str) -> EntryPause | None:
        """The entry's pause state as this beat last read it, if it is paused now."""
        state = self._states.get(name)
        return state if state is not None and state.active(self.clock()) else None

    def _read_states(self, now: float) -> None:
        """Read the pause states if their version changed; a failure keeps the known ones
        (none before the first read: a database not migrated yet pauses nothing)."""
        self._states_read = now
        initial = not self._states_loaded
        try:
            token = self.ledger.states_version()
            if token == self._states_token:
                return
            states = self.ledger.pause_states()
        except Exception as exc:
            if self._states_failing.failed(now):
                logger.warning(
                    "beat cannot read the pause states failed_attempts=%d error=%s",
                    self._states_failing.failures,
                    one_line(exc),
                )
            return
        if self._states_failing.failures:
            self._states_failing.recovered()
        index_of = {entry.name: index for index, entry in enumerate(self.entries)}
        for name, state in states.items():
            old = self._states.get(name)
            unchanged = old is not None and old.version == state.version
            if name not in index_of or initial or unchanged:
                continue
            if old is not None and old.active(now) and not state.active(now):
                logger.info("entry resumed entry=%s catch_up=%s", name, state.catch_up)
            elif state.active(now) and (old is None or not old.active(now)):
                logger.info("entry paused entry=%s note=%r", name, state.note)
            if (
                not state.paused
                and state.catch_up
                and state.since is not None
                and state.resumed_at is not None
            ):
                self._catch_ups.append((index_of[name], state.since, state.resumed_at))
        self._states = states
        self._states_token = token
        self._states_loaded = True

    def _skip_paused(self, index: int, fire_time: float, now: float) -> None:
        entry = self.entries[index]
        when = datetime.fromtimestamp(fire_time, UTC).isoformat()
        logger.debug("paused entry=%s fire=%s", entry.name, when)
        signals.send_beat(signals.fire_paused, Beat, entry=entry.name, fire_time=fire_time)
        self._push(index, _next(entry.schedule, max(now, fire_time)))

    def _catch_up(self, now: float) -> None:
        """Enqueue, by the misfire policy, the fires missed while a resumed entry was paused."""
        while self._catch_ups:
            index, since, resumed_at = self._catch_ups[0]
            entry = self.entries[index]
            first = _next(entry.schedule, since)
            fires: list[float] = []
            if first is not None and first <= resumed_at:
                fires = self._apply_misfire_policy(entry, first, resumed_at)
            try:
                for fire in fires:
                    self._enqueue(entry, fire)
            except Exception as exc:
                self._failed(entry, fires[0], exc, now)
                return  # tried again next tick
            self._catch_ups.pop(0)

    # --- failures -----------------------------------------------------------------------

    def _postpone_due(self, now: float) -> None:
        # The cause is shared (database, disk): the other due entries wait for the retry too.
        while self._heap and self._heap[0][0] <= now:
            _, _, index, fire_time = heapq.heappop(self._heap)
            self._push(index, fire_time, not_before=now + self.retry_delay)

    @property
    def failures(self) -> int:
        """Consecutive failed attempts to enqueue (0 while all is well)."""
        return self._failing.failures

    def _failed(self, entry: ResolvedEntry, fire_time: float, exc: Exception, now: float) -> None:
        if not self._failing.failed(now):
            return
        when = datetime.fromtimestamp(fire_time, UTC).isoformat()
        if self._failing.first:
            logger.error(
                "beat could not enqueue entry=%s fire=%s retry_in_s=%s",
                entry.name,
                when,
                self.retry_delay,
                exc_info=exc,
            )
        else:
            logger.warning(
                "beat still cannot enqueue entry=%s fire=%s failed_attempts=%d outage_s=%.1f "
                "retry_in_s=%s error=%s",
                entry.name,
                when,
                self._failing.failures,
                self._failing.outage(now),
                self.retry_delay,
                one_line(exc),
            )

    def _apply_misfire_policy(
        self, entry: ResolvedEntry, first_missed: float, now: float
    ) -> list[float]:
        after = first_missed - 1e-6
        if entry.grace is not None:
            after = max(after, now - entry.grace)
        if entry.misfire == "skip":
            fires: list[float] = []
        else:
            limit = 1 if entry.misfire == "coalesce" else entry.misfire_limit
            fires = recent_fires(entry.schedule, after, now, limit)
        logger.warning(
            "missed fires entry=%s first_missed=%s policy=%s grace_s=%s enqueued=%d",
            entry.name,
            datetime.fromtimestamp(first_missed, UTC).isoformat(),
            entry.misfire,
            entry.grace,
            len(fires),
        )
        if signals.fires_missed.has_listeners(Beat):
            missed = count_fires(entry.schedule, first_missed - 1e-6, now)
            signals.send_beat(
                signals.fires_missed,
                Beat,
                entry=entry.name,
                policy=entry.misfire,
                first_missed=first_missed,
                enqueued=len(fires),
                dropped=None if missed is None else max(0, missed - len(fires)),
            )
        return fires

    def _enqueue(self, entry: ResolvedEntry, fire_time: float) -> None:
        job_id = fire_job_id(entry.name, fire_time)
        due = entry.due(fire_time)
        payload = Payload(
            task=entry.task.name,
            job_id=job_id,
            run_after=due,
            args=list(entry.args),
            kwargs=dict(entry.kwargs),
            meta=_meta(entry),
            enqueued_at=self.clock(),
            entry=entry.name,
        )

        written: list[Path] = []

        def write() -> None:
            written.append(self.writer.write(payload))

        try:
            claimed = self.ledger.claim(entry.name, fire_time, job_id, write)
        except BaseException:
            # The claim rolled back: the file must not outlive it, or the fire could run
            # here and again on the host that claims it later.
            for path in written:
                self.writer.discard(path)
            raise
        if claimed:
            self.enqueued += 1
            if self.notify is not None:
                self.notify(payload.file_name, due)
            logger.debug("fire enqueued entry=%s job=%s", entry.name, job_id)
            signals.send_beat(
                signals.fire_enqueued,
                Beat,
                entry=entry.name,
                fire_time=fire_time,
                due=due,
                job_id=job_id,
                late=max(0.0, payload.enqueued_at - due),
            )
        else:
            logger.debug("fire claimed elsewhere entry=%s job=%s", entry.name, job_id)


def _meta(entry: ResolvedEntry) -> dict[str, object]:
    meta: dict[str, object] = {META_OVERLAP: entry.overlap}
    if entry.queue:
        meta[META_QUEUE] = entry.queue
    if entry.pause_after_failures is not None:
        meta[META_PAUSE_AFTER_FAILURES] = entry.pause_after_failures
    return meta
