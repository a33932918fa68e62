"""spoolcron.testing: recording mode, run_enqueued, immediate mode, run_due under freezegun,
time-machine and an explicit instant (the daily entry across a week, DST changes), the
pytest plugin's fixtures and marker.

This module is also the schedules module of its tests (SPOOLCRON["MODULES"]).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import transaction
from freezegun import freeze_time

import spoolcron
import spoolcron.testing
from spoolcron import Entry
from spoolcron.exceptions import UnknownEntry
from spoolcron.models import Run
from spoolcron.runtime.dispatch import Outcome
from spoolcron.spool import files
from spoolcron.testing import FrozenClock
from tests.conftest import Runs
from tests.testapp import tasks

pytest_plugins = ["spoolcron.testing.pytest_plugin", "pytester"]

ROME = ZoneInfo("Europe/Rome")
THIS = "tests.test_testing"

ENTRIES = [
    Entry("daily-rome", "tests.testapp.tasks.record", "daily at 02:30", zone="Europe/Rome",
          args=["daily-rome"]),
    Entry("daily-skip", "tests.testapp.tasks.record", "daily at 03:00", misfire="skip",
          args=["daily-skip"]),
    Entry("every-10s", "tests.testapp.tasks.record", "every 10 seconds", args=["every-10s"]),
]  # fmt: skip

LIBRARIES = ["freezegun", "time-machine"]


@pytest.fixture
def schedules(settings: Any, spoolcron_spool_dir: Path) -> Path:
    """This module's entries only, and a temporary spool directory."""
    settings.SPOOLCRON = {**settings.SPOOLCRON, "MODULES": [THIS]}
    return spoolcron_spool_dir


def fires(results: list[Any], entry: str) -> list[datetime]:
    """The fire times of ``entry`` among run_due's results, in Rome's time."""
    return [
        datetime.fromtimestamp(r.payload.run_after, ROME)
        for r in results
        if r.payload is not None and r.payload.entry == entry
    ]


def rome(*args: int) -> datetime:
    return datetime(*args, tzinfo=ROME)  # type: ignore[misc]


# --- recording mode --------------------------------------------------------------------------


@pytest.mark.django_db
def test_recording_keeps_jobs_in_memory(spoolcron_spool_dir: Path, runs: Runs) -> None:
    with spoolcron.testing.recording() as jobs, transaction.atomic():
        job = tasks.record.schedule(["a"], run_after=timedelta(hours=1))
        tasks.always_fails.delay("b")
        spoolcron.schedule_many(tasks.record, [{"args": ["c"]}, {"args": ["d"]}])
        assert [j.args for j in spoolcron.testing.enqueued_jobs(task=tasks.record)] == [
            ["a"],
            ["c"],
            ["d"],
        ]
        [failing] = spoolcron.testing.enqueued_jobs("tests.testapp.tasks.always_fails")
        assert (failing.task, failing.args, failing.attempt) == (
            "tests.testapp.tasks.always_fails",
            ["b"],
            1,
        )
        assert len(jobs) == 4
        assert job.status == "pending"
        assert jobs.all()[0].run_after == job.run_after
        assert files.list_files(spoolcron_spool_dir) == []  # nothing written
        assert job.cancel() is True
        assert len(spoolcron.testing.enqueued_jobs()) == 3
        spoolcron.testing.clear()
        assert jobs.all() == []
    assert runs.labels() == []


def test_recording_off_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError) as error:
        spoolcron.testing.enqueued_jobs()
    assert str(error.value) == (
        "spoolcron.testing: recording mode is off; use `with spoolcron.testing.recording():` "
        "or the spoolcron_jobs pytest fixture."
    )


@pytest.mark.django_db
def test_recording_blocks_nest_and_restore(spoolcron_spool_dir: Path) -> None:
    from spoolcron.jobs import publisher

    real = publisher()
    with spoolcron.testing.recording() as outer:
        with spoolcron.testing.recording() as inner:
            tasks.record.delay("inner")
        tasks.record.delay("outer")
        assert [j.args for j in inner.all()] == [["inner"]]
        assert [j.args for j in outer.all()] == [["outer"]]
    assert publisher() is real
    tasks.record.schedule(["written"], on_commit=False)
    assert len(files.list_files(spoolcron_spool_dir)) == 1


@pytest.mark.django_db
def test_run_enqueued_runs_jobs_and_their_retries(
    spoolcron_spool_dir: Path, runs: Runs, settings: Any
) -> None:
    with spoolcron.testing.recording():
        tasks.record.schedule(["later"], run_after=timedelta(days=2))
        tasks.flaky.delay("f", fail_times=1)  # retries=2: fails once, then succeeds
        tasks.always_fails.delay("x")
        results = spoolcron.testing.run_enqueued(task=tasks.flaky)
        assert [r.outcome for r in results] == [Outcome.RETRYING, Outcome.SUCCEEDED]
        assert len(spoolcron.testing.enqueued_jobs()) == 2
        rest = spoolcron.testing.run_enqueued()
        assert spoolcron.testing.enqueued_jobs() == []
    # "later" runs as if its day had come; always_fails has no retries: it fails for good.
    assert [r.outcome for r in rest] == [Outcome.FAILED, Outcome.SUCCEEDED]
    assert runs.labels("record") == ["later"]
    assert runs.labels("flaky") == ["f", "f"]
    assert {r.outcome for r in Run.objects.filter(task="tests.testapp.tasks.flaky")} == {
        "retrying",
        "succeeded",
    }
    # A failed job lands in the failed directory with its reason, as it would in production.
    [failed] = files.list_quarantined(Path(settings.SPOOLCRON["FAILED_DIR"]))
    assert "always_fails x" in files.reason_path(failed).read_text()


