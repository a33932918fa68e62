"""Fixed intervals anchored to the Unix epoch: every process computes the same instants."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any

from schedules.base import Schedule
from schedules.errors import ScheduleError
from schedules.zones import resolve_zone, to_utc, zone_name

__all__ = ["MAX_SECONDS", "Interval", "period_problem"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The longest period: 100 years of 365.25 days. Longer ones would fire once or never.
MAX_SECONDS = 100 * 36525 * 864


def period_problem(total: int) -> tuple[str, str]:
    """The problem and hint for a period of ``total`` seconds outside 1..MAX_SECONDS."""
    if total < 1:
        return f"the period is {total} seconds", "use 1 second or more."
    return (
        "the period is more than 100 years",
        "use at most 876,600 hours, or 'once at' a date-time for a job that runs once.",
    )


_UNITS = ((3600, "hour"), (60, "minute"), (1, "second"))


class Interval(Schedule):
    """Fires every ``seconds`` seconds, at the instants that are whole multiples of the
    period since 1970-01-01T00:00:00Z: ``every 5 minutes`` fires at :00, :05, … UTC.

    Intervals follow absolute time, so a DST change neither doubles nor skips a fire. The zone
    only sets the zone of the returned datetimes. Because the anchor is UTC, ``every hour``
    fires at local :30 in a zone with a half-hour offset; use ``every hour at :00`` (an
    ``Hourly`` schedule) to follow the local hour instead.
    """

    __slots__ = ("_period_us", "_seconds")

    _seconds: int
    _period_us: int

    def __init__(
        self,
        seconds: int = 0,
        *,
        minutes: int = 0,
        hours: int = 0,
        tz: str | zoneinfo.ZoneInfo | None = None,
    ) -> None:
        for name, value in (("seconds", seconds), ("minutes", minutes), ("hours", hours)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Interval {name} must be an int, got {value!r}")
        total = seconds + 60 * minutes + 3600 * hours
        if not 1 <= total <= MAX_SECONDS:
            call = f"Interval(seconds={seconds}, minutes={minutes}, hours={hours})"
            problem, hint = period_problem(total)
            raise ScheduleError(call, problem, None, hint, subject="schedule")
        self._set("_seconds", total)
        self._set("_period_us", total * 1_000_000)
        self._set("_tz", resolve_zone(tz))

    def next_after(self, dt: datetime) -> datetime | None:
        elapsed = to_utc(dt) - _EPOCH
        # Integer microseconds: float timestamps would drift off the grid for long periods.
        micros = (elapsed.days * 86_400 + elapsed.seconds) * 1_000_000 + elapsed.microseconds
        fire = (micros // self._period_us + 1) * self._period_us
        try:
            return (_EPOCH + timedelta(microseconds=fire)).astimezone(self._tz)
        except OverflowError:  # past the end of year 9999
            return None

    @property
    def seconds(self) -> int:
        """The period in seconds."""
        return self._seconds

    @property
    def hourly_or_faster(self) -> bool:
        return self.seconds <= 3600

    def _amount(self) -> str:
        for size, unit in _UNITS:
            if self.seconds % size == 0:
                count = self.seconds // size
                return unit if count == 1 else f"{count} {unit}s"
        raise AssertionError("a period in whole seconds always divides by 1")

    def __str__(self) -> str:
        return f"every {self._amount()}"

    def describe(self) -> str:
        return f"every {self._amount()} ({zone_name(self.tz)})"

    def _key(self) -> tuple[object, ...]:
        return (self.seconds,)

    def _init_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.seconds,), {"tz": self.tz}
