"""Collecting entries from schedules modules, and the system checks that report problems."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

import schedules
from spoolcron.core.entries import collect
from spoolcron.core.registry import get_task

VALID = "tests.schedule_modules.valid"
BROKEN = "tests.schedule_modules.broken"
RAISES = "tests.schedule_modules.raises"
PAST_ONCE = "tests.schedule_modules.past_once"


@pytest.fixture
def modules(settings: Any) -> Any:
    def use(*names: str) -> None:
        settings.SPOOLCRON = {**settings.SPOOLCRON, "MODULES": list(names)}

    return use


def test_valid_module_entries_are_resolved(modules: Any) -> None:
    modules(VALID)
    entries, problems = collect()
    assert problems == []
    by_name = {e.name: e for e in entries}
    assert {"every-5s", "sunday-report", "cron-line", "object", "decorated"} <= set(by_name)
    assert "testapp-every-minute" in by_name  # the test app's own schedules.py, autodiscovered
    report = by_name["sunday-report"]
    assert report.schedule == schedules.parse("Sunday 17:03", tz="Europe/Rome")
    assert report.misfire == "skip"
    assert report.module == VALID
    assert by_name["every-5s"].schedule.tz.key == "UTC"  # TIME_ZONE by default
    assert by_name["decorated"].task is get_task("tests.schedule_modules.valid.decorated")
    assert by_name["object"].schedule == schedules.Interval(seconds=90)


def test_checks_pass_for_valid_modules(modules: Any, spool_dir: Any) -> None:
    modules(VALID)
    assert [m for m in checks.run_checks() if m.id.startswith("spoolcron")] == []


def test_every_problem_is_a_check_error_naming_module_entry_and_cause(modules: Any) -> None:
    modules(VALID, BROKEN, RAISES)
    errors = {(m.id, m.msg) for m in checks.run_checks() if m.id and m.id.startswith("spoolcron")}
    messages = dict((msg.split(":")[0], (check_id, msg)) for check_id, msg in errors)
    assert messages["entry 'typo' in tests.schedule_modules.broken"] == (
        "spoolcron.E002",
        "entry 'typo' in tests.schedule_modules.broken: Cannot parse schedule "
        "'every 5 secnds': unknown unit 'secnds' at position 8; did you mean 'seconds'?",
    )
    assert messages["entry 'ghost' in tests.schedule_modules.broken"] == (
        "spoolcron.E003",
        "entry 'ghost' in tests.schedule_modules.broken: Unknown task "
        "'tests.testapp.tasks.nope': no function is registered under that name with "
        "@spoolcron.task (is its module imported, e.g. from an app's tasks.py?).",
    )
    assert messages["entry 'bad-zone' in tests.schedule_modules.broken"] == (
        "spoolcron.E002",
        "entry 'bad-zone' in tests.schedule_modules.broken: Cannot parse time zone "
        "'Europe/Rom': it is not in the time zone database; did you mean 'Europe/Rome'?",
    )
    assert messages["entry 'bad-policy' in tests.schedule_modules.broken"] == (
        "spoolcron.E004",
        "entry 'bad-policy' in tests.schedule_modules.broken: misfire must be one of "
        "coalesce, all, skip, not 'later'.",
    )
    bad_args = messages["entry 'bad-args' in tests.schedule_modules.broken"]
    assert bad_args[0] == "spoolcron.E004"
    assert re.fullmatch(
        r"entry 'bad-args' in tests\.schedule_modules\.broken: args\[0\] = <object object at "
        r"0x[0-9a-f]+> cannot be stored as JSON\.",
        bad_args[1],
    ), bad_args[1]
    assert messages["entry 'every-5s' in tests.schedule_modules.broken"] == (
        "spoolcron.E001",
        "entry 'every-5s' in tests.schedule_modules.broken: the name 'every-5s' is already "
        "used by an entry in tests.schedule_modules.valid.",
    )
    assert messages["module tests.schedule_modules.raises"] == (
        "spoolcron.E005",
        "module tests.schedule_modules.raises: importing it failed: "
        "RuntimeError: this schedules module is broken",
    )


def test_check_command_refuses_broken_entries(modules: Any) -> None:
    modules(BROKEN)
    with pytest.raises(SystemCheckError, match=re.escape("(spoolcron.E003)")):
        call_command("check")


def test_w006_a_one_shot_in_the_past_is_a_warning(modules: Any, spool_dir: Any) -> None:
    # Issue 15 (5): `once at` a past date was accepted silently and never fired.
    modules(PAST_ONCE)
    found = [m for m in checks.run_checks() if m.id and m.id.startswith("spoolcron")]
    assert [(m.id, m.level, m.msg) for m in found] == [
        (
            "spoolcron.W006",
            checks.WARNING,
            "entry 'launch' in tests.schedule_modules.past_once: its schedule "
            "'once at 2020-01-01 09:00 (UTC)' has no fire time after now (a one-shot in the "
            "past), so it never fires; give it a future date or remove the entry.",
        )
    ]
    # A warning, not an error: `check` and runserver go on, the valid entries still run.
    call_command("check")
    entries, problems = collect()
    assert problems == []
    assert "launch" in {e.name for e in entries}
