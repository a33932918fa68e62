"""Issue 18 (2) in the admin: the database entries' add, change and delete pages through
Django's test client, and the periodic entries page listing them with their origin."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from freezegun import freeze_time

import tests.schedule_modules.valid  # noqa: F401  (registers its @periodic entry)
from spoolcron.models import DatabaseEntry, FireClaim

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loaded_periodic_only")]

VALID = "tests.schedule_modules.valid"
RECORD = "tests.testapp.tasks.record"
ADD_URL = "/admin/spoolcron/databaseentry/add/"
LIST_URL = "/admin/spoolcron/databaseentry/"
ENTRIES_URL = "/admin/spoolcron/periodicentry/"
NOW = "2026-11-23T12:00:07Z"


@pytest.fixture
def dirs(spool_dirs: tuple[Path, Path], settings: Any) -> tuple[Path, Path]:
    settings.SPOOLCRON = {**settings.SPOOLCRON, "MODULES": [VALID]}
    return spool_dirs


@pytest.fixture
def root(django_user_model: Any) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com"))
    return client


def form(**values: Any) -> dict[str, Any]:
    data = {
        "name": "sync",
        "task": RECORD,
        "schedule": "every 10 minutes",
        "zone": "",
        "args": '["sync"]',
        "kwargs": "{}",
        "misfire": "coalesce",
        "misfire_limit": "10",
        "grace": "",
        "overlap": "skip",
        "enabled": "on",
        "jitter": "0",
        "alert_after": "",
        "pause_after_failures": "",
    }
    data.update(values)
    return data


def text(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return html.unescape(re.sub(r"<[^>]+>", "", response.content.decode()))


def errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, response.status_code  # the form again, not a redirect
    found = dict(response.context["adminform"].form.errors)
    return {field: [str(m) for m in messages] for field, messages in found.items()}


@freeze_time(NOW)
def test_adding_an_entry_shows_it_in_english_with_its_next_five_fires(
    dirs: tuple[Path, Path], root: Client
) -> None:
    response = root.post(ADD_URL, form(pause_after_failures="3"), follow=True)
    said = [str(m) for m in response.context["messages"]]
    assert (
        f"Entry 'sync' runs {RECORD} every 10 minutes (UTC); next fires: Mon 2026-11-23 12:10:00 "
        "UTC, Mon 2026-11-23 12:20:00 UTC, Mon 2026-11-23 12:30:00 UTC, Mon 2026-11-23 12:40:00 "
        "UTC, Mon 2026-11-23 12:50:00 UTC. Running beats pick it up within a few seconds."
    ) in said
    row = DatabaseEntry.objects.get()
    assert (row.task, row.args, row.kwargs, row.pause_after_failures) == (RECORD, ["sync"], {}, 3)
    assert row.changed_by == "root (admin)"
    assert FireClaim.objects.get(entry="sync").job_id == ""  # the baseline at now
    # The change page shows the same, read-only.
    page = text(root.get(f"{LIST_URL}{row.pk}/change/"))
    assert "every 10 minutes (UTC)" in page
    assert "Mon 2026-11-23 12:10:00 UTC, Mon 2026-11-23 12:20:00 UTC" in page
    # The task is a choice among registered tasks, never typed in.
    choices = dict(root.get(ADD_URL).context["adminform"].form.fields["task"].choices)
    assert RECORD in choices
    assert "os.system" not in choices


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"schedule": "every 10 minuts"},
            {
                "schedule": [
                    "Cannot parse schedule 'every 10 minuts': unknown unit 'minuts' at "
                    "position 9; did you mean 'minutes'?"
                ]
            },
        ),
        (
            {"zone": "Mars/Olympus"},
            {
                "zone": [
                    "Cannot parse time zone 'Mars/Olympus': it is not in the time zone "
                    "database; use an IANA name such as 'Europe/Rome' or 'UTC'."
                ]
            },
        ),
        (
            {"name": "every-5s"},
            {
                "name": [
                    "The name 'every-5s' is taken by the entry 'every-5s' declared in "
                    "tests.schedule_modules.valid; a database entry needs a name of its own."
                ]
            },
        ),
        (
            {"jitter": "-1"},
            {"jitter": ["jitter must be a number of seconds >= 0, not -1.0."]},
        ),
        (
            {"args": '{"a": 1}'},
            {"args": ["args must be a list, not {'a': 1}."]},
        ),
        (
            {"task": "os.system"},
            {"task": ["Select a valid choice. os.system is not one of the available choices."]},
        ),
    ],
)
def test_a_bad_value_is_refused_on_its_field_with_the_checks_message(
    dirs: tuple[Path, Path], root: Client, values: dict[str, str], expected: dict[str, list[str]]
) -> None:
    assert errors(root.post(ADD_URL, form(**values))) == expected
    assert not DatabaseEntry.objects.exists()


def test_changing_and_deleting_go_through_the_operations(
    dirs: tuple[Path, Path], root: Client
) -> None:
    root.post(ADD_URL, form())
    row = DatabaseEntry.objects.get()
    response = root.post(f"{LIST_URL}{row.pk}/change/", form(schedule="every 5 minutes"))
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.schedule, row.version) == ("every 5 minutes", 2)
    response = root.post(f"{LIST_URL}{row.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not DatabaseEntry.objects.exists()


@freeze_time(NOW)
def test_the_entries_page_lists_database_entries_with_their_origin(
    dirs: tuple[Path, Path], root: Client, django_user_model: Any
) -> None:
    root.post(ADD_URL, form(name="stored", schedule="every 7 minutes"))
    response = root.get(ENTRIES_URL)
    page = response.content.decode()
    [row] = [
        r for r in re.findall(r"<tr class=\"spoolcron-entry.*?</tr>", page, re.S) if ">stored" in r
    ]
    assert "spoolcron-origin-database" in row
    assert f'href="{LIST_URL}?q=stored"' in row
    assert "every 7 minutes" in row
    # A user who may only look sees the origin, without the link to edit.
    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_periodicentry"))
    client = Client()
    client.force_login(viewer)
    page = client.get(ENTRIES_URL).content.decode()
    assert "spoolcron-origin-database" in page
    assert "?q=stored" not in page
    assert client.get(ADD_URL).status_code == 403