@pytest.mark.django_db
def test_immediate_mode_runs_at_enqueue(spoolcron_spool_dir: Path, runs: Runs) -> None:
    with spoolcron.testing.recording(immediate=True) as jobs:
        with transaction.atomic():
            job = tasks.record.schedule(["now"], run_after=timedelta(hours=3))
            assert runs.labels() == ["now"]  # inside the transaction, at once
        tasks.flaky.delay("g", fail_times=2)  # each retry runs after the attempt before
        assert jobs.all() == []
        assert [r.outcome for r in jobs.results] == [
            Outcome.SUCCEEDED,
            Outcome.RETRYING,
            Outcome.RETRYING,
            Outcome.SUCCEEDED,
        ]
    assert job.status == "succeeded"
    assert runs.labels("flaky") == ["g", "g", "g"]


# --- run_due: the daily entry across a week, under each clock --------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("library", LIBRARIES)
def test_a_daily_entry_fires_once_a_day_for_a_week(
    schedules: Path, runs: Runs, library: str
) -> None:
    with FrozenClock(rome(2026, 6, 1, 12, 0), library=library) as clock:  # type: ignore[arg-type]
        assert spoolcron.testing.run_due(entries=["daily-rome"]) == []  # the beat starts
        seen = []
        for _ in range(7):
            clock.advance(days=1)
            seen += fires(spoolcron.testing.run_due(entries=["daily-rome"]), "daily-rome")
            assert spoolcron.testing.run_due(entries=["daily-rome"]) == []  # nothing twice
    assert seen == [rome(2026, 6, day, 2, 30) for day in range(2, 9)]
    assert runs.labels() == ["daily-rome"] * 7
    assert Run.objects.filter(entry="daily-rome", outcome="succeeded").count() == 7


@pytest.mark.django_db
@pytest.mark.parametrize("library", LIBRARIES)
def test_a_week_in_one_jump_runs_each_fire_at_its_time(
    schedules: Path, runs: Runs, library: str
) -> None:
    with FrozenClock("2026-06-01T12:00:00+02:00", library=library) as clock:  # type: ignore[arg-type]
        spoolcron.testing.run_due(entries=["daily-rome", "daily-skip"])
        clock.advance(timedelta(weeks=1))
        results = spoolcron.testing.run_due(entries=["daily-rome", "daily-skip"])
    assert fires(results, "daily-rome") == [rome(2026, 6, day, 2, 30) for day in range(2, 9)]
    # As if the beat had run all along: no fire was missed, so misfire="skip" skips none.
    assert len(fires(results, "daily-skip")) == 7
    assert [r.outcome for r in results] == [Outcome.SUCCEEDED] * 14
    assert sorted(runs.labels()) == ["daily-rome"] * 7 + ["daily-skip"] * 7


@pytest.mark.django_db
@pytest.mark.parametrize("library", LIBRARIES)
def test_after_downtime_the_misfire_policy_decides(
    schedules: Path, runs: Runs, library: str
) -> None:
    with FrozenClock("2026-06-01T12:00:00+00:00", library=library) as clock:  # type: ignore[arg-type]
        spoolcron.testing.run_due(entries=["daily-rome", "daily-skip"])
        clock.advance(days=3)
        results = spoolcron.testing.run_due(
            entries=["daily-rome", "daily-skip"], beat_was_down=True
        )
    # coalesce: the three missed fires run once; skip: none.
    assert fires(results, "daily-rome") == [rome(2026, 6, 4, 2, 30)]
    assert fires(results, "daily-skip") == []
    assert runs.labels() == ["daily-rome"]


@pytest.mark.django_db
def test_an_explicit_now_needs_no_frozen_clock(schedules: Path, runs: Runs) -> None:
    start = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
    spoolcron.testing.run_due(start, entries=["every-10s"])
    tasks.record.schedule(["one-off"], run_after=start + timedelta(seconds=15), on_commit=False)
    results = spoolcron.testing.run_due(start + timedelta(seconds=30), entries=["every-10s"])
    # Fires and jobs in time order: :10, the job at :15, :20, :30.
    assert runs.labels() == ["every-10s", "one-off", "every-10s", "every-10s"]
    assert len(results) == 4
    with pytest.raises(UnknownEntry) as error:
        spoolcron.testing.run_due(start, entries=["nope"])
    assert str(error.value) == "Unknown entry 'nope': no schedules module declares it."


