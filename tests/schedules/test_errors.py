"""Bad input: one ScheduleError sentence naming the text, the problem, the place and a fix."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

import schedules

CASES = [
    pytest.param(
        "every 5 secnds",
        "Cannot parse schedule 'every 5 secnds': unknown unit 'secnds' at position 8; "
        "did you mean 'seconds'?",
        8,
        id="unit_typo",
    ),
    pytest.param(
        "every 0 minutes",
        "Cannot parse schedule 'every 0 minutes': the count 0 at position 6 is not positive; "
        "use 1 or more.",
        6,
        id="zero_interval",
    ),
    pytest.param(
        "Sunday 25:00",
        "Cannot parse schedule 'Sunday 25:00': hour 25 at position 7 is out of range; use 0-23.",
        7,
        id="hour_25",
    ),
    pytest.param(
        "Sunday 17:60",
        "Cannot parse schedule 'Sunday 17:60': minute 60 at position 10 is out of range; use 0-59.",
        10,
        id="minute_60",
    ),
    pytest.param(
        "13pm",
        "Cannot parse schedule '13pm': hour 13 at position 0 is out of range; "
        "use 1-12 with am or pm.",
        0,
        id="hour_13pm",
    ),
    pytest.param(
        "61 * * * *",
        "Cannot parse schedule '61 * * * *': minute field '61' at position 0 is out of range; "
        "use 0-59.",
        0,
        id="cron_minute_61",
    ),
    pytest.param(
        "0 24 * * *",
        "Cannot parse schedule '0 24 * * *': hour field '24' at position 2 is out of range; "
        "use 0-23.",
        2,
        id="cron_hour_24",
    ),
    pytest.param(
        "*/0 * * * *",
        "Cannot parse schedule '*/0 * * * *': minute field '*/0' at position 0 has a step of 0; "
        "use a step of 1 or more.",
        0,
        id="cron_step_0",
    ),
    pytest.param(
        "0 0 * * mun",
        "Cannot parse schedule '0 0 * * mun': day-of-week field 'mun' at position 8 has the "
        "unknown name 'mun'; did you mean 'sun'?",
        8,
        id="cron_day_name_typo",
    ),
    pytest.param(
        "0 0 31 2 *",
        "Cannot parse schedule '0 0 31 2 *': day-of-month field '31' at position 4 never occurs "
        "in month '2'; pick a day that month has.",
        4,
        id="cron_february_31st",
    ),
    pytest.param(
        "H * * * *",
        "Cannot parse schedule 'H * * * *': minute field 'H' at position 0 uses a hashed or "
        "random value; write the values out; they must be the same in every process.",
        0,
        id="cron_hashed",
    ),
    pytest.param(
        "0 0 12 * * ? 2026",
        "Cannot parse schedule '0 0 12 * * ? 2026': a cron line has 5 fields, or 6 with seconds "
        "first, not 7.",
        None,
        id="cron_7_fields",
    ),
    pytest.param(
        "@dialy",
        "Cannot parse schedule '@dialy': unknown cron alias '@dialy' at position 0; "
        "did you mean '@daily'?",
        0,
        id="cron_alias_typo",
    ),
    pytest.param(
        "",
        "Cannot parse schedule '': the text is empty; "
        "write e.g. 'every 5 minutes', 'daily at 03:00' or '*/5 * * * *'.",
        None,
        id="empty",
    ),
    pytest.param(
        "   ",
        "Cannot parse schedule '   ': the text is empty; "
        "write e.g. 'every 5 minutes', 'daily at 03:00' or '*/5 * * * *'.",
        None,
        id="blank",
    ),
    pytest.param(
        "5 minutes",
        "Cannot parse schedule '5 minutes': a count needs 'every' before it at position 0; "
        "did you mean 'every 5 minutes'?",
        0,
        id="missing_every",
    ),
    pytest.param(
        "sundy 17:03",
        "Cannot parse schedule 'sundy 17:03': unknown word 'sundy' at position 0; "
        "did you mean 'sunday'?",
        0,
        id="day_typo",
    ),
    pytest.param(
        "sunday at",
        "Cannot parse schedule 'sunday at': expected a time such as '17:03' at position 9.",
        9,
        id="missing_time",
    ),
    pytest.param(
        "daily at 9",
        "Cannot parse schedule 'daily at 9': expected a time such as '17:03' at position 9, "
        "not '9'; write '9:00' or '9am'.",
        9,
        id="bare_hour",
    ),
    pytest.param(
        "every day",
        "Cannot parse schedule 'every day': expected a time at position 9; "
        "write e.g. 'every day at 03:00'.",
        9,
        id="every_day_without_time",
    ),
    pytest.param(
        "every 2 hours at :15",
        "Cannot parse schedule 'every 2 hours at :15': a minute at position 17 can only follow "
        "'every hour'; use a cron line such as '15 */2 * * *'.",
        17,
        id="minute_after_2_hours",
    ),
    pytest.param(
        "on the 32nd at 10:00",
        "Cannot parse schedule 'on the 32nd at 10:00': day 32 at position 7 is out of range; "
        "use 1st-31st or 'last'.",
        7,
        id="day_of_month_32",
    ),
    pytest.param(
        "every 5 minutes!",
        "Cannot parse schedule 'every 5 minutes!': unexpected character '!' at position 15; "
        "write e.g. 'every 5 minutes', 'daily at 03:00' or '*/5 * * * *'.",
        15,
        id="stray_character",
    ),
    pytest.param(
        "daily at 03:00 sharp",
        "Cannot parse schedule 'daily at 03:00 sharp': unknown word 'sharp' at position 15.",
        15,
        id="trailing_word",
    ),
    # -- issue 14: numbers, zones and dates that used to escape as other exceptions ------
    pytest.param(
        "every 80000000 hours",
        "Cannot parse schedule 'every 80000000 hours': the period of 80000000 hours at "
        "position 6 is more than 100 years; use at most 876,600 hours, or 'once at' a date-time "
        "for a job that runs once.",
        6,
        id="interval_over_100_years",
    ),
    pytest.param(
        "every " + "7" * 5000 + " minutes",
        "Cannot parse schedule 'every " + "7" * 5000 + " minutes': the number '777777…777' "
        "(5000 digits) at position 6 is too large; write a smaller number.",
        6,
        id="count_of_5000_digits",
    ),
    pytest.param(
        "on the " + "1" * 5000 + "th at 10:00",
        "Cannot parse schedule 'on the " + "1" * 5000 + "th at 10:00': the number '111111…111' "
        "(5000 digits) at position 7 is too large; write a smaller number.",
        7,
        id="day_of_5000_digits",
    ),
    pytest.param(
        "9" * 5000 + " * * * *",
        "Cannot parse schedule '" + "9" * 5000 + " * * * *': minute field '" + "9" * 5000 + "' "
        "at position 0 is out of range; use 0-59.",
        0,
        id="cron_value_of_5000_digits",
    ),
    pytest.param(
        "*/" + "9" * 5000 + " * * * *",
        "Cannot parse schedule '*/" + "9" * 5000 + " * * * *': minute field '*/" + "9" * 5000 + "' "
        "at position 0 has a step of " + "9" * 5000 + ", more than the 60 minutes in an hour; "
        "use a step of 1-60.",
        0,
        id="cron_step_of_5000_digits",
    ),
    pytest.param(
        "0 0 * * 1#" + "1" * 5000,
        "Cannot parse schedule '0 0 * * 1#"
        + "1" * 5000
        + "': day-of-week field '1#"
        + "1" * 5000
        + "' at position 8 asks for weekday number "
        + "1" * 5000
        + " of the month; use #1 to #5.",
        8,
        id="cron_nth_of_5000_digits",
    ),
    pytest.param(
        "once at 0001-01-01T00:00+09:00",
        "Cannot parse schedule 'once at 0001-01-01T00:00+09:00': '0001-01-01T00:00+09:00' at "
        "position 8 falls outside the years 1-9999 in UTC; "
        "use a date-time from 0001-01-02 to 9999-12-30.",
        8,
        id="once_before_year_1",
    ),
    # -- issue 14: accepted silently before -------------------------------------------
    pytest.param(
        "every \uff15 minutes",
        "Cannot parse schedule 'every \uff15 minutes': unexpected character '\uff15' at "
        "position 6; write numbers with the digits 0-9.",
        6,
        id="fullwidth_digit_in_phrase",
    ),
    pytest.param(
        "0 0 \uff13 * *",
        "Cannot parse schedule '0 0 \uff13 * *': day-of-month field '\uff13' at position 4 is "
        "not valid; use 1-31, '*', ranges like '1-5', lists like '1,3' and steps like '*/5'.",
        4,
        id="fullwidth_digit_in_cron",
    ),
    pytest.param(
        "once at \uff12\uff10\uff12\uff16-01-01",
        "Cannot parse schedule 'once at \uff12\uff10\uff12\uff16-01-01': "
        "'\uff12\uff10\uff12\uff16-01-01' at position 8 is not an ISO-8601 date-time; "
        "write e.g. '2026-12-24 18:00' or '2026-12-24T18:00+01:00'.",
        8,
        id="fullwidth_digit_in_date",
    ),
    pytest.param(
        "5-1 * * * *",
        "Cannot parse schedule '5-1 * * * *': minute field '5-1' at position 0 has the range "
        "5-1, which runs backwards; ranges do not wrap around: write '1-5', or '5-59,0-1' to go "
        "past the end.",
        0,
        id="cron_backwards_range",
    ),
    pytest.param(
        "0 0 * * sat-tue",
        "Cannot parse schedule '0 0 * * sat-tue': day-of-week field 'sat-tue' at position 8 has "
        "the range 6-2, which runs backwards; ranges do not wrap around: write 'TUE-SAT', or "
        "'SAT,SUN-TUE' to go past the end.",
        8,
        id="cron_backwards_day_names",
    ),
    pytest.param(
        "0 0 * nov-feb *",
        "Cannot parse schedule '0 0 * nov-feb *': month field 'nov-feb' at position 6 has the "
        "range 11-2, which runs backwards; ranges do not wrap around: write 'FEB-NOV', or "
        "'NOV-DEC,JAN-FEB' to go past the end.",
        6,
        id="cron_backwards_months",
    ),
    pytest.param(
        "*/99 * * * *",
        "Cannot parse schedule '*/99 * * * *': minute field '*/99' at position 0 has a step of "
        "99, more than the 60 minutes in an hour; use a step of 1-60, or a phrase such as "
        "'every 99 minutes'.",
        0,
        id="cron_step_99_minutes",
    ),
    pytest.param(
        "0 */25 * * *",
        "Cannot parse schedule '0 */25 * * *': hour field '*/25' at position 2 has a step of 25, "
        "more than the 24 hours in a day; use a step of 1-24, or a phrase such as "
        "'every 25 hours'.",
        2,
        id="cron_step_25_hours",
    ),
    pytest.param(
        "0 0 * * 7/1",
        "Cannot parse schedule '0 0 * * 7/1': day-of-week field '7/1' at position 8 steps from "
        "7, past the end of the field at 6; start from 0 for Sunday.",
        8,
        id="cron_step_from_7",
    ),
    pytest.param(
        "? * * * *",
        "Cannot parse schedule '? * * * *': minute field '?' at position 0 uses '?', which only "
        "the day fields take; use '*'.",
        0,
        id="cron_question_mark_in_minutes",
    ),
    # -- issue 14: messages that say what is wrong -------------------------------------
    pytest.param(
        "0 0 * * 5#3,MON",
        "Cannot parse schedule '0 0 * * 5#3,MON': day-of-week field '5#3,MON' at position 8 "
        "mixes '#' or 'L' days with plain days, which cannot be listed together; use one entry "
        "for '5#3' and another for 'MON'.",
        8,
        id="cron_nth_mixed_with_days",
    ),
    pytest.param(
        "0 0 W * *",
        "Cannot parse schedule '0 0 W * *': day-of-month field 'W' at position 4 has a 'W' that "
        "does not follow one day; write e.g. '15W' (the weekday nearest the 15th) or 'LW' (the "
        "last weekday).",
        4,
        id="cron_w_alone",
    ),
    pytest.param(
        "0 0 LX * *",
        "Cannot parse schedule '0 0 LX * *': day-of-month field 'LX' at position 4 is not a "
        "number; use 1-31, 'L' (the last day), 'LW' (the last weekday) or e.g. '15W'.",
        4,
        id="cron_day_word",
    ),
    pytest.param(
        "0 0 * * L",
        "Cannot parse schedule '0 0 * * L': day-of-week field 'L' at position 8 has 'L' without "
        "a day; write e.g. 'L5' for the last Friday of the month, or put 'L' in the "
        "day-of-month field for the last day of the month.",
        8,
        id="cron_l_alone_in_weekdays",
    ),
    pytest.param(
        "0 0 * * 5L",
        "Cannot parse schedule '0 0 * * 5L': day-of-week field '5L' at position 8 writes the "
        "last weekday as '5L'; write 'L5' for the last such day of the month.",
        8,
        id="cron_quartz_last_weekday",
    ),
    pytest.param(
        "once at 2026-13-01 18:00",
        "Cannot parse schedule 'once at 2026-13-01 18:00': '2026-13-01 18:00' at position 8 is "
        "not an ISO-8601 date-time; write e.g. '2026-12-24 18:00' or '2026-12-24T18:00+01:00'.",
        8,
        id="once_bad_date",
    ),
]


@pytest.mark.parametrize(("text", "message", "position"), CASES)
def test_error_message(text: str, message: str, position: int | None) -> None:
    with pytest.raises(schedules.ScheduleError) as caught:
        schedules.parse(text)

    assert str(caught.value) == message
    assert caught.value.text == text
    assert caught.value.position == position
    assert isinstance(caught.value, ValueError)


def test_error_attributes() -> None:
    with pytest.raises(schedules.ScheduleError) as caught:
        schedules.parse("every 5 secnds")

    assert caught.value.text == "every 5 secnds"
    assert caught.value.position == 8
    assert caught.value.hint == "did you mean 'seconds'?"
    assert caught.value.problem == "unknown unit 'secnds'"


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        pytest.param(
            "Europe",
            "Cannot parse time zone 'Europe': it is not in the time zone database; "
            "use an IANA name such as 'Europe/Rome' or 'UTC'.",
            id="zone_directory",
        ),
        pytest.param(
            "Europe/" + "x" * 300,
            "Cannot parse time zone 'Europe/" + "x" * 300 + "': it is not in the time zone "
            "database; use an IANA name such as 'Europe/Rome' or 'UTC'.",
            id="zone_part_too_long",
        ),
        pytest.param(
            "../../etc/passwd",
            "Cannot parse time zone '../../etc/passwd': it is not in the time zone database; "
            "use an IANA name such as 'Europe/Rome' or 'UTC'.",
            id="zone_path",
        ),
        pytest.param(
            "Europe/Rom",
            "Cannot parse time zone 'Europe/Rom': it is not in the time zone database; "
            "did you mean 'Europe/Rome'?",
            id="zone_typo",
        ),
        pytest.param(
            "europe/rome",
            "Cannot parse time zone 'europe/rome': it is not in the time zone database; "
            "did you mean 'Europe/Rome'?",
            id="zone_case",
        ),
        pytest.param(
            "Mars/Olympus_Mons",
            "Cannot parse time zone 'Mars/Olympus_Mons': it is not in the time zone database; "
            "use an IANA name such as 'Europe/Rome' or 'UTC'.",
            id="zone_unknown",
        ),
        pytest.param(
            "",
            "Cannot parse time zone '': it is not in the time zone database; "
            "use an IANA name such as 'Europe/Rome' or 'UTC'.",
            id="zone_empty",
        ),
    ],
)
def test_unknown_zone(zone: str, message: str) -> None:
    with pytest.raises(schedules.ScheduleError) as caught:
        schedules.parse("daily at 03:00", tz=zone)

    assert str(caught.value) == message
    assert caught.value.text == zone
    assert caught.value.position is None


@pytest.mark.parametrize(
    ("text", "zone", "message"),
    [
        pytest.param(
            "once at 9999-12-31 23:59",
            "America/New_York",
            "Cannot parse schedule 'once at 9999-12-31 23:59': '9999-12-31 23:59' at position 8 "
            "falls outside the years 1-9999 in UTC or in America/New_York; "
            "use a date-time from 0001-01-02 to 9999-12-30.",
            id="new_york_year_10000_in_utc",
        ),
        pytest.param(
            "once at 0001-01-01 00:00",
            "Asia/Tokyo",
            "Cannot parse schedule 'once at 0001-01-01 00:00': '0001-01-01 00:00' at position 8 "
            "falls outside the years 1-9999 in UTC or in Asia/Tokyo; "
            "use a date-time from 0001-01-02 to 9999-12-30.",
            id="tokyo_year_0_in_utc",
        ),
    ],
)
def test_once_outside_the_calendar(text: str, zone: str, message: str) -> None:
    with pytest.raises(schedules.ScheduleError) as caught:
        schedules.parse(text, tz=zone)

    assert str(caught.value) == message
    assert caught.value.position == 8


def test_once_constructor_outside_the_calendar() -> None:
    with pytest.raises(schedules.ScheduleError) as caught:
        schedules.Once(datetime(9999, 12, 31, 23, 59), tz="America/New_York")

    assert str(caught.value) == (
        "Cannot parse schedule 'Once(datetime.datetime(9999, 12, 31, 23, 59))': it falls outside "
        "the years 1-9999 in UTC or in the zone; use a date-time from 0001-01-02 to 9999-12-30."
    )


def test_cron_constructor_reports_like_parse() -> None:
    with pytest.raises(schedules.ScheduleError) as caught:
        schedules.Cron("61 * * * *")

    assert str(caught.value) == (
        "Cannot parse schedule '61 * * * *': minute field '61' at position 0 is out of range; "
        "use 0-59."
    )


@pytest.mark.parametrize(
    "text",
    [
        "* * * * 8",
        "* * * foo *",
        "1-70 * * * *",
        "-1 * * * *",
        "1--2 * * * *",
        "1,,2 * * * *",
        "0 0 * * fri#6",
        "0 0 * * 5L",
        "R * * * *",
        "0 0 0 * *",
        "60 * * * * *",
        "x y z",
    ],
)
def test_croniter_errors_never_escape(text: str) -> None:
    with pytest.raises(schedules.ScheduleError) as caught:
        schedules.parse(text)

    assert str(caught.value).startswith(f"Cannot parse schedule {text!r}: ")
    assert "Traceback" not in str(caught.value)
    assert "croniter" not in str(caught.value).lower()


def test_naive_datetime_is_refused() -> None:
    schedule = schedules.parse("every 5 minutes")

    with pytest.raises(ValueError, match="needs an aware datetime") as caught:
        schedule.next_after(datetime(2026, 1, 1, 10, 0))

    assert str(caught.value) == (
        "next_after() needs an aware datetime, got the naive "
        "datetime.datetime(2026, 1, 1, 10, 0); attach a zone, e.g. dt.replace(tzinfo=datetime.UTC)."
    )


def test_error_survives_pickling() -> None:
    with pytest.raises(schedules.ScheduleError) as caught:
        schedules.parse("every 5 secnds")

    copy = pickle.loads(pickle.dumps(caught.value))

    assert str(copy) == str(caught.value)
    assert (copy.text, copy.position, copy.hint) == ("every 5 secnds", 8, "did you mean 'seconds'?")


def test_interval_constructor_refuses_more_than_100_years() -> None:
    with pytest.raises(schedules.ScheduleError) as caught:
        schedules.Interval(hours=876_601)

    assert str(caught.value) == (
        "Cannot parse schedule 'Interval(seconds=0, minutes=0, hours=876601)': the period is "
        "more than 100 years; use at most 876,600 hours, or 'once at' a date-time for a job "
        "that runs once."
    )
    assert schedules.Interval(hours=876_600).next_after(datetime(9980, 1, 1, tzinfo=UTC)) is None
