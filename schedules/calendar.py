"""Calendar phrases: fixed local times on days of the week or month, and hourly minutes.

Each is equivalent to a cron line (``cron_line``), but its next local match is plain date
arithmetic, faster than matching the line; the tests check the two agree. The DST rule
is applied to those local matches exactly as for cron lines.
"""

from __future__ import annotations

import datetime as dt_
import zoneinfo
from calendar import monthrange
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any, Literal

from schedules.base import Schedule
from schedules.describe import DAY_NAMES, clock, join_words, ordinal
from schedules.errors import ScheduleError
from schedules.zones import next_absolute, next_wall_clock, resolve_zone, to_utc, zone_name

__all__ = ["Calendar", "Hourly"]

_WEEKDAYS = (0, 1, 2, 3, 4)
_WEEKENDS = (5, 6)
_ONE_DAY = timedelta(days=1)
_ONE_HOUR = timedelta(hours=1)


def _bad(call: str, problem: str, hint: str | None = None) -> ScheduleError:
    return ScheduleError(call, problem, None, hint)


def _clock_time(value: dt_.time | str, call: str) -> dt_.time:
    if isinstance(value, str):
        try:
            value = dt_.time.fromisoformat(value)
        except ValueError:
            raise _bad(call, "the time is not HH:MM or HH:MM:SS", "write e.g. '17:03'.") from None
    if not isinstance(value, dt_.time):
        raise TypeError(f"Calendar time must be a datetime.time or 'HH:MM', got {value!r}")
    if value.tzinfo is not None or value.microsecond:
        raise _bad(
            call,
            "the time must be a local wall-clock time in whole seconds",
            "pass the zone as tz= instead.",
        )
    return value.replace(fold=0)


class Calendar(Schedule):
    """A local wall-clock time every day, on some days of the week, or on a day of the month.

    ``weekdays`` counts Monday as 0 (as ``datetime.weekday()`` does); ``day`` is 1-31 or
    ``"last"``. A day the month does not have (the 31st in April) does not fire that month.
    Across DST changes: a time skipped by spring-forward fires at the first instant after the
    gap; a time repeated by fall-back fires once, at its first occurrence.
    """

    __slots__ = ("_day", "_time", "_weekdays")

    _time: dt_.time
    _weekdays: tuple[int, ...] | None
    _day: int | Literal["last"] | None

    def __init__(
        self,
        time: dt_.time | str,
        *,
        weekdays: Iterable[int] | None = None,
        day: int | Literal["last"] | None = None,
        tz: str | zoneinfo.ZoneInfo | None = None,
    ) -> None:
        call = f"Calendar({time!r}, weekdays={weekdays!r}, day={day!r})"
        at = _clock_time(time, call)
        days: tuple[int, ...] | None = None
        if weekdays is not None:
            days = tuple(sorted(set(weekdays)))
            if not days or any(
                isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in days
            ):
                raise _bad(call, f"weekdays {days!r} are not all 0-6", "use 0 for Monday to 6.")
            if len(days) == 7:
                days = None
        if day is not None:
            if days is not None:
                raise _bad(call, "it gives both weekdays and a day of the month", "give one.")
            if day != "last" and (
                isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 31
            ):
                raise _bad(call, f"day {day!r} is not 1-31 or 'last'", "use 1-31 or 'last'.")
        self._set("_time", at)
        self._set("_weekdays", days)
        self._set("_day", day)
        self._set("_tz", resolve_zone(tz))

    def next_after(self, dt: datetime) -> datetime | None:
        return next_wall_clock(self._after, to_utc(dt), self._tz)

    def _after(self, naive: datetime) -> datetime | None:
        """The first matching naive local time strictly after ``naive``."""
        day = naive.date()
        if datetime.combine(day, self._time) <= naive:
            day += _ONE_DAY
        try:
            if self._weekdays is not None:
                weekday = day.weekday()
                day += timedelta(days=min((d - weekday) % 7 for d in self._weekdays))
            elif self._day is not None:
                day = self._month_day_from(day)
        except (OverflowError, ValueError):  # past datetime.max: there is no next time
            return None
        return datetime.combine(day, self._time)

    def _month_day_from(self, day: date) -> date:
        year, month, earliest = day.year, day.month, day.day
        while True:  # at most three months: the 31st is never two months away
            last = monthrange(year, month)[1]
            target = last if self._day == "last" else self._day
            assert isinstance(target, int)
            if earliest <= target <= last:
                return date(year, month, target)
            year, month, earliest = year + month // 12, month % 12 + 1, 1

    @property
    def cron_line(self) -> str:
        """The equivalent cron line (seconds first when the time has seconds)."""
        at = self._time
        day = "*" if self._day is None else "L" if self._day == "last" else str(self._day)
        weekdays = (
            "*" if self._weekdays is None else ",".join(str((d + 1) % 7) for d in self._weekdays)
        )
        line = f"{at.minute} {at.hour} {day} * {weekdays}"
        return f"{at.second} {line}" if at.second else line

    @property
    def time(self) -> dt_.time:
        """The local wall-clock time of day."""
        return self._time

    @property
    def weekdays(self) -> tuple[int, ...] | None:
        """The days of the week (Monday is 0), or None for every day."""
        return self._weekdays

    @property
    def day(self) -> int | Literal["last"] | None:
        """The day of the month (1-31 or ``"last"``), or None."""
        return self._day

    @property
    def hourly_or_faster(self) -> bool:
        return False

    def _clock(self) -> str:
        return clock(self.time.hour, self.time.minute, self.time.second)

    def __str__(self) -> str:
        if self.day is not None:
            which = "last day" if self.day == "last" else ordinal(self.day)
            return f"monthly on the {which} at {self._clock()}"
        if self.weekdays is None:
            return f"daily at {self._clock()}"
        if self.weekdays == _WEEKDAYS:
            days = "weekdays"
        elif self.weekdays == _WEEKENDS:
            days = "weekends"
        else:
            days = join_words([DAY_NAMES[d] for d in self.weekdays])
        return f"{days} at {self._clock()}"

    def describe(self) -> str:
        if self.day == "last":
            when = "on the last day of every month"
        elif self.day is not None:
            when = f"on the {ordinal(self.day)} of every month"
            if self.day > 28:
                when += " that has one"
        elif self.weekdays is None:
            when = "every day"
        elif self.weekdays == _WEEKDAYS:
            when = "every weekday"
        else:
            when = "every " + join_words([DAY_NAMES[d] for d in self.weekdays])
        return f"{when} at {self._clock()} ({zone_name(self.tz)})"

    def _key(self) -> tuple[object, ...]:
        return (self.time, self.weekdays, self.day)

    def _init_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.time,), {"weekdays": self.weekdays, "day": self.day, "tz": self.tz}


