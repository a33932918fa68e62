"""Issue 18 (2) on the test database: entries stored in the database, validated with the system
checks' messages, added, edited and deleted by the command, read by the beat's source (its
change counter) and listed by ``entries``, ``upcoming`` and ``health`` with their origin."""

from __future__ import annotations

import json
import logging
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from freezegun import freeze_time

import tests.schedule_modules.valid  # noqa: F401  (registers its @periodic entry)
from spoolcron import operations
from spoolcron.checks import check_entries
from spoolcron.exceptions import InvalidEntry, UnknownEntry
from spoolcron.models import DatabaseEntry, EntryState, FireClaim
from spoolcron.storage.entries import DatabaseEntrySource, entries_version

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loaded_periodic_only")]

VALID = "tests.schedule_modules.valid"
RECORD = "tests.testapp.tasks.record"
NOW = "2026-11-23T12:00:07Z"


def command(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("spoolcron", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def failing(*args: str) -> CommandError:
    with pytest.raises(CommandError) as error:
        command(*args)
    return error.value


@pytest.fixture
def valid(spool_dirs: tuple[Path, Path], settings: Any) -> Path:
    settings.SPOOLCRON = {**settings.SPOOLCRON, "MODULES": [VALID]}
    return spool_dirs[0]


# --- validation: the checks' messages --------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        (
            {"task": "tests.testapp.tasks.nope"},
            "task",
            "Unknown task 'tests.testapp.tasks.nope': no function is registered under that name "
            "with @spoolcron.task (is its module imported, e.g. from an app's tasks.py?).",
        ),
        (
            {"task": "os.system"},  # an import path is only ever a registry lookup
            "task",
            "Unknown task 'os.system': no function is registered under that name with "
            "@spoolcron.task (is its module imported, e.g. from an app's tasks.py?).",
        ),
        (
            {"schedule": "every 5 minuts"},
            "schedule",
            "Cannot parse schedule 'every 5 minuts': unknown unit 'minuts' at position 8; did "
            "you mean 'minutes'?",
        ),
        (
            {"zone": "Mars/Olympus"},
            "zone",
            "Cannot parse time zone 'Mars/Olympus': it is not in the time zone database; use an "
            "IANA name such as 'Europe/Rome' or 'UTC'.",
        ),
        (
            {"misfire": "later"},
            "misfire",
            "misfire must be one of coalesce, all, skip, not 'later'.",
        ),
        ({"jitter": -1.0}, "jitter", "jitter must be a number of seconds >= 0, not -1.0."),
        ({"args": {"a": 1}}, "args", "args must be a list, not {'a': 1}."),
        (
            {"pause_after_failures": 0},
            "pause_after_failures",
            "pause_after_failures must be a whole number >= 1 or None, not 0.",
        ),
        (
            {"name": "x" * 201},
            "name",
            "name may be at most 200 characters long, not 201.",
        ),
        (
            {"name": "every-5s"},
            "name",
            "The name 'every-5s' is taken by the entry 'every-5s' declared in "
            "tests.schedule_modules.valid; a database entry needs a name of its own.",
        ),
    ],
)
def test_validation_says_what_the_checks_say_on_the_field_at_fault(
    valid: Path, values: dict[str, Any], field: str, message: str
) -> None:
    good = {"name": "sync", "task": RECORD, "schedule": "every 5 minutes"}
    with pytest.raises(InvalidEntry) as error:
        operations.validate_entry({**good, **values})
    assert (error.value.field, str(error.value)) == (field, message)


def test_a_declared_entry_with_a_non_positive_pause_after_failures_is_a_check_error(
    settings: Any, spool_dirs: tuple[Path, Path]
) -> None:
    settings.SPOOLCRON = {
        **settings.SPOOLCRON,
        "MODULES": ["tests.schedule_modules.bad_pause_after"],
    }
    [error] = [e for e in check_entries() if "flaky" in e.msg]
    assert (error.id, error.msg) == (
        "spoolcron.E004",
        "entry 'flaky' in tests.schedule_modules.bad_pause_after: pause_after_failures must be "
        "a whole number >= 1 or None, not 0.",
    )


