"""Plain-English pieces shared by the schedules' ``describe()`` and ``str()``."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

__all__ = ["DAY_NAMES", "clock", "describe_cron", "join_words", "ordinal"]

#: Monday first, as datetime.weekday() counts.
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_CRON_DAYS = {"sun": 6, "mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5}
_CRON_MONTHS = {name[:3].lower(): number for number, name in enumerate(_MONTH_NAMES, 1)}
_ALIAS_WORDS = {
    "@yearly": "every year on 1 January at 00:00",
    "@annually": "every year on 1 January at 00:00",
    "@monthly": "on the 1st of every month at 00:00",
    "@weekly": "every Sunday at 00:00",
    "@daily": "every day at 00:00",
    "@midnight": "every day at 00:00",
    "@hourly": "every hour at :00",
}


def ordinal(number: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def join_words(words: Sequence[str]) -> str:
    """['a'] -> 'a', ['a', 'b'] -> 'a and b', ['a', 'b', 'c'] -> 'a, b and c'."""
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def clock(hour: int, minute: int, second: int = 0) -> str:
    """24-hour clock text; seconds only when there are some: '09:30', '17:03:30'."""
    text = f"{hour:02d}:{minute:02d}"
    return f"{text}:{second:02d}" if second else text


def describe_cron(fields: Sequence[str]) -> str:
    """English for a 5- or 6-field cron line (seconds first), zone not included."""
    if len(fields) == 1:
        return _ALIAS_WORDS[fields[0].lower()]
    fields = [field.lower() for field in fields]
    second = fields[0] if len(fields) == 6 else "0"
    minute, hour, day, month, weekday = fields[-5:]
    parts = [_time_words(second, minute, hour)]
    days = _day_words(day, weekday)
    if days:
        parts.append(days)
    if month not in ("*", "?"):
        parts.append("in " + _list_words(month, "month", _month_name))
    return " ".join(parts)


def _number(token: str) -> int | None:
    return int(token) if token.isdigit() else None


def _time_words(second: str, minute: str, hour: str) -> str:
    s, m, h = _number(second), _number(minute), _number(hour)
    if s is not None and m is not None:
        if h is not None:
            return f"at {clock(h, m, s)}"
        if hour == "*":
            return f"every hour at :{m:02d}" + (f":{s:02d}" if s else "")
        hours = [_number(item) for item in hour.split(",")]
        if all(value is not None for value in hours):
            return "at " + join_words([clock(value or 0, m, s) for value in hours])
        return f"at :{m:02d}" + (f":{s:02d}" if s else "") + f" during {_field(hour, 'hour')}"
    if s and m is None:
        return f"{_time_words('0', minute, hour)} at second {s}"
    if s == 0:
        words = [_field(minute, "minute")]
        span = "hour"
    else:
        words = [_field(second, "second")]
        span = "minute"
        if minute != "*":
            words.append(f"during {_field(minute, 'minute')}")
            span = "hour"
    if hour != "*":
        words.append(f"during {_field(hour, 'hour')}")
    elif not words[-1].startswith(("every", "during every")):
        words.append(f"of every {span}")
    return " ".join(words)


def _day_words(day: str, weekday: str) -> str:
    any_day = day in ("*", "?")
    any_weekday = weekday in ("*", "?")
    if any_day and any_weekday:
        return ""
    words = []
    if not any_day:
        if day == "l":
            words.append("on the last day of the month")
        else:
            words.append("on " + _list_words(day, "day", _day_of_month) + " of the month")
    if not any_weekday:
        words.append("on " + _list_words(weekday, "weekday", _weekday_name))
    # POSIX cron: when both day fields are restricted, either one matching is enough.
    return " or ".join(words)


def _day_of_month(token: str) -> str:
    if token.endswith("w") or token.startswith("w"):
        return f"the weekday nearest the {ordinal(int(token.strip('w')))}"
    return "the last day" if token == "l" else f"the {ordinal(int(token))}"


def _weekday_name(token: str) -> str:
    nth = re.fullmatch(r"(\w+)#(\d)", token)
    if nth:
        return f"the {ordinal(int(nth.group(2)))} {_weekday_name(nth.group(1))} of the month"
    last = re.fullmatch(r"l(\d)", token)
    if last:
        return f"the last {_weekday_name(last.group(1))} of the month"
    if token.isdigit():
        return DAY_NAMES[(int(token) - 1) % 7]
    return DAY_NAMES[_CRON_DAYS[token]]


def _month_name(token: str) -> str:
    number = int(token) if token.isdigit() else _CRON_MONTHS[token]
    return _MONTH_NAMES[number - 1]


def _field(field: str, unit: str) -> str:
    """English for a time field: '*', '*/5', '7', '1-5', '0,30', '10-40/10'."""
    items = field.split(",")
    if len(items) > 1 and all(item.isdigit() for item in items):
        return f"{unit}s {join_words(items)}"
    return join_words([_item(item, unit, str, counted=True) for item in items])


def _list_words(field: str, unit: str, name: Callable[[str], str]) -> str:
    """English for a day or month field: 'mon-fri', '1,15', 'l', 'jan-mar', '*/2'."""
    return join_words([_item(item, unit, name, counted=False) for item in field.split(",")])


def _item(item: str, unit: str, name: Callable[[str], str], *, counted: bool) -> str:
    base, _, step = item.partition("/")
    every = f"every {step} {unit}s" if counted else f"every {ordinal(int(step or 1))} {unit}"
    if base in ("*", "?"):
        return every if step else f"every {unit}"
    low, dash, high = base.partition("-")
    if dash:
        span = f"{name(low)} to {name(high)}"
        if step:
            return f"{every} from {span}"
        return f"{unit}s {span}" if counted else span
    if step:
        return f"{every} from {name(low)}"
    return f"{unit} {name(low)}" if counted else name(low)