class Hourly(Schedule):
    """A minute (and second) of every local hour: ``every hour at :15``.

    It follows absolute time across DST changes: both passes of a repeated hour fire, and a
    minute inside a spring-forward gap does not. It counts minutes on the local clock, so in
    a zone with a half-hour offset it differs from the UTC-anchored ``every hour``.
    """

    __slots__ = ("_minute", "_second")

    _minute: int
    _second: int

    def __init__(
        self, minute: int, second: int = 0, *, tz: str | zoneinfo.ZoneInfo | None = None
    ) -> None:
        for name, value in (("minute", minute), ("second", second)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 59:
                raise _bad(
                    f"Hourly(minute={minute!r}, second={second!r})",
                    f"{name} {value!r} is not 0-59",
                    "use 0-59.",
                )
        self._set("_minute", minute)
        self._set("_second", second)
        self._set("_tz", resolve_zone(tz))

    def next_after(self, dt: datetime) -> datetime | None:
        return next_absolute(self._after, to_utc(dt), self._tz)

    def _after(self, naive: datetime) -> datetime | None:
        """The first matching naive local time strictly after ``naive``."""
        candidate = naive.replace(minute=self._minute, second=self._second, microsecond=0)
        try:
            return candidate if candidate > naive else candidate + _ONE_HOUR
        except OverflowError:
            return None

    @property
    def cron_line(self) -> str:
        """The equivalent cron line (seconds first when there are seconds)."""
        if self._second:
            return f"{self._second} {self._minute} * * * *"
        return f"{self._minute} * * * *"

    @property
    def minute(self) -> int:
        """The minute of every local hour."""
        return self._minute

    @property
    def second(self) -> int:
        """The second within that minute."""
        return self._second

    @property
    def hourly_or_faster(self) -> bool:
        return True

    def _mark(self) -> str:
        return f":{self.minute:02d}" + (f":{self.second:02d}" if self.second else "")

    def __str__(self) -> str:
        return f"every hour at {self._mark()}"

    def describe(self) -> str:
        return f"every hour at {self._mark()} ({zone_name(self.tz)})"

    def _key(self) -> tuple[object, ...]:
        return (self.minute, self.second)

    def _init_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.minute, self.second), {"tz": self.tz}