# --- the command -------------------------------------------------------------------------


@freeze_time(NOW)
def test_entry_add_prints_the_schedule_in_english_and_the_next_five_fires(valid: Path) -> None:
    out, _ = command(
        "entry-add",
        "sync",
        "--task",
        RECORD,
        "--schedule",
        "every 10 minutes",
        "--args",
        '["sync"]',
        "--kwargs",
        '{"to": "ops"}',
        "--pause-after-failures",
        "3",
        "--jitter",
        "0",
    )
    assert out.splitlines() == [
        f"Added database entry 'sync': {RECORD} every 10 minutes (UTC).",
        "Next fires:",
        "  Mon 2026-11-23 12:10:00 UTC",
        "  Mon 2026-11-23 12:20:00 UTC",
        "  Mon 2026-11-23 12:30:00 UTC",
        "  Mon 2026-11-23 12:40:00 UTC",
        "  Mon 2026-11-23 12:50:00 UTC",
    ]
    row = DatabaseEntry.objects.get()
    assert (row.name, row.task, row.schedule, row.args, row.kwargs) == (
        "sync",
        RECORD,
        "every 10 minutes",
        ["sync"],
        {"to": "ops"},
    )
    assert (row.pause_after_failures, row.version, row.enabled) == (3, 1, True)
    # A baseline at now: a beat starting later runs no fire from before the entry existed.
    [claim] = FireClaim.objects.filter(entry="sync")
    assert (claim.job_id, claim.fire_time.isoformat()) == ("", "2026-11-23T12:00:07+00:00")


def test_entry_add_refuses_a_declared_name_and_bad_values_in_one_sentence(valid: Path) -> None:
    error = failing("entry-add", "every-5s", "--task", RECORD, "--schedule", "every minute")
    assert (str(error), error.returncode) == (
        "The name 'every-5s' is taken by the entry 'every-5s' declared in "
        "tests.schedule_modules.valid; a database entry needs a name of its own.",
        2,
    )
    error = failing(
        "entry-add", "sync", "--task", RECORD, "--schedule", "every minute", "--grace", "0"
    )
    assert (str(error), error.returncode) == (
        "grace must be a number of seconds > 0 or None, not 0.0. (--grace)",
        2,
    )
    assert not DatabaseEntry.objects.exists()
    command("entry-add", "sync", "--task", RECORD, "--schedule", "every minute")
    error = failing("entry-add", "sync", "--task", RECORD, "--schedule", "every minute")
    assert str(error) == "A database entry named 'sync' exists already."


@freeze_time(NOW)
def test_entry_edit_changes_only_what_is_given_and_a_new_schedule_gets_a_baseline(
    valid: Path,
) -> None:
    command("entry-add", "sync", "--task", RECORD, "--schedule", "every minute", "--args", "[1]")
    FireClaim.objects.all().delete()
    out, _ = command("entry-edit", "sync", "--jitter", "5")
    assert out.splitlines()[0] == f"Changed database entry 'sync': {RECORD} every minute (UTC)."
    assert not FireClaim.objects.exists()  # same schedule: its fires go on as they were
    row = DatabaseEntry.objects.get()
    assert (row.args, row.jitter, row.version) == ([1], 5.0, 2)
    command("entry-edit", "sync", "--schedule", "every 2 minutes", "--disable")
    row.refresh_from_db()
    assert (row.schedule, row.enabled, row.version) == ("every 2 minutes", False, 3)
    assert FireClaim.objects.get().job_id == ""
    error = failing("entry-edit", "nope", "--jitter", "1")
    assert (str(error), error.returncode) == ("No database entry is named 'nope'.", 2)
    error = failing("entry-edit", "every-5s", "--jitter", "1")
    assert str(error) == (
        "No database entry is named 'every-5s' (it is declared in a schedules module: change "
        "it there)."
    )


