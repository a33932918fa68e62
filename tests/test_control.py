"""Issue 18 on the test database: the pause states in the ledger, the pause, resume and
backfill commands, the new entry options' checks, and the dead-man switch in ``health``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from freezegun import freeze_time

from spoolcron.core.entries import Entry, resolve_entry
from spoolcron.core.protocols import EntryPause
from spoolcron.models import EntryState, FireClaim, Run
from spoolcron.spool import files
from spoolcron.storage.ledger import DatabaseLedger

pytestmark = pytest.mark.django_db(transaction=True)

CONTROL = "tests.schedule_modules.control"
NOW = datetime(2026, 11, 23, 12, 0, 7, tzinfo=UTC)
T0 = NOW.timestamp()


def command(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("spoolcron", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def failing(*args: str) -> CommandError:
    with pytest.raises(CommandError) as error:
        command(*args)
    return error.value


@pytest.fixture
def control(spool_dirs: tuple[Path, Path], settings: Any) -> Path:
    settings.SPOOLCRON = {**settings.SPOOLCRON, "MODULES": [CONTROL]}
    return spool_dirs[0]


# --- the ledger's pause states -----------------------------------------------------------


def test_pause_and_resume_change_the_version_and_the_states() -> None:
    ledger = DatabaseLedger()
    empty = ledger.states_version()
    assert ledger.pause_states() == {}
    state = ledger.pause("e", note="broken upstream", until=T0 + 3600, now=T0, by="ops")
    assert state == EntryPause(
        paused=True, note="broken upstream", until=T0 + 3600, since=T0, version=1
    )
    paused = ledger.states_version()
    assert paused != empty
    # Pausing again changes the note, not since when.
    ledger.pause("e", note="still", now=T0 + 10)
    assert ledger.pause_states()["e"].since == T0
    assert ledger.states_version() != paused
    was = ledger.resume("e", catch_up=True, now=T0 + 20)
    assert was is not None
    assert was.note == "still"
    resumed = ledger.pause_states()["e"]
    assert (resumed.paused, resumed.resumed_at, resumed.catch_up, resumed.version) == (
        False,
        T0 + 20,
        True,
        3,
    )
    assert ledger.resume("e", catch_up=True, now=T0 + 30) is None  # not paused
    assert EntryState.objects.get().version == 3


def test_resume_from_now_leaves_a_baseline_so_a_later_beat_skips_the_missed_fires() -> None:
    ledger = DatabaseLedger()
    ledger.pause("e", now=T0)
    ledger.resume("e", catch_up=False, now=T0 + 600)
    assert ledger.last_fires() == {"e": T0 + 600}
    assert FireClaim.objects.get().job_id == ""


# --- commands ------------------------------------------------------------------------------


def test_pause_then_entries_upcoming_and_resume(control: Path) -> None:
    with freeze_time(NOW):
        out, _ = command("pause", "nightly", "--note", "restore in progress")
    assert out.startswith(
        "Paused entry 'nightly' (restore in progress): no beat enqueues its fires;"
    )
    with freeze_time(NOW):
        out, _ = command("entries")
    [nightly] = [b for b in out.split("\n\n") if b.startswith("nightly")]
    assert nightly.splitlines()[0] == "nightly (paused: restore in progress)"
    assert "  paused       since Mon 2026-11-23 12:00:07 UTC (now): restore in progress" in (
        nightly.splitlines()
    )
    with freeze_time(NOW):
        out, _ = command("entries", "--json")
    by_name = {e["name"]: e for e in json.loads(out)["entries"]}
    assert (by_name["nightly"]["paused"], by_name["nightly"]["pause_note"]) == (
        True,
        "restore in progress",
    )
    assert by_name["minutely"]["paused"] is False
    with freeze_time(NOW):
        out, _ = command("upcoming", "--entry", "nightly", "--count", "1", "--json")
    [run] = json.loads(out)["runs"]
    assert (run["paused"], run["note"]) == (True, "restore in progress")
    with freeze_time(NOW):
        out, _ = command("upcoming", "--entry", "nightly", "--count", "1")
    assert "periodic (paused: restore in progress)" in out

    out, _ = command("resume", "nightly", "--catch-up")
    assert out == "Resumed entry 'nightly': the fires it missed run by its misfire policy.\n"
    out, _ = command("resume", "nightly")
    assert out == "Entry 'nightly' was not paused; nothing to resume.\n"
    assert EntryState.objects.get().catch_up is True


def test_pause_errors_name_the_entry_and_the_time(control: Path) -> None:
    error = failing("pause", "nighty")
    assert str(error) == (
        "Unknown entry 'nighty': no schedules module declares it; did you mean 'nightly'?"
    )
    assert error.returncode == 2
    with freeze_time(NOW):
        error = failing("pause", "nightly", "--until", "2026-11-23T11:00")
    assert str(error) == "until must be in the future, not '2026-11-23T11:00:00+00:00'."
    error = failing("resume", "nightly", "--from-now", "--catch-up")
    assert str(error) == "Error: argument --catch-up: not allowed with argument --from-now"


def test_pause_until_shows_in_the_message(control: Path) -> None:
    with freeze_time(NOW):
        out, _ = command("pause", "nightly", "--until", "+2h")
    assert out.startswith("Paused entry 'nightly' until Mon 2026-11-23 14:00:07 UTC:")
    assert EntryState.objects.get().paused_until == T0 + 7200


def body_of(path: Path) -> dict[str, Any]:
    return json.loads(files.read(path).body)  # type: ignore[no-any-return]


def test_backfill_enqueues_each_unclaimed_fire_once_then_none(control: Path) -> None:
    spool = control
    with freeze_time(NOW):
        out, _ = command(
            "backfill",
            "nightly",
            "--from",
            "2026-11-01T00:00",
            "--to",
            "2026-11-10T12:00",
            "--dry-run",
            "--json",
        )
    assert json.loads(out) == {
        "entry": "nightly",
        "fires": 10,
        "enqueued": 10,
        "claimed": 0,
        "forced": 0,
        "dry_run": True,
        "first_due": "2026-11-23T12:00:07+00:00",
        "last_due": "2026-11-23T12:00:07.180000+00:00",
    }
    assert files.list_files(spool) == []
    with freeze_time(NOW):
        out, _ = command(
            "backfill", "nightly", "--from", "2026-11-01T00:00", "--to", "2026-11-10T12:00"
        )
    assert out == (
        "Enqueued 10 of the 10 fire(s) of entry 'nightly' from Sun 2026-11-01 00:00:00 UTC to "
        "Tue 2026-11-10 12:00:00 UTC, due from Mon 2026-11-23 12:00:07 UTC to "
        "Mon 2026-11-23 12:00:07 UTC.\n"
    )
    written = sorted(body_of(p)["run_after"] for p in files.list_files(spool))
    assert written == pytest.approx([T0 + 0.02 * n for n in range(10)])
    claims = FireClaim.objects.filter(entry="nightly").order_by("fire_time")
    assert [c.fire_time.day for c in claims] == list(range(1, 11))
    with freeze_time(NOW):
        out, _ = command(
            "backfill", "nightly", "--from", "2026-11-01T00:00", "--to", "2026-11-10T12:00"
        )
    assert out == (
        "Enqueued 0 of the 10 fire(s) of entry 'nightly' from Sun 2026-11-01 00:00:00 UTC to "
        "Tue 2026-11-10 12:00:00 UTC; 10 already claimed, left out.\n"
    )
    assert len(files.list_files(spool)) == 10
    with freeze_time(NOW):
        out, _ = command(
            "backfill",
            "nightly",
            "--from",
            "2026-11-09T00:00",
            "--to",
            "2026-11-10T12:00",
            "--force",
            "--json",
        )
    assert {k: v for k, v in json.loads(out).items() if k in ("enqueued", "forced")} == {
        "enqueued": 2,
        "forced": 2,
    }
    assert len(files.list_files(spool)) == 12  # distinct job ids


def test_backfill_errors(control: Path) -> None:
    with freeze_time(NOW):
        error = failing("backfill", "nightly", "--from", "2026-11-10", "--to", "2026-11-01")
    assert str(error) == (
        "--to must not be earlier than --from, not '2026-11-01T00:00:00+00:00' before "
        "'2026-11-10T00:00:00+00:00'."
    )
    with freeze_time(NOW):
        error = failing("backfill", "nightly", "--from", "1d", "--to", "+1d")
    assert str(error) == "--to must not be in the future, not '2026-11-24T12:00:07+00:00'."
    with freeze_time(NOW):
        error = failing("backfill", "nightly", "--from", "last week", "--to", "now")
    assert str(error) == (
        "Cannot understand --from 'last week': use a duration ago like 12h or 7d, an ISO "
        "date-time like 2026-03-01T00:00, or now."
    )


# --- options and the dead-man switch -------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"jitter": -1}, "jitter must be a number of seconds >= 0, not -1."),
        ({"jitter": "5"}, "jitter must be a number of seconds >= 0, not '5'."),
        ({"alert_after": 0}, "alert_after must be a number of seconds > 0 or None, not 0."),
        ({"alert_after": True}, "alert_after must be a number of seconds > 0 or None, not True."),
        (
            {"pause_after_failures": 0},
            "pause_after_failures must be a whole number >= 1 or None, not 0.",
        ),
        (
            {"pause_after_failures": -2},
            "pause_after_failures must be a whole number >= 1 or None, not -2.",
        ),
        (
            {"pause_after_failures": 1.5},
            "pause_after_failures must be a whole number >= 1 or None, not 1.5.",
        ),
        (
            {"pause_after_failures": True},
            "pause_after_failures must be a whole number >= 1 or None, not True.",
        ),
    ],
)
def test_bad_new_options_are_e004(options: dict[str, Any], message: str) -> None:
    problem = resolve_entry(
        "m", Entry("e", "tests.testapp.tasks.record", "every minute", **options)
    )
    assert (problem.id, problem.message) == ("spoolcron.E004", message)  # type: ignore[union-attr]


def test_health_reports_an_entry_without_a_recent_success(control: Path) -> None:
    from spoolcron import operations

    started = NOW - timedelta(hours=3)
    Run.objects.create(
        job_id="j",
        entry="backup",
        task="t",
        due=started,
        started=started,
        finished=started + timedelta(seconds=5),
        outcome=Run.Outcome.SUCCEEDED,
    )
    report = operations.health_report(now=T0)
    assert report.numbers["silent_entries"] == ["backup"]
    assert "Entry 'backup' has not succeeded for 3 h (alert_after 2 h)." in report.reasons
    with freeze_time(NOW):
        out, _ = command("entries", "--json")
    by_name = {e["name"]: e for e in json.loads(out)["entries"]}
    assert by_name["backup"]["overdue"] is True
    assert by_name["nightly"]["overdue"] is False
    # A recent success clears it; so does a pause.
    Run.objects.create(
        job_id="k",
        entry="backup",
        task="t",
        due=NOW,
        started=NOW - timedelta(minutes=5),
        finished=NOW - timedelta(minutes=4),
        outcome=Run.Outcome.SUCCEEDED,
    )
    assert operations.health_report(now=T0).numbers["silent_entries"] == []


def test_a_paused_or_never_seen_entry_is_not_silent(control: Path) -> None:
    from spoolcron import operations

    assert operations.health_report(now=T0).numbers["silent_entries"] == []  # never watched
    DatabaseLedger().baseline(["backup"], T0 - 3 * 3600)
    assert operations.health_report(now=T0).numbers["silent_entries"] == ["backup"]
    DatabaseLedger().pause("backup", now=T0 - 60)
    assert operations.health_report(now=T0).numbers["silent_entries"] == []


# --- the admin's entries page --------------------------------------------------------------

ENTRIES_URL = "/admin/spoolcron/periodicentry/"


def admin_act(client: Any, data: dict[str, str]) -> list[str]:
    response = client.post(ENTRIES_URL, {"action": "run", **data}, follow=True)
    assert response.status_code == 200, response.status_code
    return [str(m) for m in response.context["messages"]]


def test_admin_pauses_and_resumes_and_highlights_a_silent_entry(
    control: Path, django_user_model: Any
) -> None:
    import html

    from django.test import Client

    root = Client()
    root.force_login(django_user_model.objects.create_superuser("root", "root@example.com"))
    assert admin_act(root, {"pause": "nightly", "note": "disk full"}) == [
        "Paused entry 'nightly': no beat enqueues its fires until resumed."
    ]
    assert files.list_files(control) == []  # not a run
    page = html.unescape(root.get(ENTRIES_URL).content.decode())
    assert 'nightly <strong class="spoolcron-paused-badge">(paused)</strong>' in page
    assert ": disk full</div>" in page
    assert 'name="resume" value="nightly"' in page
    assert 'name="pause" value="minutely"' in page
    assert EntryState.objects.get().changed_by == "root (admin)"
    assert admin_act(root, {"catch_up": "nightly"}) == [
        "Resumed entry 'nightly': the fires it missed run by its misfire policy."
    ]
    assert admin_act(root, {"resume": "nightly"}) == [
        "Entry 'nightly' was not paused; nothing to resume."
    ]
    DatabaseLedger().baseline(["backup"], T0 - 3 * 3600)
    page = html.unescape(root.get(ENTRIES_URL).content.decode())
    assert "spoolcron-entry spoolcron-silent" in page
    assert "No success within alert_after (7200 s)." in page


def test_admin_pause_needs_its_permission(control: Path, django_user_model: Any) -> None:
    from django.contrib.auth.models import Permission
    from django.test import Client

    user = django_user_model.objects.create_user("runner", is_staff=True)
    codenames = ["view_periodicentry", "run_periodicentry"]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    page = client.get(ENTRIES_URL).content.decode()
    assert "Run now" in page
    assert 'name="pause"' not in page
    assert client.post(ENTRIES_URL, {"action": "run", "pause": "nightly"}).status_code == 403
    assert not EntryState.objects.exists()
