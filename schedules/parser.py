"""``parse()``: schedule text to a Schedule value, with errors that point at the problem."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, time
from typing import Literal, NamedTuple, NoReturn

from schedules.base import Schedule
from schedules.calendar import Calendar, Hourly
from schedules.cron import Cron
from schedules.errors import AT, ScheduleError, did_you_mean
from schedules.interval import MAX_SECONDS, Interval, period_problem
from schedules.once import Once
from schedules.zones import resolve_zone, zone_name

__all__ = ["parse"]

_EXAMPLES = "write e.g. 'every 5 minutes', 'daily at 03:00' or '*/5 * * * *'."
_TOKEN = re.compile(
    r"(?P<clock>\d{1,2}:\d+(?::\d+)?)"
    r"|(?P<mark>:\d+(?::\d+)?)"
    r"|(?P<ordinal>\d+(?:st|nd|rd|th)\b)"
    r"|(?P<number>\d+)"
    r"|(?P<word>[a-z]+)"
    r"|(?P<comma>,)"
    r"|(?P<dash>-)"
    r"|(?P<space>\s+)",
    re.IGNORECASE | re.ASCII,  # no other digits or letters
)
_ISO_START = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_ONCE = re.compile(r"once\b(?:\s+(?:at|on)\b)?\s*", re.IGNORECASE)
# Seconds, minutes and hours are numbers, '*' and the operators; never words or clock times.
_CRON_TIME_FIELD = re.compile(r"[\d*?/,\-]+$", re.ASCII)
_MAX_DIGITS = 12  # a longer number is too large for anything a phrase counts

_UNITS = {
    "second": 1, "seconds": 1, "sec": 1, "secs": 1,
    "minute": 60, "minutes": 60, "min": 60, "mins": 60,
    "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600,
}  # fmt: skip
_DAY_STEMS = {
    0: ("monday", "mon"),
    1: ("tuesday", "tue", "tues"),
    2: ("wednesday", "wed"),
    3: ("thursday", "thu", "thur", "thurs"),
    4: ("friday", "fri"),
    5: ("saturday", "sat"),
    6: ("sunday", "sun"),
}
_DAYS = {word: day for day, words in _DAY_STEMS.items() for word in words}
_DAYS.update({f"{words[0]}s": day for day, words in _DAY_STEMS.items()})
_GROUPS = {
    "weekday": (0, 1, 2, 3, 4),
    "weekdays": (0, 1, 2, 3, 4),
    "weekend": (5, 6),
    "weekends": (5, 6),
}
_KEYWORDS = (
    "every", "each", "at", "on", "the", "of", "and", "to", "through", "thru", "day", "days",
    "daily", "month", "monthly", "hourly", "last", "noon", "midnight", "am", "pm", "once",
)  # fmt: skip
_VOCABULARY = (*_UNITS, *_DAYS, *_GROUPS, *_KEYWORDS)
_RANGE_WORDS = ("to", "through", "thru")


class _Token(NamedTuple):
    kind: str
    text: str
    pos: int

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "word" else ""


def parse(text: str, tz: str | zoneinfo.ZoneInfo | None = None) -> Schedule:
    """Parse a schedule expression; ``tz`` (a zone name or ZoneInfo, default UTC) is the zone
    whose wall clock it follows.

    Raises ScheduleError (a ValueError) with the text, the position and a hint.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse() needs a str, got {text!r}")
    zone = resolve_zone(tz)
    stripped = text.strip()
    if not stripped:
        raise ScheduleError(text, "the text is empty", None, _EXAMPLES)
    if stripped.startswith("@") or _looks_like_cron(stripped):
        return Cron(text, zone)
    once = _ONCE.match(stripped)
    if once or _ISO_START.match(stripped):
        start = len(text) - len(text.lstrip()) + (once.end() if once else 0)
        return _parse_once(text, start, zone)
    return _Phrase(text).parse(zone)


def _looks_like_cron(stripped: str) -> bool:
    fields = stripped.split()
    if len(fields) < 3:
        return False
    if all(_CRON_TIME_FIELD.match(field) for field in fields[:2]):
        return True
    # A mistyped cron line ("a * * * *") still reads as one, so its error names the field.
    return 2 * sum(bool(_CRON_TIME_FIELD.match(field)) for field in fields) >= len(fields)


