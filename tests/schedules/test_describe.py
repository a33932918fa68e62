"""describe() for cron lines says what fires: exact words for the cases of issue 14, and a
reader of those words (here, sharing nothing with ``schedules``) whose fires must be the
schedule's own for random lines."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings

import schedules
from tests.schedules import oracle
from tests.schedules.test_oracle import instants, lines

WORDS = [
    # Steps that do not divide the hour are listed, not called "every N minutes".
    ("*/45 * * * *", "at minutes 0 and 45 of every hour"),
    ("*/7 * * * *", "every 7 minutes from minute 0 to 56 of every hour"),
    ("*/5 * * * *", "every 5 minutes"),
    ("5/15 * * * *", "every 15 minutes from minute 5"),
    ("*/1 * * * *", "every minute"),
    ("0 0/1 * * *", "every hour at :00"),
    ("5-5 * * * *", "every hour at :05"),
    ("30-30 0 12 * * *", "at 12:00:30"),
    ("15 */6 * * *", "every 6 hours from 00:15"),
    ("0 9-17 * * 1-5", "every hour from 09:00 to 17:00 on Monday to Friday"),
    ("0 8-20/4 * * *", "every 4 hours from 08:00 to 20:00"),
    ("0 9,17 * * *", "at 09:00 and 17:00"),
    ("*/15 9-17 * * *", "every 15 minutes during hours 9 to 17"),
    ("*/10 5 * * * *", "every 10 seconds during minute 5 of every hour"),
    ("30 */5 * * * *", "every 5 minutes at second 30"),
    # Days of the week by name, Monday first; steps are the days they give.
    ("0 0 * * */2", "at 00:00 on Tuesday, Thursday, Saturday and Sunday"),
    ("0 0 * * 5/2", "at 00:00 on Friday"),
    ("0 0 * * fri-sun", "at 00:00 on Friday to Sunday"),
    ("0 0 * * 7-0", "at 00:00 on Sunday"),
    ("0 0 * * 0-6", "at 00:00"),
    # The day OR rule, promised only when both fields are restricted.
    ("0 0 L * sun#1", "at 00:00 on the last day of the month or on the 1st Sunday of the month"),
    (
        "0 0 26/2 * L5",
        "at 00:00 on the 26th, the 28th and the 30th of the month or on the last Friday of the "
        "month",
    ),
    (
        "0 0 30 2 MON#5",
        "at 00:00 on the 30th of the month or on the 5th Monday of the month in February",
    ),
    ("0 0 1-31 * */2", "at 00:00 on Tuesday, Thursday, Saturday and Sunday"),
    ("0 0 1-10,15 * *", "at 00:00 on the 1st to the 10th and the 15th of the month"),
    ("0 0 LW * *", "at 00:00 on the last weekday of the month"),
    ("0 0 15W * *", "at 00:00 on the weekday nearest the 15th of the month"),
    ("0 0 1 jan-mar,jun *", "at 00:00 on the 1st of the month in January to March and June"),
]


@pytest.mark.parametrize(("text", "words"), WORDS)
def test_words(text: str, words: str) -> None:
    assert schedules.parse(text, tz="Europe/Rome").describe() == f"{words} (Europe/Rome)"


def test_cron_steps_and_intervals_read_differently() -> None:
    # '*/7' starts again at :00 each hour; 'every 7 minutes' counts from the Unix epoch.
    cron, interval = schedules.parse("*/7 * * * *"), schedules.parse("every 7 minutes")

    assert cron.describe() != interval.describe()
    assert interval.describe() == "every 7 minutes (UTC)"


# -- a reader of the words ---------------------------------------------------------------

DAY_NAMES = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
MONTH_NAMES = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
CLOCK = r"(\d\d):(\d\d)(?::(\d\d))?"
MARK = r":(\d\d)(?::(\d\d))?"


def _items(text: str) -> list[str]:
    return re.split(r", | and ", text)


def _numbers(text: str, unit: str) -> set[int]:
    """'minute 5', 'minutes 0 to 56 in steps of 7', 'minutes 0, 5 to 9 and 30'."""
    one = re.fullmatch(rf"{unit} (\d+)", text)
    if one:
        return {int(one.group(1))}
    steps = re.fullmatch(rf"{unit}s (\d+) to (\d+) in steps of (\d+)", text)
    if steps:
        low, high, step = map(int, steps.groups())
        return set(range(low, high + 1, step))
    listed = re.fullmatch(rf"{unit}s (.+)", text)
    assert listed, text
    values: set[int] = set()
    for item in _items(listed.group(1)):
        low, _, high = item.partition(" to ")
        values.update(range(int(low), int(high or low) + 1))
    return values


def _lead(text: str, unit: str, size: int) -> set[int]:
    """'every minute', 'every 5 minutes[ from minute 3]', 'every [N ]minute[s] from minute A
    to B', 'at minutes …'."""
    if text == f"every {unit}":
        return set(range(size))
    cycle = re.fullmatch(rf"every (\d+) {unit}s(?: from {unit} (\d+))?", text)
    if cycle:
        step, start = int(cycle.group(1)), int(cycle.group(2) or 0)
        return {value for value in range(size) if value % step == start % step}
    span = re.fullmatch(rf"every (?:(\d+) {unit}s|{unit}) from {unit} (\d+) to (\d+)", text)
    if span:
        return set(range(int(span.group(2)), int(span.group(3)) + 1, int(span.group(1) or 1)))
    assert text.startswith("at "), text
    return _numbers(text[3:], unit)


