"""parse(): every documented phrase, its canonical text, its English, and value semantics."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

import schedules

ROME = ZoneInfo("Europe/Rome")

# (text, class, canonical str(), describe() in Europe/Rome)
EXAMPLES = [
    ("every 5 seconds", "Interval", "every 5 seconds", "every 5 seconds (Europe/Rome)"),
    ("every second", "Interval", "every second", "every second (Europe/Rome)"),
    ("every 90 seconds", "Interval", "every 90 seconds", "every 90 seconds (Europe/Rome)"),
    ("every minute", "Interval", "every minute", "every minute (Europe/Rome)"),
    ("every 15 minutes", "Interval", "every 15 minutes", "every 15 minutes (Europe/Rome)"),
    ("every hour", "Interval", "every hour", "every hour (Europe/Rome)"),
    ("every 2 hours", "Interval", "every 2 hours", "every 2 hours (Europe/Rome)"),
    ("every 120 seconds", "Interval", "every 2 minutes", "every 2 minutes (Europe/Rome)"),
    ("hourly", "Interval", "every hour", "every hour (Europe/Rome)"),
    ("every hour at :15", "Hourly", "every hour at :15", "every hour at :15 (Europe/Rome)"),
    (
        "every hour at :15:30",
        "Hourly",
        "every hour at :15:30",
        "every hour at :15:30 (Europe/Rome)",
    ),
    ("Sunday 17:03", "Calendar", "Sunday at 17:03", "every Sunday at 17:03 (Europe/Rome)"),
    ("sunday at 17:03", "Calendar", "Sunday at 17:03", "every Sunday at 17:03 (Europe/Rome)"),
    (
        "every Sunday at 5:03pm",
        "Calendar",
        "Sunday at 17:03",
        "every Sunday at 17:03 (Europe/Rome)",
    ),
    ("sun 17:03", "Calendar", "Sunday at 17:03", "every Sunday at 17:03 (Europe/Rome)"),
    ("on sundays at 5:03 pm", "Calendar", "Sunday at 17:03", "every Sunday at 17:03 (Europe/Rome)"),
    ("weekdays at 09:30", "Calendar", "weekdays at 09:30", "every weekday at 09:30 (Europe/Rome)"),
    (
        "weekends at 10:00",
        "Calendar",
        "weekends at 10:00",
        "every Saturday and Sunday at 10:00 (Europe/Rome)",
    ),
    ("mon-fri 9:30", "Calendar", "weekdays at 09:30", "every weekday at 09:30 (Europe/Rome)"),
    (
        "monday, wednesday and friday at 08:00",
        "Calendar",
        "Monday, Wednesday and Friday at 08:00",
        "every Monday, Wednesday and Friday at 08:00 (Europe/Rome)",
    ),
    (
        "fri to mon at 20:00",
        "Calendar",
        "Monday, Friday, Saturday and Sunday at 20:00",
        "every Monday, Friday, Saturday and Sunday at 20:00 (Europe/Rome)",
    ),
    ("daily at 03:00", "Calendar", "daily at 03:00", "every day at 03:00 (Europe/Rome)"),
    ("17:03", "Calendar", "daily at 17:03", "every day at 17:03 (Europe/Rome)"),
    (
        "monday to thursday at 9:30",
        "Calendar",
        "Monday, Tuesday, Wednesday and Thursday at 09:30",
        "every Monday, Tuesday, Wednesday and Thursday at 09:30 (Europe/Rome)",
    ),
    ("every day at 3am", "Calendar", "daily at 03:00", "every day at 03:00 (Europe/Rome)"),
    ("every day at 12am", "Calendar", "daily at 00:00", "every day at 00:00 (Europe/Rome)"),
    ("noon", "Calendar", "daily at 12:00", "every day at 12:00 (Europe/Rome)"),
    ("midnight", "Calendar", "daily at 00:00", "every day at 00:00 (Europe/Rome)"),
    ("17:03 on weekdays", "Calendar", "weekdays at 17:03", "every weekday at 17:03 (Europe/Rome)"),
    ("at noon every day", "Calendar", "daily at 12:00", "every day at 12:00 (Europe/Rome)"),
    (
        "monthly on the 1st at 09:00",
        "Calendar",
        "monthly on the 1st at 09:00",
        "on the 1st of every month at 09:00 (Europe/Rome)",
    ),
    (
        "on the 15th at 12:00",
        "Calendar",
        "monthly on the 15th at 12:00",
        "on the 15th of every month at 12:00 (Europe/Rome)",
    ),
    (
        "on the last day of the month at 23:00",
        "Calendar",
        "monthly on the last day at 23:00",
        "on the last day of every month at 23:00 (Europe/Rome)",
    ),
    (  # issue 14: 'the' is optional, as after 'monthly'
        "on last day of the month at 23:00",
        "Calendar",
        "monthly on the last day at 23:00",
        "on the last day of every month at 23:00 (Europe/Rome)",
    ),
    (
        "23:00 on last day",
        "Calendar",
        "monthly on the last day at 23:00",
        "on the last day of every month at 23:00 (Europe/Rome)",
    ),
    (
        "every month on the 31st at 06:00",
        "Calendar",
        "monthly on the 31st at 06:00",
        "on the 31st of every month that has one at 06:00 (Europe/Rome)",
    ),
    (
        "9am on the 1st",
        "Calendar",
        "monthly on the 1st at 09:00",
        "on the 1st of every month at 09:00 (Europe/Rome)",
    ),
    ("daily at 17:03:30", "Calendar", "daily at 17:03:30", "every day at 17:03:30 (Europe/Rome)"),
    ("*/5 * * * *", "Cron", "*/5 * * * *", "every 5 minutes (Europe/Rome)"),
    ("*/15 * * * *", "Cron", "*/15 * * * *", "every 15 minutes (Europe/Rome)"),
    ("0 9 * * 1-5", "Cron", "0 9 * * 1-5", "at 09:00 on Monday to Friday (Europe/Rome)"),
    (
        "30 0 9 * * mon-fri",
        "Cron",
        "30 0 9 * * MON-FRI",
        "at 09:00:30 on Monday to Friday (Europe/Rome)",
    ),
    ("*/10 * * * * *", "Cron", "*/10 * * * * *", "every 10 seconds (Europe/Rome)"),
    ("30 */5 * * * *", "Cron", "30 */5 * * * *", "every 5 minutes at second 30 (Europe/Rome)"),
    (
        "*/15 9-17 * * *",
        "Cron",
        "*/15 9-17 * * *",
        "every 15 minutes during hours 9 to 17 (Europe/Rome)",
    ),
    ("0 9,17 * * *", "Cron", "0 9,17 * * *", "at 09:00 and 17:00 (Europe/Rome)"),
    (
        "0 0 1 jan *",
        "Cron",
        "0 0 1 JAN *",
        "at 00:00 on the 1st of the month in January (Europe/Rome)",
    ),
    (
        "0 12 13 * fri",
        "Cron",
        "0 12 13 * FRI",
        "at 12:00 on the 13th of the month or on Friday (Europe/Rome)",
    ),
    ("0 23 L * *", "Cron", "0 23 L * *", "at 23:00 on the last day of the month (Europe/Rome)"),
    ("0 0 LW * *", "Cron", "0 0 LW * *", "at 00:00 on the last weekday of the month (Europe/Rome)"),
    (
        "0 0 * * 5#3",
        "Cron",
        "0 0 * * 5#3",
        "at 00:00 on the 3rd Friday of the month (Europe/Rome)",
    ),
    ("@hourly", "Cron", "@hourly", "every hour at :00 (Europe/Rome)"),
    ("@daily", "Cron", "@daily", "every day at 00:00 (Europe/Rome)"),
    ("@midnight", "Cron", "@midnight", "every day at 00:00 (Europe/Rome)"),
    ("@weekly", "Cron", "@weekly", "every Sunday at 00:00 (Europe/Rome)"),
    ("@monthly", "Cron", "@monthly", "on the 1st of every month at 00:00 (Europe/Rome)"),
    ("@yearly", "Cron", "@yearly", "every year on 1 January at 00:00 (Europe/Rome)"),
    ("@annually", "Cron", "@annually", "every year on 1 January at 00:00 (Europe/Rome)"),
    (
        "once at 2026-12-24 18:00",
        "Once",
        "once at 2026-12-24 18:00",
        "once at 2026-12-24 18:00 (Europe/Rome)",
    ),
    (
        "once at 2026-12-24T17:00:00Z",
        "Once",
        "once at 2026-12-24 18:00",
        "once at 2026-12-24 18:00 (Europe/Rome)",
    ),
    (
        "2026-12-24T18:00+01:00",
        "Once",
        "once at 2026-12-24 18:00",
        "once at 2026-12-24 18:00 (Europe/Rome)",
    ),
]


def _id(example: tuple[str, str, str, str]) -> str:
    return example[0].replace(" ", "_")


@pytest.mark.parametrize(("text", "kind", "canonical", "english"), EXAMPLES, ids=map(_id, EXAMPLES))
def test_example_parses_to_its_canonical_text_and_english(
    text: str, kind: str, canonical: str, english: str
) -> None:
    schedule = schedules.parse(text, tz="Europe/Rome")

    assert type(schedule).__name__ == kind
    assert str(schedule) == canonical
    assert schedule.describe() == english
    assert schedule.tz == ROME


@pytest.mark.parametrize("text", [example[0] for example in EXAMPLES], ids=map(_id, EXAMPLES))
@pytest.mark.parametrize("zone", ["UTC", "Europe/Rome", "Australia/Lord_Howe"])
def test_str_round_trips(text: str, zone: str) -> None:
    schedule = schedules.parse(text, tz=zone)

    again = schedules.parse(str(schedule), tz=schedule.tz)

    assert again == schedule
    assert hash(again) == hash(schedule)
    assert str(again) == str(schedule)


@pytest.mark.parametrize("text", [example[0] for example in EXAMPLES], ids=map(_id, EXAMPLES))
def test_parsing_ignores_case_and_extra_spaces(text: str) -> None:
    shouted = "  " + text.upper().replace(" ", "  ") + " "
    if text.startswith(("once", "2026")):
        shouted = "  " + text.upper() + " "  # ISO dates keep their single space

    assert schedules.parse(shouted) == schedules.parse(text)


def test_zone_defaults_to_utc_and_is_part_of_equality() -> None:
    in_utc = schedules.parse("daily at 03:00")
    in_rome = schedules.parse("daily at 03:00", tz=ROME)

    assert in_utc.tz == ZoneInfo("UTC")
    assert in_utc != in_rome
    assert in_rome == schedules.parse("daily at 03:00", tz="Europe/Rome")
    assert len({in_utc, in_rome, schedules.parse("daily at 3am", tz="Europe/Rome")}) == 2


def test_zone_accepts_datetime_utc() -> None:
    # Not in the signature, but datetime.UTC is what people reach for first.
    assert schedules.parse("every minute", tz=UTC).tz == ZoneInfo("UTC")  # type: ignore[arg-type]


def test_different_kinds_are_never_equal() -> None:
    assert schedules.parse("every hour") != schedules.parse("@hourly")
    assert schedules.parse("daily at 00:00") != schedules.parse("@daily")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("every 5 seconds", True, id="interval_5s"),
        pytest.param("every hour", True, id="interval_1h"),
        pytest.param("every 2 hours", False, id="interval_2h"),
        pytest.param("every hour at :15", True, id="hourly_at_15"),
        pytest.param("*/15 * * * *", True, id="cron_every_15_minutes"),
        pytest.param("0 * * * mon", True, id="cron_hourly_on_mondays"),
        pytest.param("@hourly", True, id="cron_alias_hourly"),
        pytest.param("0 */2 * * *", False, id="cron_every_2_hours"),
        pytest.param("*/5 9 * * *", False, id="cron_restricted_hours"),
        pytest.param("5 0-23 * * *", True, id="cron_every_hour_spelled_as_a_range"),
        pytest.param("5-5 * * * *", True, id="cron_single_value_range_minute"),
        pytest.param("0 5-5 * * *", False, id="cron_single_value_range_hour"),
        pytest.param("@daily", False, id="cron_alias_daily"),
        pytest.param("Sunday 17:03", False, id="weekly"),
        pytest.param("daily at 03:00", False, id="daily"),
        pytest.param("once at 2026-12-24 18:00", False, id="once"),
    ],
)
def test_hourly_or_faster(text: str, expected: bool) -> None:
    assert schedules.parse(text).hourly_or_faster is expected


def test_schedules_are_immutable() -> None:
    schedule = schedules.Interval(minutes=5)

    with pytest.raises(AttributeError, match="Interval is immutable; cannot set 'seconds'"):
        schedule.seconds = 10  # type: ignore[misc]


@pytest.mark.parametrize("text", [example[0] for example in EXAMPLES], ids=map(_id, EXAMPLES))
def test_schedules_pickle_and_copy(text: str) -> None:
    schedule = schedules.parse(text, tz="America/New_York")

    assert pickle.loads(pickle.dumps(schedule)) == schedule
    assert copy.deepcopy(schedule) == schedule
    after = datetime(2026, 5, 1, tzinfo=UTC)
    assert pickle.loads(pickle.dumps(schedule)).next_after(after) == schedule.next_after(after)


def test_repr_shows_how_to_rebuild() -> None:
    schedule = schedules.parse("sun 17:03", tz="Europe/Rome")

    assert repr(schedule) == "schedules.parse('Sunday at 17:03', tz='Europe/Rome')"


class TestConstructors:
    def test_interval(self) -> None:
        assert schedules.Interval(seconds=5, tz="Europe/Rome") == schedules.parse(
            "every 5 seconds", tz="Europe/Rome"
        )
        assert schedules.Interval(minutes=1, seconds=30) == schedules.parse("every 90 seconds")
        assert schedules.Interval(hours=2) == schedules.parse("every 2 hours")

    def test_cron(self) -> None:
        assert schedules.Cron("*/5 * * * *", tz="Europe/Rome") == schedules.parse(
            "*/5  *  * * *", tz="Europe/Rome"
        )
        assert schedules.Cron("@DAILY") == schedules.parse("@daily")

    def test_once(self) -> None:
        at = datetime(2026, 12, 24, 18, 0, tzinfo=ROME)
        once = schedules.Once(at)

        assert once.tz == ROME
        assert once == schedules.parse("once at 2026-12-24 18:00", tz="Europe/Rome")
        assert schedules.Once(datetime(2026, 12, 24, 18, 0), tz="Europe/Rome") == once

    def test_calendar(self) -> None:
        assert schedules.Calendar(time(17, 3), weekdays=[6], tz=ROME) == schedules.parse(
            "Sunday 17:03", tz=ROME
        )
        assert schedules.Calendar("03:00") == schedules.parse("daily at 03:00")
        assert schedules.Calendar("03:00", weekdays=range(7)) == schedules.parse("daily at 3am")
        assert schedules.Calendar("23:00", day="last") == schedules.parse(
            "on the last day of the month at 23:00"
        )

    def test_fold_on_inputs_does_not_pick_an_occurrence(self) -> None:
        # A wall-clock reading given with fold=1 still fires at its first occurrence.
        calendar = schedules.Calendar(time(1, 30, fold=1), tz="America/New_York")
        once = schedules.Once(datetime(2026, 11, 1, 1, 30, fold=1), tz="America/New_York")

        fire = calendar.next_after(datetime(2026, 11, 1, tzinfo=UTC))

        assert fire is not None
        assert fire.isoformat() == "2026-11-01T01:30:00-04:00"
        assert once.at.isoformat() == "2026-11-01T01:30:00-04:00"
        assert calendar == schedules.parse("daily at 01:30", tz="America/New_York")

    def test_hourly(self) -> None:
        assert schedules.Hourly(15, tz="Australia/Lord_Howe") == schedules.parse(
            "every hour at :15", tz="Australia/Lord_Howe"
        )

    def test_constructor_errors(self) -> None:
        with pytest.raises(schedules.ScheduleError) as zero:
            schedules.Interval(seconds=0)
        with pytest.raises(schedules.ScheduleError) as both:
            schedules.Calendar("09:00", weekdays=[0], day=1)
        with pytest.raises(schedules.ScheduleError) as minute:
            schedules.Hourly(60)

        assert str(zero.value) == (
            "Cannot parse schedule 'Interval(seconds=0, minutes=0, hours=0)': "
            "the period is 0 seconds; use 1 second or more."
        )
        assert str(both.value) == (
            "Cannot parse schedule \"Calendar('09:00', weekdays=[0], day=1)\": "
            "it gives both weekdays and a day of the month; give one."
        )
        assert str(minute.value) == (
            "Cannot parse schedule 'Hourly(minute=60, second=0)': minute 60 is not 0-59; use 0-59."
        )

    def test_wrong_types_are_type_errors(self) -> None:
        with pytest.raises(TypeError, match=r"Interval seconds must be an int, got 1\.5"):
            schedules.Interval(seconds=1.5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"parse\(\) needs a str, got None"):
            schedules.parse(None)  # type: ignore[arg-type]
