"""Cron lines, computed by croniter on naive local time with this package's DST rule."""

from __future__ import annotations

import copy
import re
import zoneinfo
from datetime import datetime
from typing import Any

from croniter import CroniterBadDateError, CroniterError, croniter

from schedules.base import Schedule
from schedules.cronsets import CronSets
from schedules.describe import describe_cron
from schedules.errors import AT, ScheduleError, did_you_mean
from schedules.zones import next_absolute, next_wall_clock, resolve_zone, to_utc, zone_name

__all__ = ["ALIASES", "Cron", "CronEngine"]

#: croniter's aliases, spelled out so they can be described and validated like any line.
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIVE = ("minute", "hour", "day-of-month", "month", "day-of-week")
_SIX = ("second", *_FIVE)
_RANGES = {
    "second": (0, 59),
    "minute": (0, 59),
    "hour": (0, 23),
    "day-of-month": (1, 31),
    "month": (1, 12),
    "day-of-week": (0, 7),
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NAMES = {"month": _MONTHS, "day-of-week": _DAYS, "day-of-month": ("l", "w")}
_HOUR_INDEX = 1  # croniter's expansion always puts the hour second, seconds-first or not
_HASHED = re.compile(r"^[hr](\(\d+-\d+\))?(/\d+)?$", re.IGNORECASE)
_ZERO_STEP = re.compile(r"/0+$")
_NTH = re.compile(r"#(\d+)$")
_START = datetime(2000, 1, 1)  # noqa: DTZ001 - croniter works on naive local time here


class CronEngine:
    """A validated cron line: the next naive local match after a naive local time.

    croniter expands the line once, at construction. Lines of plain sets are answered by
    CronSets; the rest query a shallow copy of a croniter prototype, so the engine is safe to
    share between threads and stays immutable.
    """

    __slots__ = ("_proto", "_seconds", "_sets", "fields", "hourly_or_faster")

    def __init__(self, line: str, text: str, offset: int = 0) -> None:
        """``line`` is the cron line (5 or 6 fields, no alias); ``text`` and ``offset`` say
        where it came from, for error messages."""
        self.fields, positions = _split(line, text, offset)
        self._seconds = len(self.fields) == 6
        expanded, nth_weekdays = _expand_or_explain(self.fields, positions, text)
        self.hourly_or_faster: bool = expanded[_HOUR_INDEX] == ["*"]
        self._proto = croniter(" ".join(self.fields), _START, second_at_beginning=self._seconds)
        day_of_month = self.fields[3 if self._seconds else 2]
        # croniter's expansion drops the W of "15W" (nearest weekday): leave those to it.
        self._sets = (
            None
            if "w" in day_of_month.lower()
            else CronSets.from_expansion(expanded, nth_weekdays, seconds_first=self._seconds)
        )

    def after(self, naive: datetime) -> datetime | None:
        # croniter moves on by one second/minute and truncates, so truncating first gives the
        # same answer while keeping sub-second float rounding out of its timestamp round trip.
        if self._seconds:
            start = naive.replace(microsecond=0)
        else:
            start = naive.replace(second=0, microsecond=0)
        if self._sets is not None:
            return self._sets.after(start)
        iterator = copy.copy(self._proto)
        try:
            return iterator.get_next(datetime, start)
        except CroniterBadDateError:
            return None


class Cron(Schedule):
    """A cron line: 5 fields (minute hour day-of-month month day-of-week), or 6 with a
    seconds field first (the Quartz/Spring convention), or an alias such as ``@daily``.

    Month and day names are accepted; when both day fields are restricted, a day matching
    either one fires (POSIX cron). Lines whose hour field is ``*`` follow absolute time across
    DST changes; the others follow the wall clock.
    """

    __slots__ = ("_engine", "_expression")

    _expression: str
    _engine: CronEngine

    def __init__(self, expression: str, tz: str | zoneinfo.ZoneInfo | None = None) -> None:
        if not isinstance(expression, str):
            raise TypeError(f"Cron expression must be a str, got {expression!r}")
        stripped = expression.strip()
        offset = len(expression) - len(expression.lstrip())
        if stripped.startswith("@"):
            alias = stripped.lower()
            if alias not in ALIASES:
                hint = did_you_mean(alias, ALIASES) or f"use one of {', '.join(ALIASES)}."
                raise ScheduleError(
                    expression, f"unknown cron alias {stripped!r}{AT}", offset, hint
                )
            engine = CronEngine(ALIASES[alias], expression, offset)
            canonical = alias
        else:
            engine = CronEngine(expression, expression, 0)
            canonical = " ".join(field.upper() for field in engine.fields)
        self._set("_expression", canonical)
        self._set("_engine", engine)
        self._set("_tz", resolve_zone(tz))

    def next_after(self, dt: datetime) -> datetime | None:
        rule = next_absolute if self._engine.hourly_or_faster else next_wall_clock
        return rule(self._engine.after, to_utc(dt), self._tz)

    @property
    def expression(self) -> str:
        """The canonical cron line: fields upper-cased and single-spaced, or the alias."""
        return self._expression

    @property
    def hourly_or_faster(self) -> bool:
        return self._engine.hourly_or_faster

    def __str__(self) -> str:
        return self.expression

    def describe(self) -> str:
        fields = (self.expression,) if self.expression.startswith("@") else self._engine.fields
        return f"{describe_cron(fields)} ({zone_name(self.tz)})"

    def _key(self) -> tuple[object, ...]:
        return (self.expression,)

    def _init_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.expression,), {"tz": self.tz}


