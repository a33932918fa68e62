"""A brute-force cron oracle that shares no code with ``schedules``: it imports nothing of it.

A cron line is generated as structured items (``Item``) that know their own text and the
values they stand for, following the dialect in the README's "Cron lines" section; the oracle
then matches local wall-clock readings field by field and applies the documented DST rule by
converting readings with zoneinfo, without the library's arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Line:
    """A cron line and what it means: value sets per field and the special days."""

    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]  # plain days of the month
    months: frozenset[int]
    weekdays: frozenset[int]  # plain days of the week, Sunday 0
    day_specials: tuple[tuple[object, ...], ...] = ()  # ("L",), ("LW",), ("W", n)
    weekday_specials: tuple[tuple[object, ...], ...] = ()  # ("#", day, n), ("L", day)
    _cache: dict[date, bool] = field(default_factory=dict, compare=False, repr=False)
    _times: list[time] = field(default_factory=list, compare=False, repr=False)

    @property
    def hourly_or_faster(self) -> bool:
        return len(self.hours) == 24

    # -- days ---------------------------------------------------------------------------

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        found = self._cache.get(day)
        if found is None:
            found = self._cache[day] = self._day_rule(day)
        return found

    def _day_rule(self, day: date) -> bool:
        days_restricted = self.days != frozenset(range(1, 32))
        weekdays_restricted = self.weekdays != frozenset(range(7))
        in_days = day.day in self.days or any(
            _day_special(special, day) for special in self.day_specials
        )
        in_weekdays = _cron_weekday(day) in self.weekdays or any(
            _weekday_special(special, day) for special in self.weekday_specials
        )
        if days_restricted and weekdays_restricted:
            return in_days or in_weekdays
        if days_restricted:
            return in_days
        if weekdays_restricted:
            return in_weekdays
        return True

    def times(self) -> list[time]:
        if not self._times:
            self._times.extend(
                time(h, m, s)
                for h in sorted(self.hours)
                for m in sorted(self.minutes)
                for s in sorted(self.seconds)
            )
        return self._times

    def readings_from(self, start: datetime, limit_days: int = 366 * 60) -> Iterator[datetime]:
        """Matching local readings at or after the naive ``start``, in order."""
        times = self.times()
        day = start.date()
        for _ in range(limit_days):
            if self.day_matches(day):
                for moment in times:
                    reading = datetime.combine(day, moment)
                    if reading >= start:
                        yield reading
            try:
                day += ONE_DAY
            except OverflowError:
                return


def _cron_weekday(day: date) -> int:
    return day.isoweekday() % 7


def _month_days(day: date) -> list[date]:
    first = day.replace(day=1)
    days = []
    current = first
    while current.month == first.month:
        days.append(current)
        if current.day == 28 and current.month == 12 and current.year == 9999:
            days.extend(date(9999, 12, d) for d in range(29, 32))
            break
        current += ONE_DAY
    return days


def _day_special(special: tuple[object, ...], day: date) -> bool:
    month = _month_days(day)
    workdays = [d for d in month if d.isoweekday() <= 5]
    if special[0] == "L":
        return day == month[-1]
    if special[0] == "LW":
        return day == workdays[-1]
    wanted = special[1]
    assert isinstance(wanted, int)
    if wanted > len(month):
        return False
    nearest = min(workdays, key=lambda d: abs(d.day - wanted))
    return day == nearest


def _weekday_special(special: tuple[object, ...], day: date) -> bool:
    if _cron_weekday(day) != special[1]:
        return False
    same = [d for d in _month_days(day) if _cron_weekday(d) == special[1]]
    if special[0] == "#":
        return len(same) >= special[2] and same[special[2] - 1] == day  # type: ignore[operator]
    return day == same[-1]


# -- the DST rule, by converting readings ---------------------------------------------------


def _occurrences(reading: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every UTC instant whose local reading is ``reading`` (none in a gap, two in a fold)."""
    found = set()
    for fold in (0, 1):
        instant = reading.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == reading:
            found.add(instant)
    return sorted(found)


def _after_gap(reading: datetime, zone: ZoneInfo) -> datetime:
    """The first whole second whose local reading is past ``reading`` (inside a gap)."""
    low, high = sorted(reading.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1))
    while high - low > timedelta(seconds=1):  # local readings only grow across a gap
        middle = low + (high - low) // 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).replace(tzinfo=None) < reading:
            low = middle
        else:
            high = middle
    return high


def _fires(reading: datetime, zone: ZoneInfo, absolute: bool) -> list[datetime]:
    occurrences = _occurrences(reading, zone)
    if absolute:
        return occurrences  # a reading in a gap never happens
    return occurrences[:1] if occurrences else [_after_gap(reading, zone)]


def next_fire(line: Line, zone: ZoneInfo, after: datetime) -> datetime | None:
    """The first fire strictly after the aware ``after``, as a UTC datetime."""
    after = after.astimezone(UTC)
    local = after.astimezone(zone).replace(tzinfo=None)
    offsets = _offsets(zone, local)
    if len(offsets) == 1:
        # No change of offset within a day: readings and instants keep their order, so the
        # first reading past ``local`` (within that day) is the answer.
        offset = offsets.pop()
        for reading in line.readings_from(local.replace(microsecond=0)):
            if reading - local > timedelta(hours=20):
                return _slow(line, zone, after, reading - timedelta(hours=1))
            instant = (reading - offset).replace(tzinfo=UTC)
            if instant > after:
                return instant
        return None
    return _slow(line, zone, after, local - (max(offsets) - min(offsets)))


def _slow(line: Line, zone: ZoneInfo, after: datetime, start: datetime) -> datetime | None:
    """Every reading from ``start`` on, converted, until no later one can fire earlier."""
    best: datetime | None = None
    limit = datetime.max
    for reading in line.readings_from(start.replace(microsecond=0)):
        if reading > limit:
            break
        for instant in _fires(reading, zone, line.hourly_or_faster):
            if instant > after and (best is None or instant < best):
                best = instant
                offsets = _offsets(zone, reading)
                limit = reading + 2 * (max(offsets) - min(offsets))
    return best


def _offsets(zone: ZoneInfo, reading: datetime) -> set[timedelta]:
    """The UTC offsets within a day either side of ``reading``."""
    found = set()
    for hours in range(-25, 26):
        try:
            moment = (reading + timedelta(hours=hours)).replace(tzinfo=zone)
        except OverflowError:
            continue
        offset = moment.utcoffset()
        assert offset is not None
        found.add(offset)
    return found
