"""Cron lines against an independent brute-force oracle (tests/schedules/oracle.py).

Random lines in every spelling the dialect takes (single-value ranges, steps, names, 7 for
Sunday, ``L``, ``LW``, ``15W``, ``5#3``, ``L5`` with and without a restricted day of month),
random zones with and without DST, random instants (many near a change of offset or a month
end): ``next_after`` must give the oracle's answer, and equal sets in different spellings
must give equal answers and equal descriptions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schedules
from tests.schedules import oracle
from tests.schedules.oracle import DAYS, MONTHS, Line

ZONES = [
    "UTC",
    "Europe/Rome",
    "America/New_York",
    "Australia/Lord_Howe",  # a half-hour change
    "America/Santiago",  # changes at midnight
    "Asia/Kolkata",
    "Pacific/Chatham",  # +12:45 / +13:45
    "Asia/Tokyo",
]


class Field(NamedTuple):
    text: str
    values: frozenset[int]
    specials: tuple[tuple[object, ...], ...] = ()


class Spec(NamedTuple):
    low: int
    high: int  # the largest value accepted
    last: int  # where '*' and 'N/step' end
    names: tuple[str, ...] = ()


SECOND = Spec(0, 59, 59)
MINUTE = Spec(0, 59, 59)
HOUR = Spec(0, 23, 23)
DAY = Spec(1, 31, 31)
MONTH = Spec(1, 12, 12, MONTHS)
WEEKDAY = Spec(0, 7, 6, DAYS)


BOOLEANS = st.booleans()
KINDS = st.sampled_from(["star", "one", "range", "same", "step", "from", "range_step"])
CASES = st.sampled_from([str, str.upper, str.title])


def _spell(spec: Spec, value: int, draw: st.DrawFn) -> str:
    if spec.names and value <= len(spec.names) - (spec is MONTH) and draw(BOOLEANS):
        name = spec.names[value - spec.low] if spec is MONTH else spec.names[value % 7]
        return draw(CASES)(name)
    return str(value)


@st.composite
def _item(draw: st.DrawFn, spec: Spec, star: str = "*") -> Field:
    size = spec.last - spec.low + 1
    value = st.integers(spec.low, spec.high)
    kind = draw(KINDS)
    if kind == "star":
        return Field(star, frozenset(range(spec.low, spec.last + 1)))
    if kind == "one":
        one = draw(value)
        return Field(_spell(spec, one, draw), frozenset({one}))
    step = draw(st.integers(1, size) | st.integers(1, 3))
    if kind == "step":
        return Field(f"{star}/{step}", frozenset(range(spec.low, spec.last + 1, step)))
    if kind == "from":
        start = draw(st.integers(spec.low, spec.last))
        text = f"{_spell(spec, start, draw)}/{step}"
        return Field(text, frozenset(range(start, spec.last + 1, step)))
    low, high = sorted(draw(st.tuples(value, value)))
    if kind == "same":  # a range of one value: N-N
        high = low
    if spec is WEEKDAY and low == 7:
        high = 7
    high_text = _spell(spec, high, draw)
    if spec is WEEKDAY and high == 7 and low == 0:
        high_text = "7"  # '0-SUN' is Sunday alone: SUN ends a range as 7 only after Monday
    if spec is WEEKDAY and high == 7 and low > 0 and draw(BOOLEANS):
        high_text = draw(st.sampled_from(["0", "sun", "SUN"]))  # Sunday ends a range as 0
    if spec is DAY and high == 31 and draw(BOOLEANS):
        high_text = "L"  # '15-L': to the end of the month
    low_text = "7" if spec is WEEKDAY and low == 7 else _spell(spec, low, draw)  # SUN is 0
    text = f"{low_text}-{high_text}"
    if kind == "range_step":
        return Field(f"{text}/{step}", frozenset(range(low, high + 1, step)))
    return Field(text, frozenset(range(low, high + 1)))


def _join(items: list[Field]) -> Field:
    values = frozenset().union(*(item.values for item in items))
    specials = tuple(special for item in items for special in item.specials)
    return Field(",".join(item.text for item in items), values, specials)


def _plain(spec: Spec, star: str = "*") -> st.SearchStrategy[Field]:
    return st.lists(_item(spec, star), min_size=1, max_size=3).map(_join)


# Sparse seconds most of the time: a line firing every second is slow to check by brute force.
seconds_field = st.one_of(
    st.integers(0, 59).map(lambda s: Field(str(s), frozenset({s}))),
    _plain(SECOND),
)
day_special = st.one_of(
    st.just(Field("L", frozenset(), (("L",),))),
    st.just(Field("LW", frozenset(), (("LW",),))),
    st.integers(1, 31).map(lambda n: Field(f"{n}W", frozenset(), (("W", n),))),
)
day_field = st.one_of(
    _plain(DAY, "*"),
    _plain(DAY, "?"),
    st.lists(st.one_of(day_special, _item(DAY)), min_size=1, max_size=3).map(_join),
)


@st.composite
def _weekday_special(draw: st.DrawFn) -> Field:
    day = draw(st.integers(0, 7))
    spelled = _spell(WEEKDAY, day, draw)
    if draw(BOOLEANS):
        nth = draw(st.integers(1, 5))
        return Field(f"{spelled}#{nth}", frozenset(), (("#", day % 7, nth),))
    return Field(f"L{spelled}", frozenset(), (("L", day % 7),))


weekday_field = st.one_of(
    _plain(WEEKDAY, "*"),
    _plain(WEEKDAY, "?"),
    st.lists(_weekday_special(), min_size=1, max_size=2).map(_join),
)


def _line(fields: tuple[Field, ...], seconds: bool) -> Line:
    second, minute, hour, day, month, weekday = fields
    shown = fields if seconds else fields[1:]
    return Line(
        text=" ".join(f.text for f in shown),
        seconds=second.values if seconds else frozenset({0}),
        minutes=minute.values,
        hours=hour.values,
        days=day.values,
        months=month.values,
        weekdays=frozenset(value % 7 for value in weekday.values),
        day_specials=day.specials,
        weekday_specials=weekday.specials,
    )


lines = st.builds(
    _line,
    st.tuples(
        seconds_field,
        _plain(MINUTE),
        _plain(HOUR),
        day_field,
        _plain(MONTH),
        weekday_field,
    ),
    st.booleans(),
)


def _transitions(zone: str) -> list[datetime]:
    tz = ZoneInfo(zone)
    found = []
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    while moment.year < 2028:
        later = moment + timedelta(hours=6)
        if moment.astimezone(tz).utcoffset() != later.astimezone(tz).utcoffset():
            found.append(later)
        moment = later
    return found


TRANSITIONS = sorted({t for zone in ZONES for t in _transitions(zone)})
instants = st.one_of(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1)).map(
        lambda d: d.replace(tzinfo=UTC)
    ),
    st.tuples(
        st.sampled_from(TRANSITIONS), st.integers(-8 * 3600, 8 * 3600), st.integers(0, 999_999)
    ).map(lambda t: t[0] + timedelta(seconds=t[1], microseconds=t[2])),
    st.tuples(st.integers(1995, 2055), st.integers(1, 12), st.integers(-2 * 86400, 86400)).map(
        lambda t: datetime(t[0], t[1], 1, tzinfo=UTC) + timedelta(seconds=t[2])
    ),
)


def _never_occurs(line: Line) -> bool:
    """The only lines the dialect refuses for their days: the day of month alone decides and
    none of its days exists in the listed months (``30 2``)."""
    if line.weekdays != frozenset(range(7)) or line.days == frozenset(range(1, 32)):
        return False
    longest = max((31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[m - 1] for m in line.months)
    days = set(line.days) | {s[1] for s in line.day_specials if s[0] == "W"}
    if any(s[0] in ("L", "LW") for s in line.day_specials):
        return False
    return all(day > longest for day in days)  # type: ignore[operator]


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=lines, zone=st.sampled_from(ZONES), after=instants)
def test_next_after_matches_the_oracle(line: Line, zone: str, after: datetime) -> None:
    if _never_occurs(line):
        with pytest.raises(schedules.ScheduleError, match="never occurs"):
            schedules.parse(line.text, tz=zone)
        return
    schedule = schedules.parse(line.text, tz=zone)

    expected = oracle.next_fire(line, ZoneInfo(zone), after)
    got = schedule.next_after(after)

    assert schedule.hourly_or_faster == line.hourly_or_faster
    assert (got and got.astimezone(UTC)) == expected, f"{line.text!r} after {after}"


# -- one set, several spellings ----------------------------------------------------------


def _spellings(spec: Spec, values: frozenset[int]) -> list[str]:
    """Ways to write one set: each value, runs as ranges, '*' and steps when they fit."""
    ordered = sorted(values)
    spelled = [",".join(map(str, ordered))]
    runs: list[list[int]] = []
    for value in ordered:
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    spelled.append(",".join(f"{r[0]}-{r[-1]}" for r in runs))  # '5-5' for a lone value
    spelled.append(
        ",".join(f"{v}-{v}/7" if v % 2 else f"{v}/{spec.last - spec.low + 1}" for v in ordered)
    )
    full = frozenset(range(spec.low, spec.last + 1))
    if values == full:
        spelled += ["*", f"{spec.low}-{spec.last}", "*/1", f"{spec.low}/1"]
        if spec is WEEKDAY:
            spelled += ["0-7", "1-7", "SUN-SAT", "mon-sun"]
    for step in range(2, spec.last - spec.low + 2):
        for start in range(spec.low, spec.low + step):
            if values == frozenset(range(start, spec.last + 1, step)):
                spelled += [f"{start}/{step}", f"{start}-{spec.last}/{step}"]
                if start == spec.low:
                    spelled.append(f"*/{step}")
    if spec is WEEKDAY and 0 in values:
        spelled.append(",".join(str(7 if v == 0 else v) for v in ordered))
    return spelled


def _value_set(spec: Spec) -> st.SearchStrategy[frozenset[int]]:
    every = st.just(frozenset(range(spec.low, spec.last + 1)))
    stepped = st.tuples(st.integers(1, 6), st.integers(0, 5)).map(
        lambda t: frozenset(range(spec.low + t[1] % t[0], spec.last + 1, t[0]))
    )
    some = st.frozensets(st.integers(spec.low, spec.last), min_size=1, max_size=5)
    return st.one_of(every, stepped, some)


@settings(max_examples=600, deadline=None)
@given(
    sets=st.tuples(
        _value_set(MINUTE),
        _value_set(HOUR),
        _value_set(DAY),
        _value_set(MONTH),
        _value_set(WEEKDAY),
    ),
    choice=st.randoms(use_true_random=False),
    zone=st.sampled_from(ZONES),
    after=instants,
)
def test_equal_sets_answer_alike_whatever_the_spelling(
    sets: tuple[frozenset[int], ...], choice: object, zone: str, after: datetime
) -> None:
    specs = (MINUTE, HOUR, DAY, MONTH, WEEKDAY)
    spellings = [_spellings(spec, values) for spec, values in zip(specs, sets, strict=True)]
    rng = choice  # a hypothesis-controlled random.Random
    texts = {" ".join(rng.choice(options) for options in spellings) for _ in range(4)}  # type: ignore[attr-defined]
    texts.add(" ".join(options[0] for options in spellings))
    outcomes = [_parse_or_refusal(text, zone) for text in sorted(texts)]
    if any(isinstance(outcome, str) for outcome in outcomes):
        # A line whose days never occur ('30 2') is refused in every spelling alike.
        assert {outcome if isinstance(outcome, str) else "" for outcome in outcomes} == {
            "never occurs"
        }
        return
    parsed = [outcome for outcome in outcomes if not isinstance(outcome, str)]

    answers = {s.next_after(after) for s in parsed}
    descriptions = {s.describe() for s in parsed}

    assert len(answers) == 1, sorted(texts)
    assert len(descriptions) == 1, sorted(texts)
    assert len({s.hourly_or_faster for s in parsed}) == 1


def _parse_or_refusal(text: str, zone: str) -> schedules.Schedule | str:
    try:
        return schedules.parse(text, tz=zone)
    except schedules.ScheduleError as error:
        return "never occurs" if "never occurs" in str(error) else str(error)


# -- the examples of issue 14, one by one ------------------------------------------------


def _fires(text: str, after: str, count: int, zone: str = "UTC") -> list[str]:
    schedule = schedules.parse(text, tz=zone)
    moment: datetime | None = datetime.fromisoformat(after).replace(tzinfo=ZoneInfo(zone))
    fires = []
    for _ in range(count):
        assert moment is not None
        moment = schedule.next_after(moment)
        assert moment is not None
        fires.append(moment.replace(tzinfo=None).isoformat(" "))
    return fires


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        # A range of one value is that value, in every field.
        ("5-5 * * * *", "2026-01-01", ["2026-01-01 00:05:00", "2026-01-01 01:05:00"]),
        ("30-30 0 12 * * *", "2026-01-01", ["2026-01-01 12:00:30", "2026-01-02 12:00:30"]),
        ("0 0 15-15/9 * *", "2026-01-01", ["2026-01-15 00:00:00", "2026-02-15 00:00:00"]),
        # '#' and 'L<d>' follow the OR rule with a restricted day of month.
        (
            "0 0 L * sun#1",
            "2026-01-01",
            ["2026-01-04 00:00:00", "2026-01-31 00:00:00", "2026-02-01 00:00:00"],
        ),
        (
            "0 0 26/2 * L5",
            "2026-01-01",
            ["2026-01-26 00:00:00", "2026-01-28 00:00:00", "2026-01-30 00:00:00"],
        ),
        ("0 0 30 2 MON#5", "2026-01-01", ["2044-02-29 00:00:00", "2072-02-29 00:00:00"]),
        # Equal sets, equal answers: '*/5' and '1-31/5' are both restricted, '0-6' is not.
        ("0 0 */5 * 0-6", "2026-01-01", ["2026-01-06 00:00:00", "2026-01-11 00:00:00"]),
        ("0 0 1-31/5 * 0-6", "2026-01-01", ["2026-01-06 00:00:00", "2026-01-11 00:00:00"]),
        ("0 0 1-31 * */2", "2026-01-01", ["2026-01-03 00:00:00", "2026-01-04 00:00:00"]),
        ("0 0 1-31 * 0,2,4,6", "2026-01-01", ["2026-01-03 00:00:00", "2026-01-04 00:00:00"]),
        # 7 is Sunday, also at the end of a range.
        ("0 0 * * 7-0", "2026-01-01", ["2026-01-04 00:00:00", "2026-01-11 00:00:00"]),
        ("0 0 * * 5/2", "2026-01-01", ["2026-01-02 00:00:00", "2026-01-09 00:00:00"]),
        ("*/45 * * * *", "2026-01-01", ["2026-01-01 00:45:00", "2026-01-01 01:00:00"]),
        ("0 0 LW * *", "2026-01-01", ["2026-01-30 00:00:00", "2026-02-27 00:00:00"]),
        ("0 0 1W * *", "2026-01-01", ["2026-02-02 00:00:00", "2026-03-02 00:00:00"]),
        ("0 0 1W * *", "2026-07-02", ["2026-08-03 00:00:00", "2026-09-01 00:00:00"]),
        ("0 0 31W * *", "2026-05-01", ["2026-05-29 00:00:00", "2026-07-31 00:00:00"]),
    ],
)
def test_issue_examples(text: str, after: str, expected: list[str]) -> None:
    assert _fires(text, after, len(expected)) == expected


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("0 0 */5 * 0-6", "0 0 1-31/5 * 0-6"),
        ("0 0 1-31 * */2", "0 0 1-31 * 0,2,4,6"),
        ("0 0 * * 0-6", "0 0 * * *"),
        ("0 0 1-31 * 1", "0 0 * * mon"),
        ("*/1 * * * *", "* * * * *"),
        ("0 0/1 * * *", "0 * * * *"),
    ],
)
def test_equal_sets_have_equal_fires_and_words(first: str, second: str) -> None:
    one, other = schedules.parse(first), schedules.parse(second)
    after = datetime(2026, 1, 1, tzinfo=UTC)

    assert one.next_after(after) == other.next_after(after)
    assert one.describe() == other.describe()
    assert one.hourly_or_faster == other.hourly_or_faster