def test_entry_delete_removes_the_row_and_its_pause_state(valid: Path) -> None:
    command("entry-add", "sync", "--task", RECORD, "--schedule", "every minute")
    operations.pause_entry("sync", note="x")
    out, _ = command("entry-delete", "sync")
    assert out.strip() == "Deleted database entry 'sync': no beat enqueues its fires any more."
    assert not DatabaseEntry.objects.exists()
    assert not EntryState.objects.exists()
    error = failing("entry-delete", "sync")
    assert str(error) == "No database entry is named 'sync'."


# --- listings ------------------------------------------------------------------------------


@freeze_time(NOW)
def test_entries_upcoming_and_health_list_stored_entries_with_their_origin(valid: Path) -> None:
    operations.add_entry("stored", task=RECORD, schedule="every 7 minutes", args=["s"])
    report = operations.list_entries()
    [info] = [e for e in report.entries if e.name == "stored"]
    assert (info.origin, info.module, info.task) == ("database", "database", RECORD)
    assert {e.origin for e in report.entries if e.name != "stored"} == {"module"}
    out, _ = command("entries")
    block = out.split("stored\n", 1)[1].split("\n\n", 1)[0]
    assert "  stored in    the database" in block
    data = json.loads(command("entries", "--json")[0])
    assert [e["origin"] for e in data["entries"] if e["name"] == "stored"] == ["database"]
    out, _ = command("upcoming", "--entry", "stored", "--count", "1")
    assert "stored" in out.splitlines()[1]
    assert "every 7 minutes" in out.splitlines()[1]
    # run, pause and resume reach stored entries too.
    assert operations.run_entry("stored").task == RECORD
    assert operations.pause_entry("stored", note="n").paused


@freeze_time(NOW)
def test_a_stored_entry_whose_task_went_away_is_a_problem_not_a_crash(valid: Path) -> None:
    DatabaseEntry.objects.create(name="orphan", task="gone.task", schedule="every minute")
    report = operations.list_entries()
    assert "orphan" not in [e.name for e in report.entries]
    [problem] = [p for p in report.problems if p.entry == "orphan"]
    assert (problem.id, problem.module) == ("spoolcron.E003", "database")
    health = operations.health_report()
    assert (
        "1 periodic entry is invalid and not run (spoolcron.E003): see `spoolcron entries`."
        in health.reasons
    )


def test_check_with_the_database_warns_of_each_stored_entry_that_cannot_run(valid: Path) -> None:
    DatabaseEntry.objects.create(name="orphan", task="gone.task", schedule="every minute")
    DatabaseEntry.objects.create(name="typo", task=RECORD, schedule="every fortnight-ish")
    operations.add_entry("fine", task=RECORD, schedule="every minute")
    plain = StringIO()
    call_command("check", stdout=plain, stderr=plain)  # looks at no database
    assert "spoolcron.W007" not in plain.getvalue()
    warned = [
        m for m in run_checks(tags=["spoolcron"], databases=["default"]) if m.id == "spoolcron.W007"
    ]
    assert sorted(m.msg.split(":")[0] for m in warned) == [
        "entry 'orphan' in database",
        "entry 'typo' in database",
    ]
    [orphan] = [m for m in warned if "orphan" in m.msg]
    assert orphan.msg.endswith("(spoolcron.E003): the beat runs without it.")
    assert "gone.task" in orphan.msg
    # A warning: `check --database` (and migrate) still succeed.
    out = StringIO()
    call_command("check", databases=["default"], stdout=out, stderr=out)
    assert "spoolcron.W007" in out.getvalue()


# --- the beat's source -----------------------------------------------------------------------


def test_the_change_counter_moves_with_every_add_edit_and_delete(valid: Path) -> None:
    seen = [entries_version()]
    operations.add_entry("a", task=RECORD, schedule="every minute")
    seen.append(entries_version())
    operations.edit_entry("a", jitter=1.0)
    seen.append(entries_version())
    operations.add_entry("b", task=RECORD, schedule="every minute")
    seen.append(entries_version())
    # A delete and an add with the same count and versions: the highest id still moves.
    operations.delete_entry("a")
    operations.add_entry("c", task=RECORD, schedule="every minute")
    seen.append(entries_version())
    operations.delete_entry("c")
    seen.append(entries_version())
    assert len(set(seen)) == len(seen), seen


