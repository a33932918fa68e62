"""Plain-English pieces shared by the schedules' ``describe()`` and ``str()``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise

from schedules.cronfields import Field

__all__ = ["DAY_NAMES", "clock", "describe_cron", "join_words", "ordinal"]

#: Monday first, as datetime.weekday() counts.
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
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


def describe_cron(fields: Mapping[str, Field], alias: str | None = None) -> str:
    """English for a cron line read by schedules.cronfields, zone not included.

    Built from the sets of values, never from the spelling, so equal sets read alike and the
    words are true of every fire: a step that does not divide the hour is listed as the
    minutes it gives ("every 7 minutes from minute 0 to 56 of every hour").
    """
    if alias is not None:
        return _ALIAS_WORDS[alias]
    parts = [_time_words(fields["second"].values, fields["minute"].values, fields["hour"].values)]
    days = _day_words(fields["day-of-month"], fields["day-of-week"])
    if days:
        parts.append(days)
    months = fields["month"].values
    if len(months) < 12:
        parts.append("in " + _names(months, lambda month: _MONTH_NAMES[month - 1]))
    return " ".join(parts)


# -- the shape of a set of values ------------------------------------------------------------


def _progression(values: Sequence[int]) -> int | None:
    """The step of an arithmetic progression of three values or more, else None."""
    if len(values) < 3:
        return None
    step = values[1] - values[0]
    if all(b - a == step for a, b in pairwise(values)):
        return step
    return None


def _cycle(values: Sequence[int], size: int) -> int | None:
    """The step when ``values`` repeat evenly around the whole field (``*/15`` in minutes:
    0, 15, 30, 45, then 0 again 15 later), else None."""
    step = _progression(values) if len(values) > 2 else None
    if len(values) == 2 and values[1] - values[0] == size // 2 and size % 2 == 0:
        step = size // 2
    if step is None or step == 1 or size % step or len(values) != size // step:
        return None
    return step


def _runs(values: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive values grouped: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _listed(values: Sequence[int], name: Callable[[int], str]) -> list[str]:
    """Each value, with runs of three or more as 'a to b'."""
    words = []
    for low, high in _runs(values):
        if high - low >= 2:
            words.append(f"{name(low)} to {name(high)}")
        else:
            words.extend(name(value) for value in range(low, high + 1))
    return words


def _noun(values: Sequence[int], unit: str) -> str:
    """Which values of a time field: 'minute 5', 'minutes 0 to 10', 'minutes 0 and 45',
    'minutes 0 to 56 in steps of 7'."""
    if len(values) == 1:
        return f"{unit} {values[0]}"
    step = _progression(values)
    if step is not None and step > 1:
        return f"{unit}s {values[0]} to {values[-1]} in steps of {step}"
    return f"{unit}s {join_words(_listed(values, str))}"


def _lead(values: Sequence[int], unit: str, size: int) -> tuple[str, bool]:
    """What fires, for the seconds or the minutes, and whether it repeats evenly around the
    whole field (then no scope such as 'of every hour' is needed)."""
    if len(values) == size:
        return f"every {unit}", True
    step = _cycle(values, size)
    if step is not None:
        start = f" from {unit} {values[0]}" if values[0] else ""
        return f"every {step} {unit}s{start}", True
    step = _progression(values)
    if step is not None:
        if step == 1:
            return f"every {unit} from {unit} {values[0]} to {values[-1]}", False
        return f"every {step} {unit}s from {unit} {values[0]} to {values[-1]}", False
    return f"at {_noun(values, unit)}", False


# -- time of day -----------------------------------------------------------------------------


def _time_words(seconds: Sequence[int], minutes: Sequence[int], hours: Sequence[int]) -> str:
    if len(seconds) == 1 and len(minutes) == 1:
        return _clock_words(seconds[0], minutes[0], hours)
    if len(seconds) == 1:
        words, even = _lead(minutes, "minute", 60)
        if seconds[0]:
            words += f" at second {seconds[0]}"
    else:
        words, even = _lead(seconds, "second", 60)
        if len(minutes) < 60:
            words += f" during {_noun(minutes, 'minute')}"
            even = False
        elif not even:
            words += " of every minute"
            even = True
    if len(hours) < 24:
        return f"{words} during {_noun(hours, 'hour')}"
    return words if even else f"{words} of every hour"


def _clock_words(second: int, minute: int, hours: Sequence[int]) -> str:
    """One minute (and second) of some hours: 'at 09:00', 'every hour at :15',
    'every 6 hours from 00:15', 'every hour from 09:00 to 17:00', 'at 09:00 and 17:00'."""
    mark = f":{minute:02d}" + (f":{second:02d}" if second else "")
    if len(hours) == 24:
        return f"every hour at {mark}"
    if len(hours) == 1:
        return f"at {clock(hours[0], minute, second)}"
    step = _cycle(hours, 24)
    if step is not None:
        return f"every {step} hours from {clock(hours[0], minute, second)}"
    step = _progression(hours)
    if step is not None:
        every = "every hour" if step == 1 else f"every {step} hours"
        first, last = clock(hours[0], minute, second), clock(hours[-1], minute, second)
        return f"{every} from {first} to {last}"
    if len(hours) <= 8:
        return "at " + join_words([clock(hour, minute, second) for hour in hours])
    return f"at {mark} during {_noun(hours, 'hour')}"


# -- days and months -------------------------------------------------------------------------


def _day_words(day_of_month: Field, day_of_week: Field) -> str:
    words = []
    if day_of_month.values != tuple(range(1, 32)):
        items = _listed(day_of_month.values, lambda day: f"the {ordinal(day)}")
        items += [_day_special(special) for special in day_of_month.specials]
        words.append(f"on {join_words(items)} of the month")
    if day_of_week.values != tuple(range(7)):
        specials = [_weekday_special(special) for special in day_of_week.specials]
        if specials:
            words.append(f"on {join_words(specials)} of the month")
        else:
            words.append(f"on {_names(day_of_week.values, _weekday_name, monday_first=True)}")
    # POSIX cron: when both day fields are restricted, either one matching is enough.
    return " or ".join(words)


def _day_special(special: tuple[int | str, ...]) -> str:
    if special[0] == "L":
        return "the last day"
    if special[0] == "LW":
        return "the last weekday"
    return f"the weekday nearest the {ordinal(int(special[1]))}"


def _weekday_special(special: tuple[int | str, ...]) -> str:
    day = _weekday_name(int(special[1]))
    if special[0] == "#":
        return f"the {ordinal(int(special[2]))} {day}"
    return f"the last {day}"


def _weekday_name(number: int) -> str:
    """Cron counts Sunday as 0."""
    return DAY_NAMES[(number - 1) % 7]


def _names(values: Sequence[int], name: Callable[[int], str], *, monday_first: bool = False) -> str:
    """Month or weekday names, runs of three or more as 'Monday to Friday'."""
    if monday_first:  # so that Friday, Saturday and Sunday make one run
        ordered = sorted((value - 1) % 7 for value in values)
        return join_words(_listed(ordered, lambda day: DAY_NAMES[day]))
    return join_words(_listed(values, name))
