"""The DST rule, case by case in Europe/Rome, America/New_York and Australia/Lord_Howe.

Wall-clock schedules: a local time skipped by spring-forward fires at the first instant after
the gap; a local time that occurs twice fires once, at its first occurrence. Schedules that
repeat hourly or faster follow absolute time: both halves of a repeated hour fire, a skipped
reading does not, and no instant fires twice.

2026 transitions used below:
  Europe/Rome          spring 03-29 02:00 CET -> 03:00 CEST, fall 10-25 03:00 CEST -> 02:00 CET
  America/New_York     spring 03-08 02:00 EST -> 03:00 EDT,  fall 11-01 02:00 EDT -> 01:00 EST
  Australia/Lord_Howe  fall 04-05 02:00 +11 -> 01:30 +10:30, spring 10-04 02:00 +10:30 -> 02:30 +11
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import schedules

CASES = [
    # -- Europe/Rome ---------------------------------------------------------------------
    pytest.param(
        "daily at 02:30", "Europe/Rome", "2026-03-28T12:00+01:00",
        ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
        id="spring_skip_daily_0230",
    ),
    pytest.param(
        "30 2 * * *", "Europe/Rome", "2026-03-28T12:00+01:00",
        ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
        id="spring_skip_cron_daily_0230",
    ),
    pytest.param(
        "sunday at 02:15", "Europe/Rome", "2026-03-22T12:00+01:00",
        ["2026-03-29T03:00:00+02:00", "2026-04-05T02:15:00+02:00"],
        id="spring_skip_weekly_0215",
    ),
    pytest.param(
        "daily at 02:30", "Europe/Rome", "2026-10-24T12:00+02:00",
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
        id="fall_back_daily_0230_once",
    ),
    pytest.param(
        "daily at 02:30", "Europe/Rome", "2026-10-25T02:10+01:00",
        ["2026-10-26T02:30:00+01:00"],
        id="fall_back_daily_0230_from_second_pass",
    ),
    pytest.param(
        "*/15 * * * *", "Europe/Rome", "2026-03-29T01:40+01:00",
        ["2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:15:00+02:00"],
        id="rome_spring_every_15min_skips_gap",
    ),
    pytest.param(
        "*/30 * * * *", "Europe/Rome", "2026-10-25T01:50+02:00",
        [
            "2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00",
            "2026-10-25T03:00:00+01:00",
        ],
        id="rome_fall_back_every_30min_both_halves",
    ),
    pytest.param(
        "every 30 minutes", "Europe/Rome", "2026-10-25T01:50+02:00",
        [
            "2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00",
            "2026-10-25T03:00:00+01:00",
        ],
        id="rome_fall_back_interval_30min_both_halves",
    ),
    pytest.param(
        "every hour", "Europe/Rome", "2026-03-29T00:30+01:00",
        ["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"],
        id="rome_spring_interval_hour_absolute",
    ),
    # -- America/New_York ----------------------------------------------------------------
    pytest.param(
        "daily at 02:30", "America/New_York", "2026-03-07T12:00-05:00",
        ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
        id="new_york_spring_skip_daily_0230",
    ),
    pytest.param(
        "daily at 02:00", "America/New_York", "2026-03-07T12:00-05:00",
        ["2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"],
        id="new_york_spring_skip_daily_0200",
    ),
    pytest.param(
        "daily at 01:30", "America/New_York", "2026-10-31T12:00-04:00",
        ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
        id="fall_back_daily_0130_once",
    ),
    pytest.param(
        "daily at 01:30", "America/New_York", "2026-11-01T01:10-05:00",
        ["2026-11-02T01:30:00-05:00"],
        id="fall_back_daily_0130_from_second_pass",
    ),
    pytest.param(
        "15,45 1 * * *", "America/New_York", "2026-11-01T01:20-04:00",
        ["2026-11-01T01:45:00-04:00", "2026-11-02T01:15:00-05:00"],
        id="fall_back_cron_in_repeated_hour_once",
    ),
    pytest.param(
        "0 1,2 * * *", "America/New_York", "2026-11-01T00:30-04:00",
        ["2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-02T01:00:00-05:00"],
        id="fall_back_cron_0100_and_0200_wall_clock",
    ),
    pytest.param(
        "0 * * * *", "America/New_York", "2026-11-01T00:30-04:00",
        [
            "2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00",
            "2026-11-01T02:00:00-05:00",
        ],
        id="new_york_fall_back_hourly_cron_both_halves",
    ),
    pytest.param(
        "30 * * * *", "America/New_York", "2026-03-08T01:40-05:00",
        ["2026-03-08T03:30:00-04:00", "2026-03-08T04:30:00-04:00"],
        id="new_york_spring_hourly_cron_skips_gap",
    ),
    pytest.param(
        "every 20 minutes", "America/New_York", "2026-11-01T01:50-04:00",
        ["2026-11-01T01:00:00-05:00", "2026-11-01T01:20:00-05:00"],
        id="new_york_fall_back_interval_continues_in_second_half",
    ),
    # -- Australia/Lord_Howe (30-minute shift) --------------------------------------------
    pytest.param(
        "daily at 02:15", "Australia/Lord_Howe", "2026-10-03T12:00+10:30",
        ["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"],
        id="lord_howe_spring_skip_daily_0215",
    ),
    pytest.param(
        "daily at 01:45", "Australia/Lord_Howe", "2026-04-04T12:00+11:00",
        ["2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"],
        id="lord_howe_fall_back_daily_0145_once",
    ),
    pytest.param(
        "daily at 01:45", "Australia/Lord_Howe", "2026-04-05T01:35+10:30",
        ["2026-04-06T01:45:00+10:30"],
        id="lord_howe_fall_back_daily_0145_from_second_pass",
    ),
    pytest.param(
        "every 15 minutes", "Australia/Lord_Howe", "2026-04-05T01:20+11:00",
        [
            "2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00",
            "2026-04-05T01:30:00+10:30", "2026-04-05T01:45:00+10:30",
            "2026-04-05T02:00:00+10:30",
        ],
        id="lord_howe_every_15min_both_halves",
    ),
    pytest.param(
        "*/15 * * * *", "Australia/Lord_Howe", "2026-04-05T01:20+11:00",
        [
            "2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00",
            "2026-04-05T01:30:00+10:30", "2026-04-05T01:45:00+10:30",
            "2026-04-05T02:00:00+10:30",
        ],
        id="lord_howe_cron_every_15min_both_halves",
    ),
    pytest.param(
        "*/15 * * * *", "Australia/Lord_Howe", "2026-10-04T01:40+10:30",
        ["2026-10-04T01:45:00+10:30", "2026-10-04T02:30:00+11:00"],
        id="lord_howe_spring_every_15min_skips_gap",
    ),
    pytest.param(
        "every hour at :45", "Australia/Lord_Howe", "2026-04-05T00:50+11:00",
        ["2026-04-05T01:45:00+11:00", "2026-04-05T01:45:00+10:30", "2026-04-05T02:45:00+10:30"],
        id="lord_howe_every_hour_at_45_both_halves",
    ),
    pytest.param(
        "every hour at :15", "Australia/Lord_Howe", "2026-10-04T00:20+10:30",
        ["2026-10-04T01:15:00+10:30", "2026-10-04T03:15:00+11:00"],
        id="lord_howe_every_hour_at_15_skips_gap",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "zone", "after", "expected"), CASES)
def test_dst_rule(text: str, zone: str, after: str, expected: list[str]) -> None:
    schedule = schedules.parse(text, tz=zone)
    fires = []
    moment = datetime.fromisoformat(after)
    for _ in expected:
        fire = schedule.next_after(moment)
        assert fire is not None
        assert fire.tzinfo is ZoneInfo(zone)
        fires.append(fire.isoformat())
        moment = fire

    assert fires == expected


def test_second_pass_fires_carry_fold() -> None:
    schedule = schedules.parse("0 * * * *", tz="America/New_York")

    first = schedule.next_after(datetime(2026, 11, 1, 4, 30, tzinfo=UTC))
    second = schedule.next_after(first)  # type: ignore[arg-type]

    assert first is not None
    assert second is not None
    assert (first.fold, second.fold) == (0, 1)
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=1)


# -- Exhaustive check against a brute-force oracle around each transition --------------------

TRANSITIONS = [
    ("Europe/Rome", datetime(2026, 3, 29)),
    ("Europe/Rome", datetime(2026, 10, 25)),
    ("America/New_York", datetime(2026, 3, 8)),
    ("America/New_York", datetime(2026, 11, 1)),
    ("Australia/Lord_Howe", datetime(2026, 4, 5)),
    ("Australia/Lord_Howe", datetime(2026, 10, 4)),
]
ORACLE_CRONS = [
    "30 2 * * *",
    "0 1 * * *",
    "15,45 1-3 * * *",
    "*/20 2 * * *",
    "*/15 * * * *",
    "0 * * * *",
    "45 * * * *",
]


def _values(field: str, high: int) -> set[int]:
    """Minutes or hours of the simple fields used here: '*', '*/n', 'a-b' and lists."""
    values: set[int] = set()
    for item in field.split(","):
        base, _, step = item.partition("/")
        low, _, top = base.partition("-")
        if base == "*":
            low, top = "0", str(high)
        values.update(range(int(low), int(top or low) + 1, int(step or 1)))
    return values


def _matcher(expression: str) -> Callable[[datetime], bool]:
    """Match minute and hour (the oracle lines leave days as '*')."""
    minute, hour, *days = expression.split()
    assert days == ["*", "*", "*"]
    minutes, hours = _values(minute, 59), _values(hour, 23)
    return lambda reading: reading.minute in minutes and reading.hour in hours


def _oracle(expression: str, zone: ZoneInfo, day: datetime, hourly: bool) -> list[datetime]:
    """Fire instants from 12 hours before ``day`` for 36 hours, by scanning every minute."""
    start = (day - timedelta(hours=12)).replace(tzinfo=zone).astimezone(UTC)
    minutes = [start + timedelta(minutes=i) for i in range(36 * 60)]
    readings = [m.astimezone(zone).replace(tzinfo=None) for m in minutes]
    match = _matcher(expression)
    if hourly:
        # Absolute rule: every instant whose local reading matches.
        return [m for m, reading in zip(minutes, readings, strict=True) if match(reading)]
    # Wall-clock rule: each matching local reading fires at the first instant whose reading
    # has reached it (its first occurrence, or the end of a spring-forward gap).
    fires = set()
    index = 0
    reading = readings[0]
    while reading < readings[-1]:
        if match(reading):
            while readings[index] < reading:
                index += 1
            fires.add(minutes[index])
        reading += timedelta(minutes=1)
    return sorted(fires)


@pytest.mark.parametrize("expression", ORACLE_CRONS)
@pytest.mark.parametrize(
    ("zone_name", "day"), TRANSITIONS, ids=[f"{z}_{d:%m%d}" for z, d in TRANSITIONS]
)
def test_matches_brute_force_oracle(expression: str, zone_name: str, day: datetime) -> None:
    zone = ZoneInfo(zone_name)
    schedule = schedules.parse(expression, tz=zone)
    fires = _oracle(expression, zone, day, schedule.hourly_or_faster)
    begin = (day - timedelta(hours=8)).replace(tzinfo=zone).astimezone(UTC)
    probes = [begin + timedelta(minutes=7 * i, seconds=i % 60) for i in range(200)]
    probes += [fire - timedelta(microseconds=1) for fire in fires] + fires

    for probe in probes:
        expected = next((fire for fire in fires if fire > probe), None)
        if expected is None or expected > fires[-1] - timedelta(hours=1):
            continue  # past the oracle's window
        got = schedule.next_after(probe)
        assert got is not None
        assert got.astimezone(UTC) == expected, f"after {probe.astimezone(zone)}"