def _parse_once(text: str, start: int, zone: zoneinfo.ZoneInfo) -> Once:
    moment = text[start:].strip()
    if not moment:
        raise ScheduleError(
            text, f"expected a date-time{AT}", start, "write e.g. 'once at 2026-12-24 18:00'."
        )
    try:
        if not moment.isascii():
            raise ValueError(moment)  # fromisoformat() reads other digits too; cron does not
        at = datetime.fromisoformat(moment)
    except ValueError:
        raise ScheduleError(
            text,
            f"{moment!r}{AT} is not an ISO-8601 date-time",
            start,
            "write e.g. '2026-12-24 18:00' or '2026-12-24T18:00+01:00'.",
        ) from None
    try:
        return Once(at, zone)
    except ScheduleError as error:
        where = "UTC" if zone_name(zone) == "UTC" else f"UTC or in {zone_name(zone)}"
        problem = f"{moment!r}{AT} falls outside the years 1-9999 in {where}"
        raise ScheduleError(text, problem, start, error.hint) from None


class _Phrase:
    """A small recursive-descent parser over words, numbers and clock times."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = self._tokenize(text)
        self.index = 0

    def _tokenize(self, text: str) -> list[_Token]:
        tokens = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None:
                character = text[position]
                hint = "write numbers with the digits 0-9." if character.isdigit() else _EXAMPLES
                self._fail(f"unexpected character {character!r}{AT}", position, hint)
            kind = match.lastgroup
            assert kind is not None
            if kind != "space":
                tokens.append(_Token(kind, match.group(), position))
            position = match.end()
        return tokens

    # -- token helpers -------------------------------------------------------------------

    def _fail(self, problem: str, position: int | None, hint: str | None = None) -> NoReturn:
        raise ScheduleError(self.text, problem, position, hint)

    def _peek(self, offset: int = 0) -> _Token | None:
        index = self.index + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def _peek_word(self, offset: int = 0) -> str:
        token = self._peek(offset)
        return token.word if token else ""

    def _peek_kind(self, offset: int = 0) -> str:
        token = self._peek(offset)
        return token.kind if token else ""

    def _int(self, token: _Token) -> int:
        """The number in a number or ordinal token, refusing ones too long to be meant."""
        digits = re.sub(r"\D", "", token.text)
        if len(digits) > _MAX_DIGITS:
            shown = f"{digits[:6]}…{digits[-3:]}"
            self._fail(
                f"the number {shown!r} ({len(digits)} digits){AT} is too large",
                token.pos,
                "write a smaller number.",
            )
        return int(digits)

    def _skip(self, *words: str) -> bool:
        if self._peek_word() in words:
            self.index += 1
            return True
        return False

    def _unexpected(self, expected: str, hint: str | None = None) -> NoReturn:
        token = self._peek()
        if token is None:
            self._fail(f"expected {expected}{AT}", len(self.text.rstrip()), hint)
        if token.kind == "word" and token.word not in _VOCABULARY:
            suggestion = did_you_mean(token.word, _VOCABULARY)
            self._fail(f"unknown word {token.text!r}{AT}", token.pos, suggestion or hint)
        self._fail(f"expected {expected}{AT}, not {token.text!r}", token.pos, hint)

    # -- grammar -------------------------------------------------------------------------

    def parse(self, zone: zoneinfo.ZoneInfo) -> Schedule:
        first = self._peek()
        assert first is not None
        word = first.word
        schedule: Schedule
        if word in ("every", "each"):
            self.index += 1
            schedule = self._after_every(zone)
        elif word == "hourly":
            self.index += 1
            schedule = self._interval(1, 3600, zone)
        elif word == "daily":
            self.index += 1
            schedule = Calendar(self._time(), tz=zone)
        elif word == "monthly":
            self.index += 1
            schedule = self._monthly(zone)
        elif word == "on" and self._month_day_follows(1):
            schedule = self._monthly(zone)
        elif word == "on" or self._is_day(0):
            self._skip("on")
            schedule = self._weekly(zone)
        elif first.kind == "number" and self._peek_word(1) in _UNITS:
            unit = self._peek(1)
            assert unit is not None
            self._fail(
                f"a count needs 'every' before it{AT}",
                first.pos,
                f"did you mean 'every {first.text} {unit.text}'?",
            )
        else:
            schedule = self._time_first(zone)
        if self._peek() is not None:
            self._unexpected("the end of the schedule")
        return schedule

    def _month_day_follows(self, offset: int) -> bool:
        """``the``, ``last`` or an ordinal: 'on the 1st', 'on last day', 'on 15th'."""
        return self._peek_word(offset) in ("the", "last") or self._peek_kind(offset) == "ordinal"

    def _is_day(self, offset: int) -> bool:
        word = self._peek_word(offset)
        return word in _DAYS or word in _GROUPS

    def _after_every(self, zone: zoneinfo.ZoneInfo) -> Schedule:
        token = self._peek()
        if token is None:
            self._unexpected("a number, a unit or a day", "write e.g. 'every 5 minutes'.")
        if token.kind == "number":
            self.index += 1
            count = self._int(token)
            unit = self._peek()
            if unit is None or unit.kind != "word":
                self._unexpected("a unit (seconds, minutes or hours)")
            if unit.word not in _UNITS:
                hint = did_you_mean(unit.word, ("seconds", "minutes", "hours"))
                self._fail(f"unknown unit {unit.text!r}{AT}", unit.pos, hint)
            self.index += 1
            if count < 1:
                self._fail(f"the count {count}{AT} is not positive", token.pos, "use 1 or more.")
            if count * _UNITS[unit.word] > MAX_SECONDS:
                _, hint = period_problem(count * _UNITS[unit.word])
                problem = f"the period of {count} {unit.text}{AT} is more than 100 years"
                self._fail(problem, token.pos, hint)
            return self._interval(count, _UNITS[unit.word], zone)
        if token.word in _UNITS:
            self.index += 1
            return self._interval(1, _UNITS[token.word], zone)
        if token.word in ("day", "days"):
            self.index += 1
            if self._peek() is None:
                self._unexpected("a time", "write e.g. 'every day at 03:00'.")
            return Calendar(self._time(), tz=zone)
        if token.word == "month":
            self.index += 1
            return self._monthly(zone)
        if self._is_day(0):
            return self._weekly(zone)
        self._unexpected("a number, a unit or a day", "write e.g. 'every 5 minutes'.")

    def _interval(self, count: int, unit: int, zone: zoneinfo.ZoneInfo) -> Schedule:
        if not self._skip("at"):
            return Interval(count * unit, tz=zone)
        mark = self._peek()
        if mark is None or mark.kind != "mark":
            self._unexpected("minutes past the hour such as ':15'")
        if unit != 3600 or count != 1:
            self._fail(
                f"a minute{AT} can only follow 'every hour'",
                mark.pos,
                "use a cron line such as '15 */2 * * *'.",
            )
        self.index += 1
        parts = mark.text[1:].split(":")
        minute = self._sixty(parts[0], "minute", mark.pos + 1)
        second = 0
        if len(parts) > 1:
            second = self._sixty(parts[1], "second", mark.pos + 2 + len(parts[0]))
        return Hourly(minute, second, tz=zone)

    def _sixty(self, digits: str, name: str, position: int) -> int:
        """Two digits of a minute or second, 00-59."""
        if len(digits) != 2:
            self._fail(f"{name} {digits!r}{AT} needs two digits", position, "write e.g. '17:03'.")
        value = int(digits)
        if value > 59:
            self._fail(f"{name} {value}{AT} is out of range", position, "use 0-59.")
        return value

    def _weekly(self, zone: zoneinfo.ZoneInfo) -> Schedule:
        days = self._days()
        return Calendar(self._time(), weekdays=days, tz=zone)

    def _days(self) -> tuple[int, ...]:
        days: list[int] = []
        while True:
            token = self._peek()
            if token is None or not self._is_day(0):
                self._unexpected("a day such as 'monday' or 'weekdays'")
            self.index += 1
            if token.word in _GROUPS:
                days.extend(_GROUPS[token.word])
            elif self._peek_word() in _RANGE_WORDS or self._peek_kind() == "dash":
                self.index += 1
                end = self._peek()
                if end is None or end.word not in _DAYS:
                    self._unexpected("a day such as 'friday' to end the range")
                self.index += 1
                first, last = _DAYS[token.word], _DAYS[end.word]
                days.extend((first + step) % 7 for step in range((last - first) % 7 + 1))
            else:
                days.append(_DAYS[token.word])
            separator = self._peek()
            if separator is not None and separator.kind == "comma":
                self.index += 1
                self._skip("and")
            elif not self._skip("and"):
                return tuple(days)

    def _monthly(self, zone: zoneinfo.ZoneInfo) -> Schedule:
        day = self._month_day()
        return Calendar(self._time(), day=day, tz=zone)

    def _month_day(self) -> int | Literal["last"]:
        """``on the 15th [day] [of the month]`` or ``on the last day [of every month]``."""
        if not self._skip("on"):
            self._unexpected(
                "'on the' and a day of the month", "write e.g. 'monthly on the 1st at 09:00'."
            )
        self._skip("the")
        token = self._peek()
        day: int | Literal["last"]
        if token is not None and token.word == "last":
            self.index += 1
            day = "last"
        elif token is not None and token.kind in ("ordinal", "number"):
            self.index += 1
            day = self._int(token)
            if not 1 <= day <= 31:
                self._fail(f"day {day}{AT} is out of range", token.pos, "use 1st-31st or 'last'.")
        else:
            self._unexpected("a day of the month such as '1st' or 'last'")
        self._skip("day")
        if self._skip("of"):
            self._skip("the", "every", "each")
            if not self._skip("month"):
                self._unexpected("'month'")
        return day

    def _time_first(self, zone: zoneinfo.ZoneInfo) -> Schedule:
        at = self._time()
        if self._peek() is None or self._skip("daily"):
            return Calendar(at, tz=zone)
        if self._peek_word() in ("every", "each") and self._peek_word(1) in ("day", "month"):
            self.index += 2
            if self._peek_word(-1) == "day":
                return Calendar(at, tz=zone)
            return Calendar(at, day=self._month_day(), tz=zone)
        if self._peek_word() == "on" and self._month_day_follows(1):
            return Calendar(at, day=self._month_day(), tz=zone)
        self._skip("every", "each", "on")
        return Calendar(at, weekdays=self._days(), tz=zone)

    def _time(self) -> time:
        """``17:03``, ``17:03:30``, ``5:03pm``, ``3am``, ``noon``, ``midnight``, after an
        optional ``at``."""
        self._skip("at")
        token = self._peek()
        if token is None:
            self._unexpected("a time such as '17:03'")
        if token.word in ("noon", "midnight"):
            self.index += 1
            return time(12 if token.word == "noon" else 0)
        if token.kind == "clock":
            self.index += 1
            parts = token.text.split(":")
            minute_at = token.pos + len(parts[0]) + 1
            minute = self._sixty(parts[1], "minute", minute_at)
            second = 0
            if len(parts) > 2:
                second = self._sixty(parts[2], "second", minute_at + len(parts[1]) + 1)
            hour = self._hour(int(parts[0]), token.pos)
            return time(hour, minute, second)
        if token.kind == "number" and self._peek_word(1) in ("am", "pm"):
            self.index += 1
            return time(self._hour(self._int(token), token.pos))
        hint = f"write '{token.text}:00' or '{token.text}am'." if token.kind == "number" else None
        self._unexpected("a time such as '17:03'", hint)

    def _hour(self, hour: int, position: int) -> int:
        """The 24-hour value of ``hour``, reading an ``am``/``pm`` that follows it."""
        meridiem = self._peek_word()
        if meridiem not in ("am", "pm"):
            if hour > 23:
                self._fail(f"hour {hour}{AT} is out of range", position, "use 0-23.")
            return hour
        self.index += 1
        if not 1 <= hour <= 12:
            self._fail(f"hour {hour}{AT} is out of range", position, "use 1-12 with am or pm.")
        return hour % 12 + (12 if meridiem == "pm" else 0)
