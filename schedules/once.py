"""One-shot schedules: a single instant."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from typing import Any

from schedules.base import Schedule
from schedules.describe import clock
from schedules.errors import ScheduleError
from schedules.zones import localize, resolve_zone, to_utc, zone_name

__all__ = ["OUT_OF_RANGE", "Once"]

#: The problem and hint for a date-time that is not within years 1-9999 in UTC and its zone.
OUT_OF_RANGE = (
    "it falls outside the years 1-9999 in UTC or in the zone",
    None,
    "use a date-time from 0001-01-02 to 9999-12-30.",
)


class Once(Schedule):
    """Fires once, at ``at``; ``next_after`` returns ``None`` once it is spent.

    A naive ``at`` is a wall-clock time in ``tz`` (a time skipped by spring-forward means the
    first instant after the gap, a repeated one its first occurrence). An aware ``at`` is that
    instant; its zone becomes the schedule's zone when it is a ZoneInfo and ``tz`` is not given.
    """

    __slots__ = ("_at", "_utc")

    _at: datetime
    _utc: datetime

    def __init__(self, at: datetime, tz: str | zoneinfo.ZoneInfo | None = None) -> None:
        if not isinstance(at, datetime):
            raise TypeError(f"Once needs a datetime, got {at!r}")
        if tz is None and isinstance(at.tzinfo, zoneinfo.ZoneInfo):
            tz = at.tzinfo
        zone = resolve_zone(tz)
        try:
            if at.tzinfo is None or at.utcoffset() is None:
                fire = localize(at.replace(tzinfo=None), zone)
            else:
                fire = at.astimezone(zone)
            # Aware datetimes in one zone compare by wall clock and ignore fold, so equality
            # and the comparisons in next_after go through UTC.
            utc = fire.astimezone(UTC)
        except OverflowError:
            raise ScheduleError(f"Once({at!r})", *OUT_OF_RANGE) from None
        self._set("_at", fire)
        self._set("_utc", utc)
        self._set("_tz", zone)

    def next_after(self, dt: datetime) -> datetime | None:
        return self._at if self._utc > to_utc(dt) else None

    @property
    def at(self) -> datetime:
        """The fire time, aware, in the schedule's zone."""
        return self._at

    @property
    def hourly_or_faster(self) -> bool:
        return False

    def _local_text(self, separator: str) -> str:
        at = self.at
        text = f"{at.date().isoformat()}{separator}{clock(at.hour, at.minute, at.second)}"
        if at.microsecond:
            text += f".{at.microsecond:06d}"
        return text

    def __str__(self) -> str:
        text = f"once at {self._local_text(' ')}"
        # A wall-clock reading that happens twice needs its offset to name one instant.
        if _repeated(self.at):
            text += _offset_text(self.at)
        return text

    def describe(self) -> str:
        return f"once at {self._local_text(' ')} ({zone_name(self.tz)})"

    def _key(self) -> tuple[object, ...]:
        return (self._utc,)

    def _init_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.at,), {"tz": self.tz}


def _repeated(at: datetime) -> bool:
    """True when ``at``'s wall-clock reading also names another instant."""
    return at.utcoffset() != at.replace(fold=1 - at.fold).utcoffset()


def _offset_text(at: datetime) -> str:
    offset = at.utcoffset()
    assert offset is not None
    seconds = int(offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")
