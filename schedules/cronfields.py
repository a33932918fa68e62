"""The cron dialect: one field's text to its set of values and its special days.

Every field is read into a sorted tuple of numbers; the day fields may add special days
(``L``, ``LW``, ``15W`` in the day of month; ``5#3`` and ``L5`` in the day of week). The
matcher (schedules.cronsets) and the English (schedules.describe) work from those values
only, so two spellings of one set (``*/5`` and ``0-55/5``, ``0-6`` and ``*``) fire and read
alike. The README's "Cron lines" section is the reference for this dialect.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from schedules.errors import AT, ScheduleError, did_you_mean

__all__ = ["FIELDS", "Field", "FieldSpec", "parse_field"]

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class FieldSpec(NamedTuple):
    """What one field accepts: values ``low``-``high``; ``*`` and ``N/step`` run to ``last``."""

    name: str
    low: int
    high: int
    last: int  # the end of '*' and of 'N/step' (6 for the day of week: 7 is Sunday again)
    names: tuple[str, ...]  # word aliases, numbered from ``low`` (from 0 for the week)
    cycle: str  # for "a step of 99 is more than the 60 minutes in an hour"


FIELDS = {
    "second": FieldSpec("second", 0, 59, 59, (), "the 60 seconds in a minute"),
    "minute": FieldSpec("minute", 0, 59, 59, (), "the 60 minutes in an hour"),
    "hour": FieldSpec("hour", 0, 23, 23, (), "the 24 hours in a day"),
    "day-of-month": FieldSpec("day-of-month", 1, 31, 31, (), "the 31 days in a month"),
    "month": FieldSpec("month", 1, 12, 12, _MONTHS, "the 12 months in a year"),
    "day-of-week": FieldSpec("day-of-week", 0, 7, 6, _DAYS, "the 7 days in a week"),
}

_HASHED = re.compile(r"[hr](\(\d+-\d+\))?(/\d+)?", re.IGNORECASE | re.ASCII)
_VALUE = r"(?:\d+|[a-z]+)"
_ITEM = re.compile(
    rf"(?P<base>\*|\?|(?P<start>{_VALUE})(?:-(?P<end>{_VALUE}))?)(?:/(?P<step>\d+))?",
    re.ASCII,
)
_NTH = re.compile(rf"(?P<day>{_VALUE})#(?P<nth>\d+)", re.ASCII)
_LAST_WEEKDAY = re.compile(rf"l(?P<day>{_VALUE})", re.ASCII)
_NEAREST = re.compile(r"(?P<day>\d+)w", re.ASCII)
_Fail = Callable[[str, str], ScheduleError]
_MAX_DIGITS = 4  # longer numbers are out of range in every field; int() is never asked


class Field(NamedTuple):
    """One field read: its values and, for the day fields, its special days.

    ``specials`` holds ``("L",)`` (last day of the month), ``("LW",)`` (last weekday),
    ``("W", 15)`` (weekday nearest the 15th) for the day of month, and ``("#", 5, 3)`` (third
    Friday), ``("L", 5)`` (last Friday) for the day of week (Sunday is 0).
    """

    values: tuple[int, ...]
    specials: tuple[tuple[int | str, ...], ...]


def parse_field(spec: FieldSpec, field: str, text: str, position: int) -> Field:
    """Read one field; ``text`` and ``position`` place errors in the whole expression."""

    def fail(problem: str, hint: str) -> ScheduleError:
        return ScheduleError(text, f"{spec.name} field {field!r}{AT} {problem}", position, hint)

    values: set[int] = set()
    specials: list[tuple[int | str, ...]] = []
    plain: list[str] = []
    lowered = field.lower()
    for item in lowered.split(","):
        if _HASHED.fullmatch(item):
            raise fail(
                "uses a hashed or random value",
                "write the values out; they must be the same in every process.",
            )
        special = _special(spec, item, fail)
        if special is not None:
            specials.append(special)
            continue
        plain.append(item)
        values.update(_plain_item(spec, item, fail))
    if spec.name == "day-of-week" and specials and plain:
        items = field.split(",")
        special_items = [
            item for item, low in zip(items, lowered.split(","), strict=True) if low not in plain
        ]
        plain_items = [item for item in items if item not in special_items]
        raise fail(
            "mixes '#' or 'L' days with plain days, which cannot be listed together",
            f"use one entry for {','.join(special_items)!r} and another for "
            f"{','.join(plain_items)!r}.",
        )
    if spec.name == "day-of-week":
        values = {value % 7 for value in values}
    return Field(tuple(sorted(values)), tuple(dict.fromkeys(specials)))


def _special(spec: FieldSpec, item: str, fail: _Fail) -> tuple[int | str, ...] | None:
    if spec.name == "day-of-month":
        if item == "l":
            return ("L",)
        if item == "lw":
            return ("LW",)
        nearest = _NEAREST.fullmatch(item)
        if nearest:
            return ("W", _number(spec, nearest.group("day"), fail))
        if "w" in item:
            raise fail(
                "has a 'W' that does not follow one day",
                "write e.g. '15W' (the weekday nearest the 15th) or 'LW' (the last weekday).",
            )
        return None
    if spec.name != "day-of-week":
        return None
    nth = _NTH.fullmatch(item)
    if nth:
        day = _number(spec, nth.group("day"), fail) % 7
        count = nth.group("nth")
        if len(count) > 1 or not 1 <= int(count) <= 5:
            raise fail(f"asks for weekday number {count} of the month", "use #1 to #5.")
        return ("#", day, int(count))
    last = _LAST_WEEKDAY.fullmatch(item)
    if last:
        return ("L", _number(spec, last.group("day"), fail) % 7)
    if item == "l":
        raise fail(
            "has 'L' without a day",
            "write e.g. 'L5' for the last Friday of the month, or put 'L' in the day-of-month "
            "field for the last day of the month.",
        )
    if re.fullmatch(r"\w+l", item, re.ASCII):
        raise fail(
            f"writes the last weekday as {item.upper()!r}",
            f"write 'L{item[:-1].upper()}' for the last such day of the month.",
        )
    if "#" in item:
        raise fail("has a '#' that is not a day and a number", "write e.g. '5#3' or 'FRI#3'.")
    return None


def _plain_item(spec: FieldSpec, item: str, fail: _Fail) -> range:
    match = _ITEM.fullmatch(item)
    if match is None:
        raise fail(
            "is not valid",
            f"use {spec.low}-{spec.high}, '*', ranges like '1-5', lists like '1,3' and steps "
            "like '*/5'.",
        )
    base, step_text = match.group("base"), match.group("step")
    if base == "?" and spec.name not in ("day-of-month", "day-of-week"):
        raise fail("uses '?', which only the day fields take", "use '*'.")
    step = 1
    if step_text is not None:
        size = spec.last - spec.low + 1
        if step_text.strip("0") == "":
            raise fail("has a step of 0", "use a step of 1 or more.")
        if len(step_text) > _MAX_DIGITS or int(step_text) > size:
            hint = f"use a step of 1-{size}"
            if spec.name in ("second", "minute", "hour") and len(step_text) <= 6:
                hint += f", or a phrase such as 'every {int(step_text)} {spec.name}s'"
            raise fail(f"has a step of {step_text}, more than {spec.cycle}", hint + ".")
        step = int(step_text)
    if base in ("*", "?"):
        return range(spec.low, spec.last + 1, step)
    start = _number(spec, match.group("start"), fail)
    end_text = match.group("end")
    if end_text is None:
        if step_text is None:
            return range(start, start + 1)
        if start > spec.last:
            raise fail(
                f"steps from {start}, past the end of the field at {spec.last}",
                "start from 0 for Sunday." if spec.name == "day-of-week" else "start lower.",
            )
        return range(start, spec.last + 1, step)
    if spec.name == "day-of-month" and end_text == "l":
        end = 31  # '15-L': to the end of the month, whatever its length
    else:
        end = _number(spec, end_text, fail)
        if spec.name == "day-of-week" and end == 0 and start > 0:
            end = 7  # 'FRI-SUN': Sunday ends the week as 0, 7 or SUN alike
    if end < start:
        raise fail(f"has the range {start}-{end}, which runs backwards", _backwards(spec, match))
    return range(start, end + 1, step)


def _backwards(spec: FieldSpec, match: re.Match[str]) -> str:
    start, end = match.group("start"), match.group("end")
    if spec.name == "day-of-week" and start == "7":
        return "7 (Sunday) can only end a range; start it with 0 instead."
    first, last = str(spec.low), str(spec.last)
    if spec.names and not start.isdigit():
        first, last = spec.names[0], spec.names[spec.last - spec.low]
    start, end, first, last = (word.upper() for word in (start, end, first, last))
    to_last = start if start == last else f"{start}-{last}"
    from_first = end if end == first else f"{first}-{end}"
    return (
        f"ranges do not wrap around: write '{end}-{start}', "
        f"or '{to_last},{from_first}' to go past the end."
    )


def _number(spec: FieldSpec, token: str, fail: _Fail) -> int:
    """A number or a name of ``spec``'s field, checked against its range."""
    if token.isdigit():  # ASCII only: the patterns above match no other digits
        if len(token) > _MAX_DIGITS or not spec.low <= int(token) <= spec.high:
            raise fail("is out of range", f"use {spec.low}-{spec.high}.")
        return int(token)
    if token in spec.names:
        return spec.names.index(token) + (1 if spec.name == "month" else 0)
    if not spec.names:
        hint = f"use {spec.low}-{spec.high}"
        if spec.name == "day-of-month":
            hint += ", 'L' (the last day), 'LW' (the last weekday) or e.g. '15W'"
        raise fail("is not a number", hint + ".")
    hint = did_you_mean(token, spec.names) or (
        f"use {spec.low}-{spec.high} or {spec.names[0]}-{spec.names[-1]}."
    )
    raise fail(f"has the unknown name {token!r}", hint)
