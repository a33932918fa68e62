"""Replacing a running beat's entries (those stored in the database change while it runs):
the part of :class:`~spoolcron.core.beat.Beat` that reads its ``EntrySource`` and swaps the
entries without losing or repeating a fire. A mixin only to keep beat.py readable: it uses
the beat's heap and ledger as they are."""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable, Sequence

from .entries import ResolvedEntry
from .fires import next_fire as _next
from .logging import Throttled, one_line
from .protocols import EntrySource, Ledger

__all__ = ["EntryReloading"]

logger = logging.getLogger("spoolcron.beat")


class EntryReloading:
    """``replace_entries`` and the periodic read of the source, for the Beat."""

    entries: list[ResolvedEntry]
    ledger: Ledger
    clock: Callable[[], float]
    source: EntrySource | None
    _heap: list[tuple[float, int, int, float]]
    _seq: itertools.count[int]
    _catch_ups: list[tuple[int, float, float]]
    _entries_token: object
    _entries_failing: Throttled

    def _push(self, index: int, fire_time: float | None, not_before: float | None = None) -> None:
        raise NotImplementedError

    def _read_entries(self, now: float, *, starting: bool = False) -> None:
        """Replace the entries if the source's version changed; a failure keeps the known
        ones (at start: the declared ones), and the next read tries again."""
        assert self.source is not None
        try:
            token = self.source.version()
            if token == self._entries_token:
                return
            entries = self.source.entries()
            if starting:
                self.entries = [e for e in entries if e.enabled]
            else:
                self.replace_entries(entries, now=now)
        except Exception as exc:
            if self._entries_failing.failed(now):
                logger.warning(
                    "beat cannot read the entries failed_attempts=%d error=%s",
                    self._entries_failing.failures,
                    one_line(exc),
                )
            return
        if self._entries_failing.failures:
            self._entries_failing.recovered()
        self._entries_token = token

    def replace_entries(
        self, entries: Sequence[ResolvedEntry], *, now: float | None = None
    ) -> None:
        """Run ``entries`` from now on. An unchanged entry keeps its pending fire; one with a
        new schedule, and a new one, fire from their next fire after ``now`` (no past fire
        runs; new ones get a ledger baseline, so a restart does not catch up before now);
        a removed or disabled one stops. Raises, changing nothing, if the ledger does."""
        current = self.clock() if now is None else now
        wanted = [e for e in entries if e.enabled]
        old = {e.name: e for e in self.entries}
        added = [e.name for e in wanted if e.name not in old]
        if added:
            self.ledger.baseline(added, current)
        pending: dict[str, list[tuple[float, float]]] = {}
        for when, _, index, fire_time in self._heap:
            pending.setdefault(self.entries[index].name, []).append((when, fire_time))
        catch_ups = [(self.entries[i].name, since, at) for i, since, at in self._catch_ups]
        self.entries = wanted
        self._heap = []
        changed = 0
        for index, entry in enumerate(wanted):
            before = old.get(entry.name)
            if before is None or before.schedule != entry.schedule:
                changed += before is not None
                self._push(index, _next(entry.schedule, current))
                continue
            changed += before != entry
            for when, fire_time in pending.get(entry.name, []):
                if before.jitter == entry.jitter:  # the same instant: keep when to look
                    heapq.heappush(self._heap, (when, next(self._seq), index, fire_time))
                else:
                    self._push(index, fire_time)
        index_of = {entry.name: index for index, entry in enumerate(wanted)}
        self._catch_ups = [(index_of[n], s, r) for n, s, r in catch_ups if n in index_of]
        logger.info(
            "beat entries changed entries=%d added=%d changed=%d removed=%d",
            len(wanted),
            len(added),
            changed,
            len(set(old) - set(index_of)),
        )