# --- run_due across daylight saving changes ------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "expected"),
    [
        pytest.param(
            rome(2026, 3, 27, 12),
            [rome(2026, 3, 28, 2, 30), rome(2026, 3, 29, 3, 0), rome(2026, 3, 30, 2, 30)],
            id="spring-forward",  # 02:30 does not exist on the 29th: it fires at 03:00
        ),
        pytest.param(
            rome(2026, 10, 23, 12),
            [
                rome(2026, 10, 24, 2, 30),
                datetime(2026, 10, 25, 0, 30, tzinfo=UTC).astimezone(ROME),  # first 02:30
                rome(2026, 10, 26, 2, 30),
            ],
            id="fall-back",  # 02:30 happens twice on the 25th: it fires once
        ),
    ],
)
def test_a_daily_entry_fires_once_a_day_across_dst(
    schedules: Path, runs: Runs, start: datetime, expected: list[datetime]
) -> None:
    seen: list[datetime] = []
    with freeze_time(start) as frozen:
        spoolcron.testing.run_due(entries=["daily-rome"])
        for _ in range(3):
            frozen.tick(timedelta(days=1))
            seen += fires(spoolcron.testing.run_due(entries=["daily-rome"]), "daily-rome")
    assert seen == expected
    assert [d.utcoffset() for d in seen] == [d.utcoffset() for d in expected]
    with time_machine.travel(start, tick=False) as traveller:
        Run.objects.all().delete()
        from spoolcron.models import FireClaim

        FireClaim.objects.all().delete()
        spoolcron.testing.run_due(entries=["daily-rome"])
        traveller.shift(timedelta(days=3))
        again = fires(spoolcron.testing.run_due(entries=["daily-rome"]), "daily-rome")
    assert again == expected


@pytest.mark.django_db
def test_run_due_in_recording_mode_runs_the_recorded_jobs(schedules: Path, runs: Runs) -> None:
    with FrozenClock("2026-06-01T12:00:00+00:00") as clock, spoolcron.testing.recording() as jobs:
        spoolcron.testing.run_due(entries=["every-10s"])
        tasks.record.schedule(["in-5s"], run_after=5)
        tasks.record.schedule(["in-1h"], run_after=3600)
        clock.advance(seconds=10)
        results = spoolcron.testing.run_due(entries=["every-10s"])
        assert [j.args for j in jobs.all()] == [["in-1h"]]
    assert runs.labels() == ["in-5s", "every-10s"]
    assert [r.payload.entry for r in results if r.payload] == [None, "every-10s"]
    assert files.list_files(schedules) == []


# --- the pytest plugin -------------------------------------------------------------------


@pytest.fixture
def plugin_tests(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    repo = Path(__file__).parents[1]
    monkeypatch.setenv("PYTHONPATH", str(repo))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.settings")
    monkeypatch.delenv("SPOOLCRON_TEST_MODULES", raising=False)
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider --strict-markers\n")
    pytester.makeconftest('pytest_plugins = ["spoolcron.testing.pytest_plugin"]\n')
    return pytester


def test_the_pytest_plugin_fixtures_and_marker(plugin_tests: pytest.Pytester) -> None:
    plugin_tests.makepyfile(
        """
        import time
        from datetime import UTC, datetime

        import pytest

        import spoolcron.testing
        from tests.testapp import tasks


        @pytest.mark.django_db
        def test_fixture(spoolcron_jobs, spoolcron_spool_dir):
            tasks.record.delay("x")
            assert [j.args for j in spoolcron_jobs.all(task=tasks.record)] == [["x"]]
            assert spoolcron_spool_dir.is_dir()


        @pytest.mark.django_db
        @pytest.mark.spoolcron(immediate=True)
        def test_marker_immediate(spoolcron_spool_dir):
            tasks.record.delay("y")
            assert spoolcron.testing.enqueued_jobs() == []


        @pytest.mark.spoolcron(now="2026-03-29T01:59:00+01:00")
        def test_marker_now(spoolcron_clock):
            assert time.time() == datetime(2026, 3, 29, 0, 59, tzinfo=UTC).timestamp()
            spoolcron_clock.advance(minutes=1)
            assert spoolcron_clock.now == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


        def test_unmarked_tests_are_untouched():
            from spoolcron import jobs

            assert jobs._recording is None
        """
    )
    result = plugin_tests.runpytest_subprocess()
    result.assert_outcomes(passed=4)


def test_the_plugin_is_inert_until_asked(
    plugin_tests: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loaded where Django is not even configured, it changes nothing.
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE")
    plugin_tests.makepyfile(
        """
        import sys

        def test_nothing_recorded():
            assert sys.modules["spoolcron.jobs"]._recording is None
        """
    )
    result = plugin_tests.runpytest_subprocess("-p", "no:django")
    result.assert_outcomes(passed=1)


def test_the_entry_point_names_the_plugin_module() -> None:
    import configparser

    config = configparser.ConfigParser()
    config.read(Path(__file__).parents[1] / "setup.cfg")
    [line] = [x for x in config["options.entry_points"]["pytest11"].splitlines() if x]
    name, _, module = (part.strip() for part in line.partition("="))
    # Named after the module: a conftest listing the module finds it loaded and skips it.
    assert name == module == "spoolcron.testing.pytest_plugin"
