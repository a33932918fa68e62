"""Issue 18 (2) under real uWSGI: periodic entries stored in the database while it runs.

An entry added with ``spoolcron entry-add`` fires within a few seconds, each fire once; an
edited schedule gives new fires only (no fire of the new schedule from before the edit, even
with ``misfire=all``); a deleted entry stops; an entry with ``pause_after_failures=3`` is
paused after its third failure in a row. With two hosts sharing PostgreSQL, an entry added
through host A's admin (over HTTP, logged in, the add form) is picked up by both beats and
each fire runs once across them.
"""

from __future__ import annotations

import html
import http.cookiejar
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from spoolcron.spool import files
from tests.conftest import Runs

from .conftest import RunUwsgi
from .harness import UwsgiProcess
from .project import REPO, Database
from .test_beat_uwsgi import (
    assert_ran_once,
    beat_env,
    claims,
    fire_times,
    run_rows,
    start_beat,
    wait_for,
)

pytestmark = pytest.mark.uwsgi

MODULE = "db_entries"
RECORD = "tests.testapp.tasks.record"
# The beat reads the change counter about once a second and writes a fire half a second
# ahead: a change shows in the fires within 1.5 s; the slack is for a loaded machine.
PICK_UP = 3.0


def spoolcron(db: Database, spool: Path, runs: Runs, *args: str) -> str:
    """``manage.py spoolcron ARGS`` as an operator on a host would run it."""
    done = subprocess.run(
        [sys.executable, "-m", "django", "spoolcron", *args],
        cwd=REPO,
        env={**os.environ, **beat_env(spool, runs, db, MODULE)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_entries_added_edited_and_deleted_while_uwsgi_runs(
    run_uwsgi: RunUwsgi, spool_dir: Path, runs: Runs, project_db: Database
) -> None:
    db = project_db
    uwsgi = start_beat(run_uwsgi, spool_dir, runs, db, MODULE, "--processes=1")

    # --- added: fires within a few seconds, each fire once -------------------------------
    out = spoolcron(
        db, spool_dir, runs, "entry-add", "added", "--task", RECORD, "--schedule",
        "every 2 seconds", "--args", '["added"]',
    )  # fmt: skip
    added_at = time.time()
    assert out.startswith(f"Added database entry 'added': {RECORD} every 2 seconds (UTC).")
    wait_for(uwsgi, lambda: len(fire_times(db, "added")) >= 3, 20, "three fires of 'added'")
    first = fire_times(db, "added")[0]
    assert added_at < first <= added_at + PICK_UP + 2, (added_at, first)
    assert "beat entries changed entries=3 added=1 changed=0 removed=0" in uwsgi.log()

    # --- a name a schedules module declares is refused ------------------------------------
    refused = subprocess.run(
        [sys.executable, "-m", "django", "spoolcron", "entry-add", "declared", "--task",
         RECORD, "--schedule", "every second"],
        cwd=REPO, env={**os.environ, **beat_env(spool_dir, runs, db, MODULE)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "CommandError: The name 'declared' is taken by the entry 'declared' declared in "
        f"tests.integration.apps.{MODULE}; a database entry needs a name of its own."
    )

    # --- edited: new fires only ---------------------------------------------------------
    before_edit = fire_times(db, "added")
    spoolcron(
        db, spool_dir, runs, "entry-edit", "added", "--schedule", "every 3 seconds",
        "--misfire", "all",
    )  # fmt: skip
    edited_at = time.time()
    # Run, not only claimed: the beat claims each fire half a second ahead.
    wait_for(
        uwsgi,
        lambda: (
            len(
                [
                    r
                    for r in run_rows(db, "added")
                    if r.outcome == "succeeded" and r.due > edited_at + PICK_UP
                ]
            )
            >= 3
        ),
        25,
        "three runs of the edited schedule",
    )
    fires = fire_times(db, "added")
    assert fires[: len(before_edit)] == before_edit  # the ledger's fires stay
    # Before the change was read the old schedule's fires go on (even seconds); from the edit
    # on, no fire of the new schedule that lies before the edit, and soon only new ones.
    assert [f for f in fires if f <= edited_at and f % 2] == []
    assert [f for f in fires if f > edited_at + PICK_UP and f % 3] == []
    assert [
        f for f in fires if edited_at < f and f % 3 and f % 2 == 0 and f > edited_at + 1.5
    ] == []
    assert_ran_once(db, runs, "added", at_least=len(before_edit) + 3)

    # --- pause_after_failures: paused after the third failure in a row ------------------
    spoolcron(
        db, spool_dir, runs, "entry-add", "failing", "--task", "tests.testapp.tasks.always_fails",
        "--schedule", "every second", "--args", '["failing"]', "--pause-after-failures", "3",
    )  # fmt: skip

    found: list[tuple[object, ...]] = []

    def paused() -> bool:
        found[:] = db.query(
            "SELECT note, paused_at, changed_by FROM spoolcron_entrystate "
            "WHERE entry = ? AND paused",
            "failing",
        )
        return bool(found)

    wait_for(uwsgi, paused, 20, "'failing' to be paused")
    [(note, paused_at, by)] = found
    assert isinstance(paused_at, float)
    assert (note, by) == (
        "paused after 3 consecutive failures",
        "spoolcron (pause_after_failures)",
    )
    failed = [r for r in run_rows(db, "failing") if r.outcome == "failed"]
    assert len([r for r in failed if r.finished is not None and r.finished <= paused_at]) == 3
    assert [r for r in run_rows(db, "failing") if r.outcome == "succeeded"] == []
    assert "entry paused after failures entry=failing failures=3" in uwsgi.log()
    quiet_from = paused_at + PICK_UP
    deadline = time.time() + 4
    while time.time() < deadline:  # absence is only seen by looking for a while
        assert [f for f in fire_times(db, "failing") if f > quiet_from] == []
        time.sleep(0.2)

    # --- deleted: no more fires -----------------------------------------------------------
    out = spoolcron(db, spool_dir, runs, "entry-delete", "added")
    deleted_at = time.time()
    assert out.strip() == "Deleted database entry 'added': no beat enqueues its fires any more."
    deadline = deleted_at + 6
    while time.time() < deadline:
        assert [f for f in fire_times(db, "added") if f > deleted_at + PICK_UP] == []
        time.sleep(0.2)
    assert [c for c in claims(db, "added") if c.claimed_at > deleted_at + PICK_UP] == []


def admin_add_entry(uwsgi: UwsgiProcess, db: Database, runs: Runs, **values: str) -> str:
    """Add an entry through the admin that ``uwsgi`` serves, as an operator's browser would:
    log in (a superuser made for the purpose), then post the add form. Returns the page the
    admin answers with (its messages)."""
    spool = next(o.split("=", 1)[1] for o in uwsgi.options if o.startswith("--spooler="))
    env = {**os.environ, **beat_env(Path(spool), runs, db, MODULE)}
    env["DJANGO_SUPERUSER_PASSWORD"] = "operator-password"
    subprocess.run(
        [sys.executable, "-m", "django", "createsuperuser", "--noinput", "--username",
         "operator", "--email", "operator@example.com"],
        cwd=REPO, env=env, capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    address = next(o.split("=", 1)[1] for o in uwsgi.options if o.startswith("--http-socket="))
    base = f"http://{address}/admin"
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def post(url: str, data: dict[str, str]) -> str:
        token = next(c.value for c in jar if c.name == "csrftoken")
        body = urlencode({"csrfmiddlewaretoken": token, **data}).encode()
        with browser.open(url, body, timeout=30) as response:
            return str(response.read().decode())

    browser.open(f"{base}/login/", timeout=30).close()
    post(
        f"{base}/login/",
        {"username": "operator", "password": "operator-password", "next": "/admin/"},
    )
    browser.open(f"{base}/spoolcron/databaseentry/add/", timeout=30).close()
    form = {
        "zone": "", "args": "[]", "kwargs": "{}", "misfire": "coalesce", "misfire_limit": "10",
        "grace": "", "overlap": "skip", "enabled": "on", "jitter": "0", "alert_after": "",
        "pause_after_failures": "",
    }  # fmt: skip
    return html.unescape(post(f"{base}/spoolcron/databaseentry/add/", {**form, **values}))


@pytest.mark.postgres
def test_a_database_entry_fires_once_per_fire_across_two_hosts(
    run_uwsgi: RunUwsgi, tmp_path: Path, runs: Runs, postgres_db: Database
) -> None:
    db = postgres_db
    spools = [files.ensure_dir(tmp_path / f"spool-{host}") for host in ("a", "b")]
    hosts = [start_beat(run_uwsgi, s, runs, db, MODULE, "--processes=1") for s in spools]
    pids = [set(h.spooler_pids()) for h in hosts]

    # Added in host A's admin while both run.
    page = admin_add_entry(
        hosts[0], db, runs, name="shared", task=RECORD, schedule="every second", args='["shared"]'
    )
    added_at = time.time()
    assert f"Entry 'shared' runs {RECORD} every second (UTC); next fires: " in page, page[-2000:]
    wait_for(
        hosts[0],
        lambda: len([r for r in run_rows(db, "shared") if r.outcome == "succeeded"]) >= 12,
        30,
        "twelve runs of the database entry",
    )
    fires = fire_times(db, "shared")
    assert fires[0] <= added_at + PICK_UP + 1
    # Every second from the first fire on, each claimed once (the unique claim) ...
    assert fires == [fires[0] + n for n in range(len(fires))]
    # ... and run once across both hosts; both beats ran the entry.
    window = assert_ran_once(db, runs, "shared", at_least=12)
    by_host = {0: 0, 1: 0}
    for row in run_rows(db, "shared"):
        if row.due in window:
            by_host[0 if row.pid in pids[0] else 1] += 1
    assert sum(by_host.values()) == len(window)
    for host in hosts:
        assert "beat entries changed entries=3 added=1 changed=0 removed=0" in host.log()