def test_an_update_in_bulk_moves_the_change_counter_too(valid: Path) -> None:
    operations.add_entry("a", task=RECORD, schedule="every minute")
    operations.add_entry("b", task=RECORD, schedule="every minute")
    seen = [entries_version()]
    assert DatabaseEntry.objects.filter(name="a").update(enabled=False) == 1
    seen.append(entries_version())
    rows = list(DatabaseEntry.objects.all())
    for row in rows:
        row.jitter = 2.0
    DatabaseEntry.objects.bulk_update(rows, ["jitter"])
    seen.append(entries_version())
    assert len(set(seen)) == len(seen), seen
    assert dict(DatabaseEntry.objects.values_list("name", "version")) == {"a": 3, "b": 2}
    operations.edit_entry("b", jitter=1.0)  # a save: one up, not two
    assert DatabaseEntry.objects.get(name="b").version == 3


def test_the_source_gives_declared_then_stored_entries_and_logs_a_clash_once(
    valid: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from spoolcron.core.entries import collect

    declared, _ = collect()
    operations.add_entry("stored", task=RECORD, schedule="every minute", enabled=False)
    # A row written behind the operations' back with a declared name: the declared one wins.
    DatabaseEntry.objects.create(name="every-5s", task=RECORD, schedule="every second")
    source = DatabaseEntrySource(declared)
    with caplog.at_level(logging.ERROR, logger="spoolcron.beat"):
        entries = source.entries()
        source.entries()
    assert [e.name for e in entries] == [e.name for e in declared] + ["stored"]
    assert [e.module for e in entries if e.name == "every-5s"] == [VALID]
    assert [r.getMessage() for r in caplog.records if r.name == "spoolcron.beat"] == [
        "invalid database entry, not run: entry 'every-5s' in database: the name 'every-5s' is "
        "already used by an entry in tests.schedule_modules.valid. (spoolcron.E001)"
    ]
    with pytest.raises(UnknownEntry):
        operations.delete_entry("nope")


# --- pause_after_failures ------------------------------------------------------------------


def test_the_nth_failure_in_a_row_pauses_the_entry_and_a_success_starts_again() -> None:
    from spoolcron.storage.ledger import DatabaseLedger

    ledger = DatabaseLedger()
    assert [ledger.fire_failed("e", 3, now=100.0) for _ in range(2)] == [1, 2]
    ledger.fire_succeeded("e")
    assert [ledger.fire_failed("e", 3, now=200.0) for _ in range(2)] == [1, 2]
    version = ledger.states_version()
    assert ledger.pause_states()["e"].paused is False
    assert ledger.fire_failed("e", 3, now=300.0) == 0
    state = ledger.pause_states()["e"]
    assert (state.paused, state.note, state.since, state.until) == (
        True,
        "paused after 3 consecutive failures",
        300.0,
        None,
    )
    assert ledger.states_version() != version  # every beat reads the pause within a second
    row = EntryState.objects.get(entry="e")
    assert (row.changed_by, row.failures) == ("spoolcron (pause_after_failures)", 0)
    # Failures of fires written before the pause count again, but leave the pause as it is.
    assert [ledger.fire_failed("e", 3, now=301.0) for _ in range(3)] == [1, 2, 0]
    assert ledger.pause_states()["e"].since == 300.0
    # A resume starts the count again.
    ledger.fire_failed("e", 3, now=302.0)
    ledger.resume("e", catch_up=False, now=400.0)
    assert EntryState.objects.get(entry="e").failures == 0


def test_the_recorder_counts_the_fires_of_entries_with_pause_after_failures() -> None:
    from spoolcron.core.payload import META_PAUSE_AFTER_FAILURES, Payload
    from spoolcron.storage.recorder import DatabaseRecorder

    recorder = DatabaseRecorder(start_delay=None)
    error = {"exception_class_path": "ValueError", "traceback": "ValueError: no"}

    def fire(n: int, entry: str | None = "flaky", limit: int | None = 2) -> Payload:
        meta = {} if limit is None else {META_PAUSE_AFTER_FAILURES: limit}
        return Payload(task=RECORD, job_id=f"j{n}", run_after=float(n), entry=entry, meta=meta)

    def failed(payload: Payload) -> None:
        attempt = recorder.started(payload, backend="", queue_name="", now=1.0)
        recorder.failed(attempt, error, now=2.0)

    failed(fire(1, limit=None))  # no pause_after_failures: not counted
    failed(fire(2, entry=None))  # a one-off job: not counted
    assert not EntryState.objects.exists()
    failed(fire(3))
    attempt = recorder.started(fire(4), backend="", queue_name="", now=1.0)
    recorder.succeeded(attempt, None, now=2.0)
    failed(fire(5))
    assert EntryState.objects.get(entry="flaky").paused is False
    failed(fire(6))
    state = EntryState.objects.get(entry="flaky")
    assert (state.paused, state.note) == (True, "paused after 2 consecutive failures")


def test_the_beat_puts_pause_after_failures_in_the_fires_meta(tmp_path: Path) -> None:
    from spoolcron.core.beat import Beat
    from spoolcron.spool import files
    from spoolcron.spool.payloads import SpoolFireWriter
    from tests.helpers import Clock, MemoryLedger, resolved_entry

    entry = resolved_entry("e", "every second")
    entry = type(entry)(**{**entry.__dict__, "pause_after_failures": 4})
    clock = Clock(1_800_000_000.0)
    beat = Beat([entry], MemoryLedger(), SpoolFireWriter(tmp_path), clock=clock)
    beat.start()
    clock.now += 1
    beat.tick()
    [path] = files.list_files(tmp_path)
    assert json.loads(files.read(path).body)["meta"] == {
        "overlap": "skip",
        "pause_after_failures": 4,
    }


@freeze_time(NOW)
def test_upcoming_marks_the_runs_of_stored_entries(valid: Path) -> None:
    operations.add_entry("stored", task=RECORD, schedule="every 7 minutes")
    out, _ = command("upcoming", "--entry", "stored", "--count", "2")
    assert [line.rsplit("  ", 1)[1] for line in out.splitlines()[1:3]] == [
        "periodic (database)",
        "periodic (database)",
    ]
    out, _ = command("upcoming", "--entry", "every-5s", "--count", "1")
    assert out.splitlines()[1].endswith("  periodic")
    data = json.loads(command("upcoming", "--entry", "stored", "--json")[0])
    assert {run["origin"] for run in data["runs"]} == {"database"}


@freeze_time(NOW)
def test_a_one_shot_in_the_past_is_saved_but_said_to_never_fire(valid: Path) -> None:
    out, _ = command(
        "entry-add", "once", "--task", RECORD, "--schedule", "once at 2026-01-01 10:00"
    )
    assert out.splitlines() == [
        f"Added database entry 'once': {RECORD} once at 2026-01-01 10:00 (UTC).",
        "Its schedule has no fire time after now (a one-shot in the past): it never fires.",
    ]


@pytest.mark.django_db(transaction=True)
def test_the_testing_helper_runs_stored_entries_too(valid: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from spoolcron.testing import run_due

    start = datetime(2026, 11, 23, 12, 0, 7, tzinfo=UTC)
    with freeze_time(start):  # its baseline: added then
        operations.add_entry("stored", task=RECORD, schedule="every minute", args=["stored"])
    run_due(now=start, entries=["stored"])
    ran = run_due(now=start + timedelta(minutes=2), entries=["stored"])
    assert [(r.outcome.value, r.payload.entry if r.payload else None) for r in ran] == [
        ("succeeded", "stored"),
        ("succeeded", "stored"),
    ]
