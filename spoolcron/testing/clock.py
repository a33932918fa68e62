"""A frozen clock for tests, on time-machine or freezegun (whichever is installed, or chosen).

spoolcron reads the time through ``time.time()`` and ``datetime.now()`` at each use, so
either library moves every clock spoolcron looks at, and :func:`~spoolcron.testing.run_due`
runs what the new time makes due.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal

from django.utils import timezone

__all__ = ["FrozenClock"]

Library = Literal["time-machine", "freezegun"]


def _available() -> Library:
    if importlib.util.find_spec("time_machine") is not None:
        return "time-machine"
    if importlib.util.find_spec("freezegun") is not None:
        return "freezegun"
    raise RuntimeError("spoolcron.testing.FrozenClock needs time-machine or freezegun installed.")


def _aware(when: datetime | str) -> datetime:
    moment = datetime.fromisoformat(when) if isinstance(when, str) else when
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)  # TIME_ZONE, as Django reads naive times
    return moment


class FrozenClock:
    """``with FrozenClock("2026-03-28 12:00") as clock:`` time stands still at that instant
    (a naive one is in ``TIME_ZONE``) until ``clock.advance(...)`` or ``clock.move_to(...)``."""

    def __init__(self, start: datetime | str | None = None, *, library: Library | None = None):
        self.library: Library = library or _available()
        self._start = _aware(start) if start is not None else datetime.now(UTC)
        self._patcher: Any = None
        self._control: Any = None

    def __enter__(self) -> FrozenClock:
        if self.library == "time-machine":
            import time_machine

            self._patcher = time_machine.travel(self._start, tick=False)
        else:
            import freezegun

            self._patcher = freezegun.freeze_time(self._start)
        self._control = self._patcher.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._patcher.stop()
        self._patcher = self._control = None

    @property
    def now(self) -> datetime:
        """The frozen instant, aware, in UTC."""
        return datetime.now(UTC)

    def move_to(self, when: datetime | str) -> datetime:
        """Jump to ``when`` (forwards or backwards); return it."""
        moment = _aware(when)
        self._control.move_to(moment)
        return self.now

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        """Move forwards by ``delta`` or by ``timedelta(**parts)``, e.g. ``advance(days=1)``."""
        step = (delta or timedelta()) + timedelta(**parts)
        if self.library == "time-machine":
            self._control.shift(step)
        else:
            self._control.tick(step)
        return self.now