def _read_time(text: str) -> tuple[set[int], set[int], set[int]]:
    """Seconds, minutes and hours from the time words."""
    every_hour = set(range(24))

    def clock(match: re.Match[str], at: int = 1) -> tuple[int, int, int]:
        return int(match.group(at)), int(match.group(at + 1)), int(match.group(at + 2) or 0)

    if m := re.fullmatch(f"every hour at {MARK}", text):
        return {int(m.group(2) or 0)}, {int(m.group(1))}, every_hour
    if m := re.fullmatch(f"every (\\d+) hours from {CLOCK}", text):
        step, (hour, minute, second) = int(m.group(1)), clock(m, 2)
        return {second}, {minute}, {h for h in every_hour if h % step == hour % step}
    if m := re.fullmatch(f"every (?:(\\d+) hours|hour) from {CLOCK} to {CLOCK}", text):
        (hour, minute, second), (last, _, _) = clock(m, 2), clock(m, 5)
        return {second}, {minute}, set(range(hour, last + 1, int(m.group(1) or 1)))
    if m := re.fullmatch(f"at {MARK} during (.+)", text):
        return {int(m.group(2) or 0)}, {int(m.group(1))}, _numbers(m.group(3), "hour")
    if re.fullmatch(f"at {CLOCK}((, | and ){CLOCK})*", text):
        times = [tuple(int(v or 0) for v in c) for c in re.findall(CLOCK, text)]
        assert len({(m, s) for _, m, s in times}) == 1, text
        return {times[0][2]}, {times[0][1]}, {h for h, _, _ in times}
    hours = every_hour
    if m := re.fullmatch(r"(.+) during (hours? .+)", text):
        text, hours = m.group(1), _numbers(m.group(2), "hour")
    text = text.removesuffix(" of every hour")
    if text.startswith(("every second", "at second")) or re.match(r"every \d+ seconds", text):
        minutes = set(range(60))
        if m := re.fullmatch(r"(.+) during (minutes? .+)", text):
            text, minutes = m.group(1), _numbers(m.group(2), "minute")
        text = text.removesuffix(" of every minute")
        return _lead(text, "second", 60), minutes, hours
    second = 0
    if m := re.fullmatch(r"(.+) at second (\d+)", text):
        text, second = m.group(1), int(m.group(2))
    return {second}, _lead(text, "minute", 60), hours


