"""No input escapes as anything but ScheduleError; no accepted schedule raises from next_after.

Fuzzed text (pieces of the language, random characters, huge numbers), fuzzed zone names, and
the ends of the calendar (year 1, year 9999, in zones either side of UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

import schedules

PIECES = [
    "every", "each", "at", "on", "the", "last", "day", "of", "month", "monthly", "daily",
    "hourly", "once", "minutes", "hours", "seconds", "sunday", "mon", "weekdays", "to", "and",
    "noon", "pm", "am", "1st", "15th", ":15", "17:03", "9", "0", "-", ",", "*", "*/5", "/",
    "?", "L", "W", "LW", "15W", "#", "5#3", "L5", "fri", "jan", "7", "31", "60", "24", "@daily",
    "@hourly", "2026-12-24", "18:00", "9999-12-31", "0001-01-01", "T", "+01:00", "Z",
    "9" * 30, "1" * 5000, "\uff15", "\u0665", "\u00a0", "\u212a", "H", "R", "  ",
]  # fmt: skip
texts = st.one_of(
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=8).map(" ".join),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=8).map("".join),
    st.text(max_size=40),
    st.lists(
        st.one_of(st.sampled_from(["*", "*/7", "L", "5#3", "1-5", "mon-fri", "?"]), st.text()),
        min_size=5,
        max_size=6,
    ).map(" ".join),
)
ZONE_PIECES = ["Europe", "Rome", "America", "New_York", "UTC", "Etc", "GMT+5", "..", "/", ""]
zone_names = st.one_of(
    st.lists(st.sampled_from(ZONE_PIECES), min_size=1, max_size=4).map("/".join),
    st.text(max_size=30),
    st.just("Europe/" + "x" * 300),
    st.just("x" * 5000),
)
EDGE_ZONES = ["UTC", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati", "Pacific/Niue"]
edges = st.one_of(
    st.tuples(
        st.sampled_from([datetime.min, datetime.max]),
        st.integers(0, 3 * 86400),
        st.sampled_from(EDGE_ZONES),
    ).map(
        lambda t: (
            t[0] + timedelta(seconds=t[1])
            if t[0] == datetime.min
            else t[0] - timedelta(seconds=t[1])
        ).replace(tzinfo=ZoneInfo(t[2]))
    ),
    st.datetimes(
        min_value=datetime(9990, 1, 1), timezones=st.sampled_from([UTC, *map(ZoneInfo, EDGE_ZONES)])
    ),
)
EDGE_SCHEDULES = [
    "* * * * * *", "*/5 * * * *", "0 0 * * *", "0 0 29 2 *", "0 0 L * *", "0 0 * * 5#5",
    "0 0 LW 12 *", "59 59 23 31 12 *", "0 0 1 1 *", "every 5 seconds", "every 876600 hours",
    "every hour at :59", "daily at 23:59", "monthly on the last day at 23:59", "@yearly",
    "sunday at 00:00", "once at 9999-12-30 00:00", "once at 0001-01-02 00:00", "every 7 hours",
]  # fmt: skip


def _check_next_after(schedule: schedules.Schedule, moment: datetime) -> None:
    fire = schedule.next_after(moment)
    if fire is None:
        return
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # ``moment`` is before year 1 or after year 9999 in UTC
        assert moment.year == 1
        return
    assert fire.astimezone(UTC) > utc


@settings(max_examples=1000, deadline=None)
@given(text=texts, zone=st.sampled_from(EDGE_ZONES), moment=edges)
def test_fuzzed_text_is_a_schedule_or_a_schedule_error(
    text: str, zone: str, moment: datetime
) -> None:
    try:
        schedule = schedules.parse(text, tz=zone)
    except schedules.ScheduleError as error:
        refusal = error
    else:
        _check_next_after(schedule, moment)
        assert schedules.parse(str(schedule), tz=zone) == schedule
        return
    assert str(refusal).startswith(f"Cannot parse schedule {text!r}: ")
    assert refusal.position is None or 0 <= refusal.position <= len(text)


@settings(max_examples=500, deadline=None)
@given(zone=zone_names)
def test_fuzzed_zone_is_a_zone_or_a_schedule_error(zone: str) -> None:
    try:
        schedule = schedules.parse("daily at 03:00", tz=zone)
    except schedules.ScheduleError as error:
        refusal = error
    else:
        assert schedule.tz.key == zone
        return
    assert (refusal.text, refusal.position) == (zone, None)
    assert refusal.hint  # a suggestion, or how zones are named


@settings(max_examples=600, deadline=None)
@given(text=st.sampled_from(EDGE_SCHEDULES), zone=st.sampled_from(EDGE_ZONES), moment=edges)
def test_next_after_at_the_ends_of_the_calendar_never_raises(
    text: str, zone: str, moment: datetime
) -> None:
    try:
        schedule = schedules.parse(text, tz=zone)
    except schedules.ScheduleError:
        assert text.startswith("once")  # the far dates do not exist in every zone
        return
    _check_next_after(schedule, moment)
