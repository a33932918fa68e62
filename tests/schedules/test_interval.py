"""Intervals are anchored to the Unix epoch, so every process computes the same instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

import schedules

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_every_5_minutes_fires_on_the_five() -> None:
    schedule = schedules.parse("every 5 minutes")

    fire = schedule.next_after(datetime(2026, 5, 4, 10, 2, 17, tzinfo=UTC))

    assert fire == datetime(2026, 5, 4, 10, 5, tzinfo=UTC)


def test_a_fire_time_is_not_after_itself() -> None:
    schedule = schedules.parse("every 5 minutes")

    fire = schedule.next_after(datetime(2026, 5, 4, 10, 5, tzinfo=UTC))

    assert fire == datetime(2026, 5, 4, 10, 10, tzinfo=UTC)


def test_result_is_in_the_schedule_zone() -> None:
    schedule = schedules.parse("every 5 minutes", tz="Europe/Rome")

    fire = schedule.next_after(datetime(2026, 5, 4, 10, 2, 17, tzinfo=UTC))

    assert fire is not None
    assert fire.tzinfo is ZoneInfo("Europe/Rome")
    assert fire.isoformat() == "2026-05-04T12:05:00+02:00"


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)))
def test_every_90_seconds_fires_on_multiples_of_90_since_the_epoch(moment: datetime) -> None:
    schedule = schedules.parse("every 90 seconds", tz="America/New_York")
    after = moment.replace(tzinfo=UTC)

    fire = schedule.next_after(after)

    assert fire is not None
    since_epoch = fire - EPOCH
    assert since_epoch % timedelta(seconds=90) == timedelta(0)
    assert timedelta(0) < fire - after <= timedelta(seconds=90)


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        pytest.param("every second", "2026-05-04T10:02:17.5+00:00", "2026-05-04T10:02:18+00:00",
                     id="second_from_half_second"),
        pytest.param("every 2 hours", "2026-05-04T10:02:17+00:00", "2026-05-04T12:00:00+00:00",
                     id="two_hours_on_even_utc_hours"),
        pytest.param("every 7 minutes", "1970-01-01T00:06:59+00:00", "1970-01-01T00:07:00+00:00",
                     id="seven_minutes_from_epoch"),
        pytest.param("every hour", "2026-05-04T10:02:17+10:30", "2026-05-04T10:30:00+10:30",
                     id="hour_is_utc_anchored_in_half_hour_zone"),
    ],
)  # fmt: skip
def test_interval_fires(text: str, after: str, expected: str) -> None:
    moment = datetime.fromisoformat(after)
    zone = "Australia/Lord_Howe" if "+10:30" in after else "UTC"

    fire = schedules.parse(text, tz=zone).next_after(moment)

    assert fire is not None
    assert fire.isoformat() == expected


def test_every_hour_at_15_follows_the_local_clock_in_lord_howe() -> None:
    # Lord Howe is UTC+10:30 in winter: local :15 is UTC :45, which an epoch-anchored
    # interval could never produce, so 'every hour at :15' counts local minutes.
    schedule = schedules.parse("every hour at :15", tz="Australia/Lord_Howe")
    moment = datetime(2026, 6, 1, 9, 0, tzinfo=ZoneInfo("Australia/Lord_Howe"))

    fires = []
    for _ in range(3):
        fire = schedule.next_after(moment)
        assert fire is not None
        fires.append(fire.isoformat())
        moment = fire

    assert fires == [
        "2026-06-01T09:15:00+10:30",
        "2026-06-01T10:15:00+10:30",
        "2026-06-01T11:15:00+10:30",
    ]
    assert [datetime.fromisoformat(f).astimezone(UTC).minute for f in fires] == [45, 45, 45]


def test_same_instants_in_every_zone() -> None:
    after = datetime(2026, 5, 4, 10, 2, 17, tzinfo=UTC)
    fires = {
        schedules.parse("every 15 minutes", tz=zone).next_after(after)
        for zone in ("UTC", "Europe/Rome", "America/New_York", "Australia/Lord_Howe")
    }

    assert len(fires) == 1
