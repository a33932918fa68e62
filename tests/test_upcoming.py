"""spoolcron.upcoming: the merged list of upcoming runs, and reading WHEN."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import tests.schedule_modules.valid  # noqa: F401  (registers its @periodic entry before any test)
from spoolcron.core.beat import fire_job_id
from spoolcron.core.entries import ResolvedEntry
from spoolcron.core.payload import Payload
from spoolcron.core.upcoming import merge_upcoming
from spoolcron.exceptions import BadWhen, UnknownEntry
from spoolcron.operations import parse_when, relative, upcoming
from spoolcron.spool.payloads import write_payload
from tests.helpers import resolved_entry

NOW = datetime(2026, 11, 23, 12, 0, 7, tzinfo=UTC)
VALID = "tests.schedule_modules.valid"
BROKEN = "tests.schedule_modules.broken"


# @periodic entries of modules another test unloaded would show up (see conftest.py).
pytestmark = pytest.mark.usefixtures("loaded_periodic_only")


def one_off(job_id: str, when: datetime, *, attempt: int = 1, **meta: Any) -> Payload:
    return Payload(
        task="tests.testapp.tasks.record",
        job_id=job_id,
        run_after=when.timestamp(),
        args=[job_id],
        meta=meta,
        attempt=attempt,
    )


def fire(name: str, when: datetime, *, attempt: int = 1) -> Payload:
    return Payload(
        task="tests.testapp.tasks.record",
        job_id=fire_job_id(name, when.timestamp()),
        run_after=when.timestamp(),
        attempt=attempt,
        entry=name,
    )


def listed(runs: Any) -> list[tuple[str, str]]:
    return [(run.when.strftime("%d %H:%M:%S"), run.name) for run in runs]


# --- merge_upcoming ---------------------------------------------------------------------------


def test_fires_of_several_entries_are_merged_in_time_order() -> None:
    entries = [
        resolved_entry("fast", "every 20 seconds"),
        resolved_entry("minutely", "every minute"),
        resolved_entry("report", "Sunday 17:03", tz="Europe/Rome"),
    ]
    result = merge_upcoming(entries, now=NOW, count=6)
    assert listed(result.runs) == [
        ("23 12:00:20", "fast"),
        ("23 12:00:40", "fast"),
        ("23 12:01:00", "fast"),
        ("23 12:01:00", "minutely"),  # the same instant: by name
        ("23 12:01:20", "fast"),
        ("23 12:01:40", "fast"),
    ]
    assert result.more is True
    first = result.runs[0]
    assert first.when == datetime(2026, 11, 23, 12, 0, 20, tzinfo=UTC)
    assert (first.task, first.schedule, first.expression, first.zone, first.source) == (
        "tests.testapp.tasks.record",
        "every 20 seconds (UTC)",
        "every 20 seconds",
        "UTC",
        "periodic",
    )
    assert (first.entry, first.job_id, first.attempt) == ("fast", None, 1)


def test_until_is_inclusive_and_a_slow_entry_appears_when_it_is_due() -> None:
    entries = [
        resolved_entry("fast", "every 6 hours"),
        resolved_entry("report", "Sunday 17:03", tz="Europe/Rome"),
    ]
    until = datetime(2026, 11, 29, 16, 3, tzinfo=UTC)  # 17:03 in Rome
    result = merge_upcoming(entries, now=NOW, count=100, until=until)
    assert listed(result.runs)[-3:] == [
        ("29 06:00:00", "fast"),
        ("29 12:00:00", "fast"),
        ("29 16:03:00", "report"),
    ]
    assert len(result.runs) == 6 * 4 + 1
    assert result.more is False
    assert result.runs[-1].schedule == "every Sunday at 17:03 (Europe/Rome)"
    assert result.runs[-1].zone == "Europe/Rome"


def test_count_caps_the_list_and_more_says_whether_runs_follow() -> None:
    entries = [resolved_entry("hourly", "every hour")]
    assert merge_upcoming(entries, now=NOW, count=3).more is True
    until = datetime(2026, 11, 23, 15, tzinfo=UTC)
    exact = merge_upcoming(entries, now=NOW, count=3, until=until)
    assert (len(exact.runs), exact.more) == (3, False)
    over = merge_upcoming(entries, now=NOW, count=2, until=until)
    assert (len(over.runs), over.more) == (2, True)


def test_disabled_entries_and_spent_one_shots_have_no_runs() -> None:
    entries = [
        resolved_entry("off", "every second", enabled=False),
        resolved_entry("spent", "once at 2026-01-01 00:00"),
        resolved_entry("soon", "once at 2026-11-23 12:30"),
    ]
    result = merge_upcoming(entries, now=NOW, count=5)
    assert listed(result.runs) == [("23 12:30:00", "soon")]
    assert result.more is False


def test_entries_sharing_a_schedule_are_each_listed() -> None:
    entries = [resolved_entry(f"tenant-{i}", "daily at 03:00", tz="Europe/Rome") for i in (3, 1, 2)]
    result = merge_upcoming(entries, now=NOW, count=4)
    assert listed(result.runs) == [
        ("24 02:00:00", "tenant-1"),
        ("24 02:00:00", "tenant-2"),
        ("24 02:00:00", "tenant-3"),
        ("25 02:00:00", "tenant-1"),
    ]


def test_one_off_jobs_are_merged_and_overdue_ones_come_first() -> None:
    jobs = [
        one_off("later", NOW + timedelta(seconds=50)),
        one_off("overdue", NOW - timedelta(seconds=2)),
        one_off("manual", NOW + timedelta(seconds=1), entry_manual_run="fast"),
        one_off("retry", NOW + timedelta(seconds=30), attempt=3),
    ]
    result = merge_upcoming([resolved_entry("fast", "every 20 seconds")], jobs, now=NOW, count=6)
    assert listed(result.runs) == [
        ("23 12:00:05", "overdue"),
        ("23 12:00:08", "manual"),
        ("23 12:00:20", "fast"),
        ("23 12:00:37", "retry"),
        ("23 12:00:40", "fast"),
        ("23 12:00:57", "later"),
    ]
    by_name = {run.name: run for run in result.runs}
    assert (by_name["overdue"].source, by_name["overdue"].schedule) == ("one-off", "one-off")
    assert by_name["overdue"].job_id == "overdue"
    assert by_name["overdue"].zone is None
    assert by_name["manual"].schedule == "manual run of 'fast'"
    assert by_name["retry"].schedule == "one-off, attempt 3"
    assert by_name["retry"].attempt == 3


def test_a_fire_the_beat_already_spooled_is_listed_once() -> None:
    spooled = [fire("fast", datetime(2026, 11, 23, 12, 0, 20, tzinfo=UTC))]
    result = merge_upcoming([resolved_entry("fast", "every 20 seconds")], spooled, now=NOW, count=3)
    assert listed(result.runs) == [
        ("23 12:00:20", "fast"),
        ("23 12:00:40", "fast"),
        ("23 12:01:00", "fast"),
    ]
    spooled_run = result.runs[0]
    assert spooled_run.job_id == spooled[0].job_id
    assert (spooled_run.source, spooled_run.schedule) == ("periodic", "every 20 seconds (UTC)")
    assert result.runs[1].job_id is None


def test_overdue_fires_and_retries_of_fires_in_the_spool_are_listed() -> None:
    late = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    spooled = [
        fire("fast", late),  # the spooler is not running
        fire("gone", late),  # an entry removed since the beat wrote it
        fire("fast", late - timedelta(seconds=20), attempt=2),
    ]
    result = merge_upcoming([resolved_entry("fast", "every 20 seconds")], spooled, now=NOW, count=4)
    assert listed(result.runs) == [
        ("23 11:59:40", "fast"),
        ("23 12:00:00", "fast"),
        ("23 12:00:00", "gone"),
        ("23 12:00:20", "fast"),
    ]
    assert result.runs[0].schedule == "every 20 seconds (UTC), attempt 2"
    assert (result.runs[2].schedule, result.runs[2].zone) == ("periodic fire", None)


def test_bad_count_and_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^count must be a whole number >= 1, not 0\.$"):
        merge_upcoming([], now=NOW, count=0)
    naive = datetime(2026, 11, 23, 12)
    with pytest.raises(ValueError, match="must be aware datetimes"):
        merge_upcoming([], now=naive)


def _brute_force(
    entries: list[ResolvedEntry], now: datetime, until: datetime
) -> list[tuple[float, str]]:
    fires = []
    for e in entries:
        when = e.schedule.next_after(now)
        while when is not None and when <= until:
            fires.append((when.timestamp(), e.name))
            when = e.schedule.next_after(when)
    return sorted(fires)


def test_2000_entries_come_out_as_a_brute_force_sort_says() -> None:
    rng = random.Random(5)
    zones = ["UTC", "Europe/Rome", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

    def expression() -> str:
        kind = rng.randrange(5)
        if kind == 0:
            return f"every {rng.choice([30, 45, 90, 600, 3600, 5400])} seconds"
        if kind == 1:
            return f"{rng.randrange(60)} {rng.choice(['*', '*/2', '9-17'])} * * *"
        if kind == 2:
            return f"{rng.choice(days)} at {rng.randrange(24):02d}:{rng.randrange(60):02d}"
        if kind == 3:
            return f"every hour at :{rng.randrange(60):02d}"
        return f"once at 2026-11-2{rng.randrange(3, 6)} {rng.randrange(24):02d}:00"

    entries = [
        resolved_entry(f"e{i:04d}", expression(), tz=rng.choice(zones), enabled=rng.random() > 0.05)
        for i in range(2000)
    ]
    until = NOW + timedelta(hours=1)
    expected = _brute_force([e for e in entries if e.enabled], NOW, until)
    assert len(expected) > 3000  # enough fires to make the order mean something

    everything = merge_upcoming(entries, now=NOW, count=len(expected) + 10, until=until)
    assert [(r.when.timestamp(), r.name) for r in everything.runs] == expected
    assert everything.more is False

    first = merge_upcoming(entries, now=NOW, count=500)
    assert [(r.when.timestamp(), r.name) for r in first.runs] == expected[:500]
    assert first.more is True


# --- upcoming(): entries from the schedules modules, jobs from the spool ---------------------


@pytest.fixture
def modules(spool_dir: Path, settings: Any) -> Any:
    def use(*names: str) -> None:
        settings.SPOOLCRON = {**settings.SPOOLCRON, "MODULES": list(names)}

    return use


def test_upcoming_reads_the_modules_and_the_spool_dir(spool_dir: Path, modules: Any) -> None:
    modules(VALID)
    write_payload(spool_dir, one_off("waiting", NOW + timedelta(seconds=1)))
    write_payload(spool_dir, fire("every-5s", datetime(2026, 11, 23, 12, 0, 10, tzinfo=UTC)))
    result, problems = upcoming(count=4, now=NOW)
    assert problems == []
    assert listed(result.runs) == [
        ("23 12:00:08", "waiting"),
        ("23 12:00:10", "every-5s"),
        ("23 12:00:15", "every-5s"),
        ("23 12:00:20", "every-5s"),
    ]
    assert result.runs[1].job_id is not None  # the spooled fire, listed once


def test_upcoming_for_one_entry(spool_dir: Path, modules: Any) -> None:
    modules(VALID)
    write_payload(spool_dir, one_off("other", NOW + timedelta(seconds=1)))
    write_payload(
        spool_dir, one_off("manual", NOW + timedelta(seconds=2), entry_manual_run="object")
    )
    result, _ = upcoming(count=3, entry="object", now=NOW)
    assert listed(result.runs) == [
        ("23 12:00:09", "manual"),
        ("23 12:01:30", "object"),
        ("23 12:03:00", "object"),
    ]


def test_unknown_or_broken_entry_names_are_refused(spool_dir: Path, modules: Any) -> None:
    modules(VALID, BROKEN)
    with pytest.raises(UnknownEntry) as unknown:
        upcoming(entry="nope", now=NOW)
    assert str(unknown.value) == "Unknown entry 'nope': no schedules module declares it."
    with pytest.raises(UnknownEntry) as broken:
        upcoming(entry="typo", now=NOW)
    assert str(broken.value) == (
        "Entry 'typo' cannot be used: Cannot parse schedule 'every 5 secnds': unknown unit "
        "'secnds' at position 8; did you mean 'seconds'?"
    )


def test_entries_with_problems_are_left_out_and_reported(spool_dir: Path, modules: Any) -> None:
    modules(VALID, BROKEN)
    result, problems = upcoming(count=50, now=NOW)
    assert {p.entry for p in problems} >= {"typo", "ghost", "bad-zone", "every-5s"}
    assert "typo" not in {run.name for run in result.runs}
    assert "every-5s" in {run.name for run in result.runs}  # the valid module's one


def test_a_missing_spool_dir_means_no_jobs(tmp_path: Path, settings: Any) -> None:
    settings.SPOOLCRON = {"SPOOL_DIR": str(tmp_path / "absent"), "MODULES": [VALID]}
    result, _ = upcoming(count=1, now=NOW)
    assert listed(result.runs) == [("23 12:00:10", "every-5s")]


# --- WHEN ------------------------------------------------------------------------------------

ROME = ZoneInfo("Europe/Rome")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("+90s", NOW + timedelta(seconds=90)),
        ("+15m", NOW + timedelta(minutes=15)),
        ("+2h", NOW + timedelta(hours=2)),
        ("+3d", NOW + timedelta(days=3)),
        ("+1w", NOW + timedelta(weeks=1)),
        ("+ 2 hours", NOW + timedelta(hours=2)),
        ("+1.5h", NOW + timedelta(minutes=90)),
        (" Today ", datetime(2026, 11, 24, tzinfo=ROME)),
        ("tomorrow", datetime(2026, 11, 25, tzinfo=ROME)),
        ("2026-12-24T18:00", datetime(2026, 12, 24, 18, tzinfo=ROME)),
        ("2026-12-24 18:00:30", datetime(2026, 12, 24, 18, 0, 30, tzinfo=ROME)),
        ("2026-12-24", datetime(2026, 12, 24, tzinfo=ROME)),
        ("2026-12-24T18:00Z", datetime(2026, 12, 24, 18, tzinfo=UTC)),
        ("2026-12-24T18:00+05:30", datetime(2026, 12, 24, 12, 30, tzinfo=UTC)),
    ],
)
def test_when_phrases(text: str, expected: datetime) -> None:
    assert parse_when(text, now=NOW, tz=ROME) == expected


def test_today_and_tomorrow_are_local_midnights_across_dst() -> None:
    # 28 March 2026, 23:30 in Rome; clocks jump forward at 02:00 the next night.
    late = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)
    today = parse_when("today", now=late, tz=ROME)
    tomorrow = parse_when("tomorrow", now=late, tz=ROME)
    assert today.astimezone(UTC) == datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert tomorrow.astimezone(UTC) == datetime(2026, 3, 29, 22, tzinfo=UTC)  # 23 h later


def test_naive_when_is_read_in_time_zone(settings: Any) -> None:
    settings.TIME_ZONE = "America/New_York"
    assert parse_when("2026-12-24T18:00", now=NOW) == datetime(2026, 12, 24, 23, tzinfo=UTC)


@pytest.mark.parametrize("text", ["soonish", "", "+2 fortnights", "-2h", "+h", "2026-13-01"])
def test_bad_when_names_the_option_and_the_value(text: str) -> None:
    with pytest.raises(BadWhen) as error:
        parse_when(text, now=NOW, tz=ROME)
    assert str(error.value) == (
        f"Cannot understand --until {text!r}: use an ISO date-time like 2026-12-24T18:00 "
        "or +2h, +3d, today, tomorrow."
    )
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "now"),
        (-0.4, "now"),
        (4, "in 4 s"),
        (-2, "2 s ago"),
        (59.4, "in 59 s"),
        (59.6, "in 1 min"),
        (240, "in 4 min"),
        (-239, "4 min ago"),
        (3569, "in 59 min"),
        (3600, "in 1 h"),
        (3900, "in 1 h 5 min"),
        (86399, "in 1 d"),
        (2 * 86400 + 3 * 3600, "in 2 d 3 h"),
    ],
)
def test_relative(seconds: float, text: str) -> None:
    assert relative(seconds) == text
