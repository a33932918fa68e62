"""Cron lines: this package's own dialect (schedules.cronfields), matched on naive local
time (schedules.cronsets) and turned into instants with this package's DST rule."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from typing import Any

from schedules.base import Schedule
from schedules.cronfields import FIELDS, Field, parse_field
from schedules.cronsets import ALL_WEEKDAYS, CronSets, occurs
from schedules.describe import describe_cron
from schedules.errors import AT, ScheduleError, did_you_mean
from schedules.zones import next_absolute, next_wall_clock, resolve_zone, to_utc, zone_name

__all__ = ["ALIASES", "Cron", "CronEngine"]

#: The aliases, spelled out so they can be described and validated like any line.
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


class CronEngine:
    """A validated cron line: the next naive local match after a naive local time.

    The fields are read once, at construction, into sets (schedules.cronfields); CronSets
    answers every query. The engine is immutable and safe to share between threads.
    """

    __slots__ = ("_seconds", "_sets", "fields", "hourly_or_faster", "values")

    def __init__(self, line: str, text: str, offset: int = 0) -> None:
        """``line`` is the cron line (5 or 6 fields, no alias); ``text`` and ``offset`` say
        where it came from, for error messages."""
        self.fields, positions = _split(line, text, offset)
        self._seconds = len(self.fields) == 6
        names = _SIX if self._seconds else _FIVE
        read = {
            name: parse_field(FIELDS[name], field, text, position)
            for name, field, position in zip(names, self.fields, positions, strict=True)
        }
        if not self._seconds:
            read["second"] = Field((0,), ())
        #: The fields read, by name (``second`` is (0,) for a five-field line).
        self.values: dict[str, Field] = read
        months = read["month"].values
        weekday_restricted = read["day-of-week"].values != ALL_WEEKDAYS
        if not occurs(read["day-of-month"], months, weekday_restricted):
            index = names.index("day-of-month")
            month = self.fields[names.index("month")]
            raise ScheduleError(
                text,
                f"day-of-month field {self.fields[index]!r}{AT} never occurs in month {month!r}",
                positions[index],
                "pick a day that month has.",
            )
        self.hourly_or_faster: bool = len(read["hour"].values) == 24
        self._sets = CronSets(
            read["second"].values,
            read["minute"].values,
            read["hour"].values,
            read["day-of-month"],
            months,
            read["day-of-week"],
        )

    def after(self, naive: datetime) -> datetime | None:
        # Whole seconds (or minutes for five fields): the next match is strictly after that.
        if self._seconds:
            start = naive.replace(microsecond=0)
        else:
            start = naive.replace(second=0, microsecond=0)
        return self._sets.after(start)


class Cron(Schedule):
    """A cron line: 5 fields (minute hour day-of-month month day-of-week), or 6 with a
    seconds field first (the Quartz/Spring convention), or an alias such as ``@daily``.

    The dialect is the README's ("Cron lines"): names, ``L``, ``LW``, ``15W``, ``5#3``,
    ``L5``; when both day fields are restricted (their sets, whatever the spelling), a day
    matching either one fires (POSIX cron). Lines whose hours are all 24 follow absolute time
    across DST changes; the others follow the wall clock.
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
        alias = self.expression if self.expression.startswith("@") else None
        return f"{describe_cron(self._engine.values, alias)} ({zone_name(self.tz)})"

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