def _split(line: str, text: str, offset: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    matches = list(re.finditer(r"\S+", line))
    if not matches:
        raise ScheduleError(text, "the cron line is empty", None, "write e.g. '*/5 * * * *'.")
    if len(matches) not in (5, 6):
        problem = f"a cron line has 5 fields, or 6 with seconds first, not {len(matches)}"
        raise ScheduleError(text, problem)
    return (
        tuple(match.group() for match in matches),
        tuple(offset + match.start() for match in matches),
    )


def _expand(
    fields: tuple[str, ...], *, strict: bool = False
) -> tuple[list[list[Any]], dict[Any, Any]]:
    """croniter's expansion: the values of each field, and the ``#`` weekdays of the month."""
    expanded, nth_weekdays = croniter.expand(
        " ".join(fields), second_at_beginning=len(fields) == 6, strict=strict
    )
    return [list(values) for values in expanded], dict(nth_weekdays)


def _expand_or_explain(
    fields: tuple[str, ...], positions: tuple[int, ...], text: str
) -> tuple[list[list[Any]], dict[Any, Any]]:
    names = _SIX if len(fields) == 6 else _FIVE
    for name, field, position in zip(names, fields, positions, strict=True):
        for item in field.split(","):
            if _HASHED.match(item):
                raise ScheduleError(
                    text,
                    f"{name} field {field!r}{AT} uses a hashed or random value",
                    position,
                    "write the values out; they must be the same in every process.",
                )
    try:
        expanded, nth_weekdays = _expand(fields)
    except Exception:  # croniter raises several types; any of them means a bad field
        _explain_field(fields, positions, names, text)
        raise AssertionError("unreachable: _explain_field always raises") from None
    day_of_week = fields[names.index("day-of-week")]
    if day_of_week in ("*", "?"):
        try:
            # strict: a day that no listed month has ("30 2") would search 50 years and fail.
            _expand(fields, strict=True)
        except CroniterError:
            index = names.index("day-of-month")
            month = fields[names.index("month")]
            raise ScheduleError(
                text,
                f"day-of-month field {fields[index]!r}{AT} never occurs in month {month!r}",
                positions[index],
                "pick a day that month has.",
            ) from None
    return expanded, nth_weekdays


def _explain_field(
    fields: tuple[str, ...], positions: tuple[int, ...], names: tuple[str, ...], text: str
) -> None:
    """Find the field croniter rejects and raise a ScheduleError that names it."""
    for index, (name, field, position) in enumerate(zip(names, fields, positions, strict=True)):
        probe = tuple(field if i == index else "*" for i in range(len(fields)))
        try:
            _expand(probe)
        except Exception:  # croniter raises several types; any of them condemns this field
            problem, hint = _field_problem(name, field)
            raise ScheduleError(text, problem, position, hint) from None
    raise ScheduleError(
        text, "the fields are valid alone but not together", None, "check the day fields."
    )


def _field_problem(name: str, field: str) -> tuple[str, str]:
    low, high = _RANGES[name]
    allowed = f"use {low}-{high}"
    names = _NAMES.get(name, ())
    for item in field.split(","):
        if _ZERO_STEP.search(item):
            return f"{name} field {field!r}{AT} has a step of 0", "use a step of 1 or more."
        nth = _NTH.search(item)
        if nth and name == "day-of-week" and not 1 <= int(nth.group(1)) <= 5:
            return (
                f"{name} field {field!r}{AT} asks for weekday number {nth.group(1)} of the month",
                "use #1 to #5.",
            )
        body = _NTH.sub("", item.split("/")[0])
        for word in re.findall(r"[a-z]+", body, re.IGNORECASE):
            if word.lower() not in names:
                if not names or name == "day-of-month":
                    return f"{name} field {field!r}{AT} is not a number", f"{allowed}."
                hint = did_you_mean(word, names) or f"use {low}-{high} or {names[0]}-{names[-1]}."
                return f"{name} field {field!r}{AT} has the unknown name {word!r}", hint
        for number in re.findall(r"\d+", body):
            if not low <= int(number) <= high:
                return f"{name} field {field!r}{AT} is out of range", f"{allowed}."
    return (
        f"{name} field {field!r}{AT} is not valid",
        f"{allowed}, '*', ranges like '1-5', lists like '1,3' and steps like '*/5'.",
    )
