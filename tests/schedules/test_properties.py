"""Property tests: fire times strictly increase and skip nothing; calendar phrases agree with
their cron lines. Cron lines against an independent oracle: tests/schedules/test_oracle.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import assume, given, settings
from hypothesis import strategies as st

import schedules

ZONES = [
    "UTC",
    "Europe/Rome",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Santiago",  # changes at midnight
    "Europe/London",
]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _transitions(zone: str, years: range) -> list[datetime]:
    """UTC instants (to the hour) where ``zone`` changes its offset."""
    tz = ZoneInfo(zone)
    found = []
    moment = datetime(years.start, 1, 1, tzinfo=UTC)
    end = datetime(years.stop, 1, 1, tzinfo=UTC)
    while moment < end:
        later = moment + timedelta(days=1)
        if moment.astimezone(tz).utcoffset() != later.astimezone(tz).utcoffset():
            hour = moment
            while hour.astimezone(tz).utcoffset() == moment.astimezone(tz).utcoffset():
                hour += timedelta(hours=1)
            found.append(hour)
        moment = later
    return found


TRANSITIONS = sorted({t for zone in ZONES for t in _transitions(zone, range(2024, 2028))})
anywhere = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
)
# Most bugs live within hours of a DST change, which uniform dates almost never hit.
near_a_change = st.tuples(
    st.sampled_from(TRANSITIONS), st.integers(-4 * 3600, 4 * 3600), st.integers(0, 999_999)
).map(lambda t: t[0] + timedelta(seconds=t[1], microseconds=t[2]))
moments = st.one_of(anywhere, near_a_change)


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        number.map(str),
        st.integers(1, high - low + 1).map(lambda step: f"*/{step}"),
        st.tuples(number, number).map(lambda ab: f"{min(ab)}-{max(ab)}"),
        st.lists(number, min_size=2, max_size=4, unique=True).map(
            lambda items: ",".join(map(str, sorted(items)))
        ),
    )


def _cron(seconds: bool) -> st.SearchStrategy[str]:
    fields = [_field(0, 59), _field(0, 23), _field(1, 28), _field(1, 12), _field(0, 6)]
    if seconds:
        fields.insert(0, _field(0, 59))
    return st.tuples(*fields).map(" ".join)


clock = st.tuples(st.integers(0, 23), st.integers(0, 59)).map(lambda hm: f"{hm[0]:02d}:{hm[1]:02d}")
phrases = st.one_of(
    st.integers(1, 7200).map(lambda n: f"every {n} seconds"),
    st.integers(1, 180).map(lambda n: f"every {n} minutes"),
    st.integers(0, 59).map(lambda m: f"every hour at :{m:02d}"),
    clock.map(lambda at: f"daily at {at}"),
    st.tuples(st.sampled_from(WEEKDAYS), clock).map(" at ".join),
    st.tuples(st.integers(1, 31), clock).map(lambda da: f"on the {da[0]}th at {da[1]}"),
    clock.map(lambda at: f"on the last day of the month at {at}"),
    _cron(seconds=False),
    _cron(seconds=True),
)


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


@settings(max_examples=600, deadline=None)
@given(text=phrases, zone=st.sampled_from(ZONES), moment=moments)
def test_next_after_is_strictly_increasing_and_skips_nothing(
    text: str, zone: str, moment: datetime
) -> None:
    schedule = schedules.parse(text, tz=zone)

    first = schedule.next_after(moment)
    assume(first is not None)
    assert first is not None
    second = schedule.next_after(first)

    assert first.tzinfo is ZoneInfo(zone)
    assert first.timestamp() > moment.timestamp()
    assert second is not None
    assert second.timestamp() > first.timestamp()
    # Nothing fires in between: any moment before the first fire leads to it.
    # Compared in UTC: aware datetimes sharing a zone compare by wall clock and ignore fold,
    # and arithmetic on them is wall-clock arithmetic that drops fold.
    first_utc = first.astimezone(UTC)
    middle = moment + (first_utc - moment) / 2
    assert _utc(schedule.next_after(middle)) == first_utc
    assert _utc(schedule.next_after(first_utc - timedelta(microseconds=1))) == first_utc


whole_seconds = st.times().map(lambda t: t.replace(microsecond=0))
zones = st.sampled_from(ZONES)
calendars = st.one_of(
    st.builds(
        schedules.Calendar,
        whole_seconds,
        weekdays=st.none() | st.sets(st.integers(0, 6), min_size=1),
        tz=zones,
    ),
    st.builds(
        schedules.Calendar, whole_seconds, day=st.integers(1, 31) | st.just("last"), tz=zones
    ),
    st.builds(schedules.Hourly, st.integers(0, 59), st.integers(0, 59) | st.just(0), tz=zones),
)


@settings(max_examples=500, deadline=None)
@given(schedule=calendars, moment=moments)
def test_calendar_arithmetic_agrees_with_its_cron_line(
    schedule: schedules.Calendar | schedules.Hourly, moment: datetime
) -> None:
    cron = schedules.Cron(schedule.cron_line, tz=schedule.tz)

    assert schedule.hourly_or_faster == cron.hourly_or_faster
    assert _utc(schedule.next_after(moment)) == _utc(cron.next_after(moment))