def _read_days(
    text: str,
) -> tuple[set[int], list[tuple[object, ...]], set[int], list[tuple[object, ...]]]:
    days, day_specials = set(range(1, 32)), []
    weekdays, weekday_specials = set(range(7)), []
    for part in text.split(" or ") if text else []:
        assert part.startswith("on "), part
        part = part[3:]
        named_day = re.search(rf"the (\d\w\w|last) ({'|'.join(DAY_NAMES)})", part)
        if part.endswith(" of the month") and not named_day:
            days = set()
            for item in _items(part.removesuffix(" of the month")):
                if item == "the last day":
                    day_specials.append(("L",))
                elif item == "the last weekday":
                    day_specials.append(("LW",))
                elif m := re.fullmatch(r"the weekday nearest the (\d+)\w\w", item):
                    day_specials.append(("W", int(m.group(1))))
                else:
                    low, _, high = item.partition(" to ")
                    first = int(re.sub(r"\D", "", low))
                    days.update(range(first, int(re.sub(r"\D", "", high or low)) + 1))
        elif part.endswith(" of the month"):
            weekdays = set()
            for item in _items(part.removesuffix(" of the month")):
                nth = re.fullmatch(r"the (\d)\w\w (\w+)", item)
                if nth:
                    weekday_specials.append(("#", DAY_NAMES.index(nth[2]), int(nth[1])))
                else:
                    last = re.fullmatch(r"the last (\w+)", item)
                    assert last, item
                    weekday_specials.append(("L", DAY_NAMES.index(last[1])))
        else:
            weekdays = set()
            for item in _items(part):
                low, _, high = item.partition(" to ")
                first = (DAY_NAMES.index(low) - 1) % 7  # Monday first, as the words run
                last = (DAY_NAMES.index(high or low) - 1) % 7
                weekdays.update((d + 1) % 7 for d in range(first, last + 1))
    return days, day_specials, weekdays, weekday_specials


def read(words: str, text: str) -> oracle.Line:
    """The oracle's line for the words of a description (zone removed)."""
    months = set(range(1, 13))
    if m := re.fullmatch(
        r"(.+) in ((?:January|February|March|April|May|June|July|August|"
        r"September|October|November|December)(?:.*))",
        words,
    ):
        words, months = m.group(1), set()
        for item in _items(m.group(2)):
            low, _, high = item.partition(" to ")
            months.update(range(MONTH_NAMES.index(low) + 1, MONTH_NAMES.index(high or low) + 2))
    time_words, day_words = words, ""
    if " on " in words:
        time_words, day_words = words.split(" on ", 1)
        day_words = "on " + day_words
    seconds, minutes, hours = _read_time(time_words)
    days, day_specials, weekdays, weekday_specials = _read_days(day_words)
    return oracle.Line(
        text=text,
        seconds=frozenset(seconds),
        minutes=frozenset(minutes),
        hours=frozenset(hours),
        days=frozenset(days),
        months=frozenset(months),
        weekdays=frozenset(weekdays),
        day_specials=tuple(day_specials),
        weekday_specials=tuple(weekday_specials),
    )


@pytest.mark.parametrize(("text", "words"), WORDS)
def test_the_reader_reads_the_examples(text: str, words: str) -> None:
    line = read(words, text)
    after = datetime(2026, 1, 1, tzinfo=UTC)

    assert oracle.next_fire(line, ZoneInfo("UTC"), after) == schedules.parse(text).next_after(after)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=lines, after=instants)
def test_the_words_give_the_fires(line: oracle.Line, after: datetime) -> None:
    try:
        schedule = schedules.parse(line.text)
    except schedules.ScheduleError:
        return  # a line that never occurs; tests/schedules/test_oracle.py checks those
    words = schedule.describe().removesuffix(" (UTC)")
    described = read(words, line.text)

    moment: datetime | None = after
    for _ in range(3):  # the first fires the words imply are the schedule's
        assert moment is not None
        expected = oracle.next_fire(described, ZoneInfo("UTC"), moment)
        moment = schedule.next_after(moment)
        assert moment == expected, f"{line.text!r}: {words!r}"
        if moment is None:
            break
