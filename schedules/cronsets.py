"""The next match of a cron line, from the sets of values its fields allow.

Walking days and bisecting sorted sets costs a few microseconds: it is what keeps "the next 100
runs of 10,000 entries" fast when every entry has its own line. The day rule (POSIX): when the
day of month and the day of week are both restricted, a day matching either fires; when one
is, that one decides. A field is restricted when its set of days is not the whole range,
whatever its spelling: ``*``, ``?``, ``1-31`` and ``*/1`` are all unrestricted in the day of
month, and ``*``, ``0-6``, ``0-7`` and ``SUN-SAT`` in the day of week.
tests/schedules/test_oracle.py checks it against a brute-force matcher.
"""

from __future__ import annotations

from bisect import bisect_left
from calendar import monthrange
from datetime import date, datetime, time, timedelta

from schedules.cronfields import Field

__all__ = ["ALL_DAYS", "ALL_WEEKDAYS", "CronSets", "occurs"]

ALL_DAYS = tuple(range(1, 32))
ALL_WEEKDAYS = tuple(range(7))
# The Gregorian calendar repeats every 400 years: a line that can match at all matches
# within that span of any date, so this bound only ends the search past year 9999.
_MAX_DAYS = 366 * 401
_ONE_DAY = timedelta(days=1)
_LONGEST = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _earliest(values: tuple[int, ...], at_least: int) -> int | None:
    index = bisect_left(values, at_least)
    return values[index] if index < len(values) else None


def _nearest_weekday(year: int, month: int, day: int, last: int) -> int | None:
    """The weekday (Monday-Friday) nearest the ``day``-th, within its month (Quartz's W)."""
    if day > last:
        return None
    weekday = date(year, month, day).weekday()
    if weekday == 5:  # Saturday: the Friday before, or the Monday after the 1st
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: the Monday after, or the Friday before the last day
        return day + 1 if day < last else day - 2
    return day


def _last_weekday(year: int, month: int, last: int) -> int:
    weekday = date(year, month, last).weekday()
    return last - max(0, weekday - 4)


def occurs(day_of_month: Field, months: tuple[int, ...], weekday_restricted: bool) -> bool:
    """Whether a line with these day fields can fire at all (``30 2`` never does)."""
    if weekday_restricted or day_of_month.values == ALL_DAYS:
        return True
    longest = max(_LONGEST[month - 1] for month in months)
    for special in day_of_month.specials:
        if special[0] != "W" or int(special[1]) <= longest:
            return True
    return any(day <= longest for day in day_of_month.values)


class CronSets:
    """A cron line as sets of seconds, minutes, hours, months and the two day fields."""

    __slots__ = (
        "_day_specials",
        "_days",
        "_hours",
        "_minutes",
        "_mode",
        "_months",
        "_seconds",
        "_weekday_specials",
        "_weekdays",
    )

    def __init__(
        self,
        seconds: tuple[int, ...],
        minutes: tuple[int, ...],
        hours: tuple[int, ...],
        day_of_month: Field,
        months: tuple[int, ...],
        day_of_week: Field,
    ) -> None:
        """Sorted value tuples; the day fields as read by schedules.cronfields (Sunday 0)."""
        self._seconds, self._minutes, self._hours = seconds, minutes, hours
        self._months = frozenset(months)
        self._days = frozenset(day_of_month.values)
        self._weekdays = frozenset(day_of_week.values)
        self._day_specials = day_of_month.specials
        self._weekday_specials = day_of_week.specials
        days_restricted = day_of_month.values != ALL_DAYS
        weekdays_restricted = day_of_week.values != ALL_WEEKDAYS
        # 0: any day; 1: the day of month decides; 2: the day of week; 3: either one.
        self._mode = int(days_restricted) + 2 * int(weekdays_restricted)

    def _in_days(self, day: date) -> bool:
        if day.day in self._days:
            return True
        if not self._day_specials:
            return False
        last = monthrange(day.year, day.month)[1]
        for special in self._day_specials:
            kind = special[0]
            if kind == "L":
                hit = day.day == last
            elif kind == "LW":
                hit = day.day == _last_weekday(day.year, day.month, last)
            else:
                hit = day.day == _nearest_weekday(day.year, day.month, int(special[1]), last)
            if hit:
                return True
        return False

    def _in_weekdays(self, day: date) -> bool:
        weekday = (day.weekday() + 1) % 7
        if weekday in self._weekdays:
            return True
        for special in self._weekday_specials:
            if special[1] != weekday:
                continue
            if special[0] == "#":
                if (day.day - 1) // 7 + 1 == special[2]:
                    return True
            elif day.day + 7 > monthrange(day.year, day.month)[1]:
                return True
        return False

    def _day_matches(self, day: date) -> bool:
        mode = self._mode
        if mode == 0:
            return True
        if mode == 1:
            return day.day in self._days or (bool(self._day_specials) and self._in_days(day))
        if mode == 2:
            if not self._weekday_specials:  # the common case, without a method call
                return (day.weekday() + 1) % 7 in self._weekdays
            return self._in_weekdays(day)
        return self._in_days(day) or self._in_weekdays(day)

    def _first_time(self, at_least: time) -> time | None:
        """The earliest time of day in the sets that is not before ``at_least``."""
        for hour in self._hours[bisect_left(self._hours, at_least.hour) :]:
            same_hour = hour == at_least.hour
            minute_floor = at_least.minute if same_hour else 0
            for minute in self._minutes[bisect_left(self._minutes, minute_floor) :]:
                same_minute = same_hour and minute == at_least.minute
                second = _earliest(self._seconds, at_least.second if same_minute else 0)
                if second is not None:
                    return time(hour, minute, second)
        return None

    def after(self, start: datetime) -> datetime | None:
        """The first naive local time strictly after ``start`` (whole seconds) that matches;
        None past year 9999."""
        try:
            candidate = start.replace(microsecond=0) + timedelta(seconds=1)
        except OverflowError:
            return None
        day = candidate.date()
        floor = candidate.time()
        for _ in range(_MAX_DAYS):
            try:
                if day.month not in self._months:
                    # On to the first of the next month: a month outside the set has no match.
                    day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
                    floor = time(0)
                    continue
                if self._day_matches(day):
                    found = self._first_time(floor)
                    if found is not None:
                        return datetime.combine(day, found)
                day += _ONE_DAY
            except OverflowError:  # past year 9999
                return None
            floor = time(0)
        return None
