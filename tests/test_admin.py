"""The admin pages: entries, pending and failed jobs, run history, through Django's test client.

Each page is read as a superuser and as a staff user who may only look; every action is
checked for its effect on the spool and failed directories and for the message it leaves.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import DatabaseError
from django.http import HttpResponse
from django.test import Client
from freezegun import freeze_time

import tests.schedule_modules.valid  # noqa: F401  (registers its @periodic entry before any test)
from spoolcron import operations
from spoolcron.admin.pages import preview
from spoolcron.core.payload import Payload
from spoolcron.exceptions import JobNotFound
from spoolcron.models import FireClaim, JobResult, Run
from spoolcron.spool import files, locks
from spoolcron.spool.payloads import write_payload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loaded_periodic_only")]

VALID = "tests.schedule_modules.valid"
BROKEN = "tests.schedule_modules.broken"
NOW = datetime(2026, 11, 23, 12, 0, 7, tzinfo=UTC)
RECORD = "tests.testapp.tasks.record"
ENTRIES_URL = "/admin/spoolcron/periodicentry/"
PENDING_URL = "/admin/spoolcron/pendingjob/"
FAILED_URL = "/admin/spoolcron/failedjob/"
RUNS_URL = "/admin/spoolcron/run/"
RESULTS_URL = "/admin/spoolcron/jobresult/"
TRACEBACK = (
    "Task 'tests.testapp.tasks.record' failed on attempt 3 of 3.\n"
    "Traceback (most recent call last):\n"
    '  File "tasks.py", line 1, in record\n'
    "ValueError: the printer is on fire"
)


@pytest.fixture
def dirs(spool_dirs: tuple[Path, Path], settings: Any) -> tuple[Path, Path]:
    settings.SPOOLCRON = {**settings.SPOOLCRON, "MODULES": [VALID]}
    return spool_dirs


@pytest.fixture
def root(django_user_model: Any) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com"))
    return client


@pytest.fixture
def viewer(django_user_model: Any) -> Client:
    """A staff user who may see every spoolcron page but not act on anything."""
    user = django_user_model.objects.create_user("viewer", is_staff=True)
    codenames = ["view_periodicentry", "view_pendingjob", "view_failedjob", "view_run"]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def text(response: HttpResponse) -> str:
    assert response.status_code == 200, response.status_code
    return html.unescape(response.content.decode())


def plain(markup: str) -> str:
    return re.sub(r"<[^>]+>", "", markup)


def act(client: Client, url: str, data: dict[str, Any]) -> list[str]:
    """POST an action; it redirects back to the page, which shows what it said."""
    response = client.post(url, data, follow=True)
    assert response.redirect_chain == [(url, 302)]
    page = text(response)
    said = [str(m) for m in response.context["messages"]]
    for message in said:
        assert message in page
    return said


def payload(job_id: str, when: datetime, **fields: Any) -> Payload:
    return Payload(task=RECORD, job_id=job_id, run_after=when.timestamp(), **fields)


def failed_file(failed: Path, job_id: str, reason: str = TRACEBACK, task: str = RECORD) -> Path:
    # What the spooler leaves after a job's last attempt: the file and its reason beside it.
    staging = failed.parent / "staging"
    staging.mkdir(exist_ok=True)
    path = write_payload(
        staging, Payload(task=task, job_id=job_id, run_after=0, args=["x"], attempt=3)
    )
    return files.quarantine(path, failed, reason)


# --- the index -------------------------------------------------------------------------------


def test_the_index_lists_the_pages(dirs: tuple[Path, Path], root: Client) -> None:
    page = text(root.get("/admin/"))
    for name, url in (
        ("Periodic entries", ENTRIES_URL),
        ("Pending jobs", PENDING_URL),
        ("Failed jobs", FAILED_URL),
        ("Runs", RUNS_URL),
        ("Job results", RESULTS_URL),
    ):
        assert f'<a href="{url}">{name}</a>' in page
    assert "/admin/spoolcron/periodicentry/add/" not in page


# --- periodic entries ------------------------------------------------------------------------


def test_entries_page(dirs: tuple[Path, Path], root: Client) -> None:
    fire = NOW - timedelta(seconds=2)
    FireClaim.objects.create(entry="every-5s", fire_time=fire, job_id="j1", claimed_at=fire)
    Run.objects.create(
        job_id="j1", entry="every-5s", task=RECORD, due=fire, started=fire, outcome="succeeded"
    )
    with freeze_time(NOW):
        page = text(root.get(ENTRIES_URL))
    rows = page.split('<tr class="spoolcron-entry">')[1:]
    assert len(rows) == 6  # the five of VALID and the test app's own
    [every_5s] = [r for r in rows if r.startswith('\n    <th scope="row">every-5s')]
    for shown in (
        RECORD,
        "<code>every 5 seconds</code>",
        "every 5 seconds (UTC)",
        "misfire=coalesce",
        "overlap=skip",
        f'<a href="{RUNS_URL}?entry=every-5s">succeeded</a>',
        '<button type="submit" class="button" name="entry" value="every-5s"',
    ):
        assert shown in every_5s, shown
    assert (
        "Mon 2026-11-23 12:00:10 UTC (in 3 s)"
        "Mon 2026-11-23 12:00:15 UTC (in 8 s)"
        "Mon 2026-11-23 12:00:20 UTC (in 13 s)"
        "\n    Mon 2026-11-23 12:00:05 UTC (2 s ago)"  # the last fire
        "\n    succeededstarted Mon 2026-11-23 12:00:05 UTC (2 s ago)"  # the last run
    ) in plain(every_5s)
    assert "12:00:25" not in every_5s  # three fires, not four
    [report] = [r for r in rows if "sunday-report" in r.split("</th>")[0]]
    assert "<code>Sunday at 17:03</code>" in report
    assert "every Sunday at 17:03 (Europe/Rome)" in report
    assert "<td>Europe/Rome</td>" in report
    assert "misfire=skip" in report
    assert (
        "Sun 2026-11-29 16:03:00 UTC (in 6 d 4 h)"
        "Sun 2026-12-06 16:03:00 UTC (in 13 d 4 h)"
        "Sun 2026-12-13 16:03:00 UTC (in 20 d 4 h)"
    ) in plain(report)
    assert "Run now" in report
    assert "6 entries declared" in page
    assert "problem" not in page


def test_entries_page_in_the_projects_time_zone(
    dirs: tuple[Path, Path], root: Client, settings: Any
) -> None:
    settings.TIME_ZONE = "Europe/Rome"
    with freeze_time(NOW):
        page = text(root.get(ENTRIES_URL, {"q": "sunday"}))
    assert "Sun 2026-11-29 17:03:00 CET (in 6 d 4 h)" in plain(page)
    assert page.count('<tr class="spoolcron-entry">') == 1
    assert "1 found" in page


def test_entries_page_without_the_ledger(
    dirs: tuple[Path, Path], root: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable() -> None:
        raise DatabaseError("no such table: spoolcron_fireclaim")

    monkeypatch.setattr(operations.entries, "_last_fires", unreadable)
    page = text(root.get(ENTRIES_URL))
    assert (
        '<p class="errornote">The ledger could not be read (has `manage.py migrate` run?): '
        "no such table: spoolcron_fireclaim</p>"
    ) in page
    assert "every 5 seconds (UTC)" in page  # the entries are listed all the same


def test_entries_page_shows_the_problems(
    dirs: tuple[Path, Path], root: Client, settings: Any
) -> None:
    settings.SPOOLCRON = {**settings.SPOOLCRON, "MODULES": [VALID, BROKEN]}
    page = text(root.get(ENTRIES_URL))
    assert "6 problems with the entries" in page
    assert (
        "<code>spoolcron.E002</code> entry 'typo' in tests.schedule_modules.broken: Cannot parse "
        "schedule 'every 5 secnds': unknown unit 'secnds' at position 8; did you mean 'seconds'?"
    ) in page
    assert '<th scope="row">every-5s' in page  # the good entries are still listed


@pytest.mark.django_db(transaction=True)
def test_run_now_writes_a_spool_file(dirs: tuple[Path, Path], root: Client) -> None:
    spool, _ = dirs
    said = act(root, ENTRIES_URL, {"action": "run", "entry": "sunday-report"})
    [path] = files.list_files(spool)
    job = Payload.from_body(files.read(path).body, name=path.name)
    assert (job.task, job.kwargs, job.meta) == (
        RECORD,
        {"label": "report"},
        {"entry_manual_run": "sunday-report"},
    )
    assert said == [
        f"Enqueued job {job.job_id!r} running entry 'sunday-report' (task {RECORD}) now."
    ]
    # The pending jobs page shows it as a run by hand.
    page = text(root.get(PENDING_URL))
    assert f"<code>{job.job_id}</code>" in page
    assert "run of sunday-report by hand" in page
    assert 'label="report"' in page


def test_run_now_errors(dirs: tuple[Path, Path], root: Client, settings: Any) -> None:
    spool, _ = dirs
    assert act(root, ENTRIES_URL, {"action": "run", "entry": "nope"}) == [
        "Unknown entry 'nope': no schedules module declares it."
    ]
    settings.SPOOLCRON = {**settings.SPOOLCRON, "MODULES": [VALID, BROKEN]}
    [message] = act(root, ENTRIES_URL, {"action": "run", "entry": "ghost"})
    assert message.startswith(
        "Entry 'ghost' cannot be used: Unknown task 'tests.testapp.tasks.nope'"
    )
    assert act(root, ENTRIES_URL, {"action": "explode", "entry": "every-5s"}) == [
        "Unknown action 'explode': use the page's buttons."
    ]
    assert files.list_files(spool) == []


# --- pending jobs ----------------------------------------------------------------------------


@pytest.fixture
def running(dirs: tuple[Path, Path]) -> Iterator[Path]:
    """A job a spooler is running (this process holds it as the spooler would)."""
    spool, _ = dirs
    path = write_payload(spool, payload("busy", NOW - timedelta(seconds=30), attempt=2))
    file = files.read(path)
    with locks.hold(path, file.args, file.body):
        yield path


def test_pending_jobs_page(dirs: tuple[Path, Path], running: Path, root: Client) -> None:
    spool, _ = dirs
    write_payload(spool, payload("later", NOW + timedelta(hours=1), args=["x"], kwargs={"n": 2}))
    write_payload(spool, payload("fire", NOW + timedelta(seconds=3), entry="every-5s"))
    with freeze_time(NOW):
        page = text(root.get(PENDING_URL))
    rows = page.split('<tr class="spoolcron-job">')[1:]
    assert [r.split("<code>")[1].split("</code>")[0] for r in rows] == ["busy", "fire", "later"]
    busy, fire, later = rows
    assert "Mon 2026-11-23 11:59:37 UTC (30 s ago)" in plain(busy)
    assert "<td>running</td>" in busy
    assert 'name="selected"' not in busy  # a running job cannot be cancelled
    assert "<td>every-5s</td>" in fire
    assert "<td>pending</td>" in later
    assert 'name="selected" value="later"' in later
    assert '<code title=""x", n=2">"x", n=2</code>' in later
    assert "Mon 2026-11-23 13:00:07 UTC (in 1 h)" in plain(later)
    assert f"<code>{spool}</code>" in page
    assert "3 jobs" in page


def test_cancel(dirs: tuple[Path, Path], running: Path, root: Client) -> None:
    spool, _ = dirs
    later = write_payload(spool, payload("later", NOW + timedelta(hours=1)))
    other = write_payload(spool, payload("other", NOW + timedelta(hours=2)))
    # Back to the same listing, its search kept.
    assert act(root, PENDING_URL + "?q=er", {"action": "cancel", "selected": ["later"]}) == [
        f"Cancelled job 'later' (task {RECORD})."
    ]
    assert not later.exists()
    assert other.exists()

    selected = ["busy", "later", "other"]
    assert act(root, PENDING_URL, {"action": "cancel", "selected": selected}) == [
        "Cannot cancel job 'busy': a spooler is running it right now.",
        f"No job 'later' is pending in {str(spool)!r}.",
        f"Cancelled job 'other' (task {RECORD}).",
    ]
    assert running.exists()
    assert not other.exists()

    assert act(root, PENDING_URL, {"action": "cancel"}) == [
        "No job was selected: tick at least one first."
    ]


def test_cancel_many_says_how_many(dirs: tuple[Path, Path], root: Client) -> None:
    spool, _ = dirs
    for n in range(3):
        write_payload(spool, payload(f"job-{n}", NOW + timedelta(hours=1)))
    selected = ["job-0", "job-1", "job-2", "job-1"]
    assert act(root, PENDING_URL, {"action": "cancel", "selected": selected}) == [
        "3 jobs cancelled."
    ]
    assert files.list_files(spool) == []


def test_pending_jobs_are_paginated(dirs: tuple[Path, Path], root: Client) -> None:
    spool, _ = dirs
    for n in range(101):
        write_payload(spool, payload(f"job-{n:03}", NOW + timedelta(seconds=n)))
    first = text(root.get(PENDING_URL))
    assert first.count('<tr class="spoolcron-job">') == 100
    assert "page 1 of 2" in first
    assert '<a href="?p=2">next' in first
    assert "101 jobs" in first
    second = text(root.get(PENDING_URL, {"p": "2"}))
    assert second.count('<tr class="spoolcron-job">') == 1
    assert "<code>job-100</code>" in second


def test_no_jobs_and_no_directories(
    dirs: tuple[Path, Path], root: Client, settings: Any, tmp_path: Path
) -> None:
    page = text(root.get(PENDING_URL))
    assert "No job is waiting in the spool directory or the pending store." in page
    assert "Cancel the selected jobs" not in page
    assert "No job is in the failed directory." in text(root.get(FAILED_URL))
    # Before uWSGI or the first job created them.
    missing = tmp_path / "not-yet"
    settings.SPOOLCRON = {"SPOOL_DIR": str(missing / "spool"), "FAILED_DIR": str(missing / "f")}
    assert "No job is waiting in the spool directory or the pending store." in text(
        root.get(PENDING_URL)
    )
    assert "No job is in the failed directory." in text(root.get(FAILED_URL))
    assert not missing.exists()


# --- failed jobs -----------------------------------------------------------------------------


def test_failed_jobs_page(dirs: tuple[Path, Path], root: Client) -> None:
    _, failed = dirs
    path = failed_file(failed, "broken-job")
    corrupt = failed / "uwsgi_spoolfile_on_spoolcron_garbage_1"
    corrupt.write_bytes(b"junk")
    page = text(root.get(FAILED_URL))
    rows = page.split('<tr class="spoolcron-failed">')[1:]
    assert len(rows) == 2
    [job] = [r for r in rows if "<code>broken-job</code>" in r]
    assert f'name="selected" value="{path.name}"' in job
    assert (
        "<summary>Task 'tests.testapp.tasks.record' failed on attempt 3 of 3. "
        "<strong>ValueError: the printer is on fire</strong></summary>"
    ) in job
    assert f"<pre>{TRACEBACK}</pre>" in job
    assert "<td>3</td>" in job
    [garbage] = [r for r in rows if r is not job]
    assert f"<code>{corrupt.name}</code>" in garbage
    assert "unreadable file" in garbage
    assert "(no reason was recorded)" in garbage
    assert "Retry the selected jobs" in page
    assert "Delete the selected files" in page
    assert "2 files" in page


@pytest.mark.django_db(transaction=True)
def test_retry_puts_the_job_back(dirs: tuple[Path, Path], root: Client) -> None:
    spool, failed = dirs
    path = failed_file(failed, "broken-job")
    assert act(root, FAILED_URL, {"action": "retry", "selected": [path.name]}) == [
        f"Job 'broken-job' (task {RECORD}) is back in the spool directory, due now."
    ]
    assert list(failed.iterdir()) == []
    [again] = files.list_files(spool)
    assert again.name.startswith("uwsgi_spoolfile_on_spoolcron_broken-job_1-retry-")
    assert Payload.from_body(files.read(again).body, name=again.name).attempt == 1


def test_retry_errors(dirs: tuple[Path, Path], root: Client) -> None:
    spool, failed = dirs
    corrupt = failed_file(failed, "x")
    corrupt.write_bytes(b"junk")
    orphan = failed_file(failed, "orphan", task="gone.task")
    selected = [corrupt.name, orphan.name, "nope"]
    [corrupt_said, orphan_said, nope_said] = act(
        root, FAILED_URL, {"action": "retry", "selected": selected}
    )
    assert corrupt_said == (
        f"Failed file {corrupt.name!r} cannot be retried: it is corrupt, so it holds no job to run."
    )
    assert orphan_said.startswith("Unknown task 'gone.task': no function is registered")
    assert nope_said == f"No failed file 'nope' in {str(failed)!r}."
    assert files.list_files(spool) == []
    assert corrupt.exists()
    assert orphan.exists()


def test_retry_two_files_of_one_job_once(dirs: tuple[Path, Path], root: Client) -> None:
    spool, failed = dirs
    first = failed_file(failed, "twice")
    second = failed_file(failed, "twice")  # same name: quarantine adds a suffix
    assert first != second
    selected = [first.name, second.name]
    assert act(root, FAILED_URL, {"action": "retry", "selected": selected}) == [
        f"Job 'twice' (task {RECORD}) is back in the spool directory, due now."
    ]
    assert len(files.list_files(spool)) == 1
    assert list(failed.iterdir()) == []


def test_delete_asks_first(dirs: tuple[Path, Path], root: Client) -> None:
    _, failed = dirs
    one = failed_file(failed, "one")
    two = failed_file(failed, "two")
    page = text(root.post(FAILED_URL, {"action": "delete", "selected": [one.name, two.name]}))
    assert "Delete 2 files from the failed directory, with their reasons?" in page
    assert f'<input type="hidden" name="selected" value="{one.name}">' in page
    assert f'<input type="hidden" name="selected" value="{two.name}">' in page
    assert '<input type="hidden" name="confirmed" value="yes">' in page
    assert one.exists()
    assert two.exists()
    # Nothing ticked: nothing to confirm.
    assert act(root, FAILED_URL, {"action": "delete"}) == [
        "No failed job was selected: tick at least one first."
    ]


def test_delete_failed_files(dirs: tuple[Path, Path], root: Client) -> None:
    _, failed = dirs
    one = failed_file(failed, "one")
    two = failed_file(failed, "two")

    def delete(*names: str) -> list[str]:
        data = {"action": "delete", "selected": list(names), "confirmed": "yes"}
        return act(root, FAILED_URL, data)

    assert delete(one.name) == [f"Deleted the failed file {one.name!r} and its reason."]
    assert sorted(p.name for p in failed.iterdir()) == [two.name, two.name + ".reason.txt"]
    assert delete(one.name, two.name) == [
        f"No failed file {one.name!r} in {str(failed)!r}.",
        f"Deleted the failed file {two.name!r} and its reason.",
    ]
    assert list(failed.iterdir()) == []
    # A name is looked up in the listing, never used as a path.
    assert delete("../spool/x") == [f"No failed file '../spool/x' in {str(failed)!r}."]


# --- permissions and CSRF --------------------------------------------------------------------


def test_a_viewer_sees_the_pages_without_actions(dirs: tuple[Path, Path], viewer: Client) -> None:
    spool, failed = dirs
    write_payload(spool, payload("later", NOW + timedelta(hours=1)))
    failed_file(failed, "broken-job")
    entries = text(viewer.get(ENTRIES_URL))
    assert "every 5 seconds (UTC)" in entries
    assert "Run now" not in entries
    pending = text(viewer.get(PENDING_URL))
    assert "<code>later</code>" in pending
    assert 'name="selected"' not in pending
    assert "Cancel the selected jobs" not in pending
    failed_page = text(viewer.get(FAILED_URL))
    assert "<code>broken-job</code>" in failed_page
    assert 'name="selected"' not in failed_page
    assert "Retry the selected jobs" not in failed_page
    assert "Delete the selected files" not in failed_page


def test_a_viewer_cannot_act(dirs: tuple[Path, Path], viewer: Client) -> None:
    spool, failed = dirs
    later = write_payload(spool, payload("later", NOW + timedelta(hours=1)))
    broken = failed_file(failed, "broken-job")
    posts = [
        (ENTRIES_URL, {"action": "run", "entry": "every-5s"}),
        (PENDING_URL, {"action": "cancel", "selected": ["later"]}),
        (FAILED_URL, {"action": "retry", "selected": [broken.name]}),
        (FAILED_URL, {"action": "delete", "selected": [broken.name], "confirmed": "yes"}),
    ]
    for url, data in posts:
        assert viewer.post(url, data).status_code == 403, (url, data)
    assert files.list_files(spool) == [later]
    assert broken.exists()


def test_a_staff_user_without_permissions_sees_nothing(
    dirs: tuple[Path, Path], django_user_model: Any
) -> None:
    client = Client()
    client.force_login(django_user_model.objects.create_user("nobody", is_staff=True))
    for url in (ENTRIES_URL, PENDING_URL, FAILED_URL, RUNS_URL):
        assert client.get(url).status_code == 403, url
    assert "Periodic entries" not in client.get("/admin/").content.decode()


def test_only_the_matching_permission_allows_an_action(
    dirs: tuple[Path, Path], django_user_model: Any
) -> None:
    spool, failed = dirs
    broken = failed_file(failed, "broken-job")
    user = django_user_model.objects.create_user("retrier", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_failedjob", "retry_failedjob"])
    )
    client = Client()
    client.force_login(user)
    page = text(client.get(FAILED_URL))
    assert "Retry the selected jobs" in page
    assert "Delete the selected files" not in page
    data = {"action": "delete", "selected": [broken.name], "confirmed": "yes"}
    assert client.post(FAILED_URL, data).status_code == 403
    assert broken.exists()
    response = client.post(FAILED_URL, {"action": "retry", "selected": [broken.name]})
    assert response.status_code == 302
    assert not broken.exists()
    assert len(files.list_files(spool)) == 1


def test_anonymous_users_go_to_the_login_page(dirs: tuple[Path, Path]) -> None:
    response = Client().post(ENTRIES_URL, {"action": "run", "entry": "every-5s"})
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")
    assert files.list_files(dirs[0]) == []


def test_actions_need_the_csrf_token(dirs: tuple[Path, Path], django_user_model: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com"))
    response = client.post(ENTRIES_URL, {"action": "run", "entry": "every-5s"})
    assert response.status_code == 403
    assert files.list_files(dirs[0]) == []
    page = client.get(ENTRIES_URL).content.decode()
    assert 'name="csrfmiddlewaretoken"' in page


# --- run history -----------------------------------------------------------------------------


@pytest.fixture
def history() -> list[Run]:
    def run(job_id: str, entry: str, outcome: str, started: datetime, **fields: Any) -> Run:
        return Run.objects.create(
            job_id=job_id,
            entry=entry,
            task=RECORD,
            due=started - timedelta(seconds=0.25),
            started=started,
            finished=started + timedelta(seconds=1.5),
            outcome=outcome,
            **fields,
        )

    return [
        run("aaa111", "every-5s", "succeeded", NOW - timedelta(days=3)),
        run("bbb222", "every-5s", "failed", NOW, error="Traceback...\nValueError: <boom>"),
        run("ccc333", "", "succeeded", NOW, host="web-2"),
    ]


def job_ids(page: str) -> list[str]:
    return sorted(j for j in ("aaa111", "bbb222", "ccc333") if j in page)


def test_run_history_filters_and_search(
    dirs: tuple[Path, Path], root: Client, history: list[Run]
) -> None:
    with freeze_time(NOW):
        assert job_ids(text(root.get(RUNS_URL))) == ["aaa111", "bbb222", "ccc333"]
        assert job_ids(text(root.get(RUNS_URL, {"outcome": "failed"}))) == ["bbb222"]
        assert job_ids(text(root.get(RUNS_URL, {"entry": "every-5s"}))) == ["aaa111", "bbb222"]
        assert job_ids(text(root.get(RUNS_URL, {"entry": "(one-off)"}))) == ["ccc333"]
        # The date filter's own "Today" link.
        today = {
            "started__gte": "2026-11-23 00:00:00+00:00",
            "started__lt": "2026-11-24 00:00:00+00:00",
        }
        assert job_ids(text(root.get(RUNS_URL, today))) == ["bbb222", "ccc333"]
        assert job_ids(text(root.get(RUNS_URL, {"q": "aaa1"}))) == ["aaa111"]
        page = text(root.get(RUNS_URL))
    assert "0.250 s" in page  # late by
    assert "1.500 s" in page  # duration
    assert "one-off jobs" in page  # the entry filter's choices
    assert "Add run" not in page


def test_run_and_result_lists_show_times_to_the_second(
    dirs: tuple[Path, Path], root: Client, settings: Any, history: list[Run]
) -> None:
    # Issue 15 (6): the lists stopped at the minute, so 5-second runs looked identical.
    settings.TIME_ZONE = "Europe/Rome"
    Run.objects.create(
        job_id="ddd444",
        entry="every-5s",
        task=RECORD,
        due=NOW + timedelta(seconds=5),
        started=NOW + timedelta(seconds=5),
        outcome="succeeded",
    )
    page = text(root.get(RUNS_URL))
    assert "2026-11-23 13:00:07 CET" in page
    assert "2026-11-23 13:00:12 CET" in page
    JobResult.objects.create(id="r1", task=RECORD, status="SUCCESSFUL", started_at=NOW)
    assert "2026-11-23 13:00:07 CET" in text(root.get(RESULTS_URL))


def test_run_history_detail_is_read_only(
    dirs: tuple[Path, Path], root: Client, viewer: Client, history: list[Run]
) -> None:
    failed = history[1]
    url = f"{RUNS_URL}{failed.pk}/change/"
    for client in (root, viewer):
        page = text(client.get(url))
        assert "<pre>Traceback...\nValueError: <boom></pre>" in page
        assert "bbb222" in page
        assert 'name="_save"' not in page
        assert client.post(url, {"job_id": "changed"}).status_code == 403
        assert client.get(f"{RUNS_URL}add/").status_code == 403
        assert client.post(f"{RUNS_URL}{failed.pk}/delete/", {"post": "yes"}).status_code == 403
    failed.refresh_from_db()
    assert failed.job_id == "bbb222"


# --- job results -----------------------------------------------------------------------------


@pytest.fixture
def results() -> list[JobResult]:
    common = {"enqueued_at": NOW, "started_at": NOW, "finished_at": NOW, "attempts": 1}
    return [
        JobResult.objects.create(
            id="ok-job",
            task=RECORD,
            status="SUCCESSFUL",
            args=["hello"],
            return_value={"label": "hello"},
            **common,
        ),
        JobResult.objects.create(
            id="bad-job",
            task="tests.testapp.tasks.always_fails",
            status="FAILED",
            errors=[
                {
                    "exception_class_path": "builtins.ValueError",
                    "traceback": "Trace 1\nValueError: <a>",
                },
                {
                    "exception_class_path": "builtins.KeyError",
                    "traceback": "Trace 2\nKeyError: 'b'",
                },
            ],
            **{**common, "attempts": 2},
        ),
    ]


def ids(page: str) -> list[str]:
    return sorted(j for j in ("ok-job", "bad-job") if f">{j}<" in page)


def test_job_results_list_and_filters(
    dirs: tuple[Path, Path], root: Client, results: list[JobResult]
) -> None:
    assert ids(text(root.get(RESULTS_URL))) == ["bad-job", "ok-job"]
    assert ids(text(root.get(RESULTS_URL, {"status": "FAILED"}))) == ["bad-job"]
    assert ids(text(root.get(RESULTS_URL, {"task": RECORD}))) == ["ok-job"]
    assert ids(text(root.get(RESULTS_URL, {"q": "ok-"}))) == ["ok-job"]
    assert "Add job result" not in text(root.get(RESULTS_URL))


def test_job_result_detail_shows_errors_and_return_value(
    dirs: tuple[Path, Path], root: Client, results: list[JobResult]
) -> None:
    bad = text(root.get(f"{RESULTS_URL}bad-job/change/"))
    assert "<p><strong>builtins.ValueError</strong></p><pre>Trace 1\nValueError: <a></pre>" in bad
    assert "<p><strong>builtins.KeyError</strong></p><pre>Trace 2\nKeyError: 'b'</pre>" in bad
    assert f'<a href="{RUNS_URL}?q=bad-job">the runs of this job</a>' in bad
    ok = text(root.get(f"{RESULTS_URL}ok-job/change/"))
    assert '<pre>{\n  "label": "hello"\n}</pre>' in ok
    assert '<pre>{\n  "args": [\n    "hello"\n  ],' in ok
    assert 'name="_save"' not in ok
    assert root.post(f"{RESULTS_URL}ok-job/change/", {"status": "FAILED"}).status_code == 403
    assert root.post(f"{RESULTS_URL}ok-job/delete/", {"post": "yes"}).status_code == 403
    assert JobResult.objects.get(id="ok-job").status == "SUCCESSFUL"


def test_the_readme_dashboard_example(dirs: tuple[Path, Path]) -> None:
    from tests.test_readme import block_starting

    namespace: dict[str, Any] = {}
    exec(block_starting("# a read-only spoolcron dashboard"), namespace)
    client = Client()
    assert client.login(username="ops", password="change me")
    for url in (ENTRIES_URL, PENDING_URL, FAILED_URL, RUNS_URL, RESULTS_URL):
        assert client.get(url).status_code == 200, url
    assert "Run now" not in text(client.get(ENTRIES_URL))
    assert client.post(ENTRIES_URL, {"action": "run", "entry": "every-5s"}).status_code == 403
    assert files.list_files(dirs[0]) == []


# --- the operations behind the pages ---------------------------------------------------------


def test_list_entries_next_fires(dirs: tuple[Path, Path]) -> None:
    report = operations.list_entries(now=NOW, fires=2)
    by_name = {e.name: e for e in report.entries}
    assert by_name["object"].next_fires == (
        datetime(2026, 11, 23, 12, 1, 30, tzinfo=UTC),
        datetime(2026, 11, 23, 12, 3, tzinfo=UTC),
    )
    assert by_name["object"].next_fire == by_name["object"].next_fires[0]
    assert len(operations.list_entries(now=NOW).entries[0].next_fires) == 1
    with pytest.raises(ValueError, match=r"^fires must be a whole number >= 1, not 0\.$"):
        operations.list_entries(fires=0)


def test_failed_file_operations(dirs: tuple[Path, Path]) -> None:
    _, failed = dirs
    path = failed_file(failed, "gone")
    [job] = operations.failed_jobs()
    assert operations.failed_reason(job) == TRACEBACK
    path.with_name(path.name + ".reason.txt").unlink()
    assert operations.failed_reason(job) == "(no reason was recorded)"
    assert operations.delete_failed(path.name) == path
    with pytest.raises(JobNotFound) as error:
        operations.delete_failed(path.name)
    assert str(error.value) == f"No failed file {path.name!r} in {str(failed)!r}."
    with pytest.raises(JobNotFound):
        operations.retry_failed(path.name)


def test_preview() -> None:
    assert preview(["x", 1], {"to": ["ops"], "when": None}) == '"x", 1, to=["ops"], when=null'
    assert preview([], {}) == ""
    long = preview(["y" * 200], {})
    assert (len(long), long[-1]) == (80, "…")
