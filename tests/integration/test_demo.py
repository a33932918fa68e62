"""``make demo`` end to end: the example project under real uWSGI, started as the Makefile does.

The test runs ``example_project/run_demo.py`` (what ``make demo`` runs) with a free port and
a temporary var dir. The script migrates, creates the admin user, writes the uWSGI config and
then becomes the uWSGI master, so the harness's pid is the master's and its log is the
console the user would see. Ctrl-C is simulated as a terminal sends it: SIGINT to the whole
process group.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import sqlite3
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO
from .harness import UwsgiProcess, free_port, live_pids, pid_alive

RUN_DEMO = REPO / "example_project" / "run_demo.py"
SCHEDULES = REPO / "example_project" / "example" / "schedules.py"
README = REPO / "README.rst"
START_TIMEOUT = 60.0  # migrating a new database comes first
STOP_TIMEOUT = 15.0
HTTP_TIMEOUT = 10.0
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="(?P<token>[^"]+)"')


class Demo(UwsgiProcess):
    """``run_demo.py --port PORT --var-dir VAR_DIR``, which execs uWSGI in its own process."""

    def __init__(self, port: int, var_dir: Path, log_path: Path) -> None:
        super().__init__(cwd=REPO, log_path=log_path)
        self.port = port
        self.var_dir = var_dir

    @property
    def command(self) -> list[str]:
        return [
            sys.executable,
            str(RUN_DEMO),
            "--port",
            str(self.port),
            "--var-dir",
            str(self.var_dir),
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.var_dir / "db.sqlite3", timeout=20) as db:
            return db.execute(sql, params).fetchall()


class Browser:
    """urllib with a cookie jar: the session and CSRF cookies survive between requests."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[str, str]:
        """The final address (after redirects) and the body of a GET, which must answer 200."""
        with self.opener.open(self.base + path, timeout=HTTP_TIMEOUT) as response:
            assert response.status == 200, (path, response.status)
            return response.geturl(), response.read().decode()

    def post_form(self, path: str, fields: dict[str, str]) -> tuple[str, str]:
        """GET the form at *path*, POST *fields* with its CSRF token; the final address and body."""
        _, page = self.get(path)
        match = CSRF_INPUT.search(page)
        assert match, f"no CSRF token in the form at {path}"
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": match["token"], **fields}).encode()
        with self.opener.open(self.base + path, data=data, timeout=HTTP_TIMEOUT) as response:
            assert response.status == 200, (path, response.status)
            return response.geturl(), response.read().decode()


@pytest.fixture
def demo(uwsgi_bin: Path, tmp_path: Path) -> Iterator[Demo]:
    process = Demo(free_port(), tmp_path / "var", tmp_path / "console.log")
    try:
        process.start(timeout=START_TIMEOUT)
        process.wait_for_log(r"spoolcron mule started pid=\d+", timeout=30)
        yield process
    finally:
        process.stop()


@pytest.mark.uwsgi
def test_make_demo_serves_the_page_runs_the_entries_and_stops_on_ctrl_c(demo: Demo) -> None:
    """The demo as a user meets it: entries fire with their lateness on the console, the page
    lists upcoming and recent runs, its form enqueues a job that runs, the admin logs in, and
    Ctrl-C stops every process."""
    ini = (demo.var_dir / "uwsgi.ini").read_text()
    # The spooler watches the spool directory the settings name (else the mule's checks stop it).
    assert f"\nspooler = {demo.var_dir / 'spool'}\n" in ini
    assert f"\nhttp = 127.0.0.1:{demo.port}\n" in ini
    assert "Created the superuser 'admin' (password 'admin')." in demo.log()

    # The every-5-seconds entry fires, on time, and says so on the console.
    def tick_ran() -> list[tuple[str, float]]:
        rows = demo.query(
            "SELECT job_id, (julianday(started) - julianday(due)) * 86400 FROM spoolcron_run "
            "WHERE entry = 'tick' AND outcome = 'succeeded'"
        )
        return [(str(job), float(str(late))) for job, late in rows]

    [(tick_job, late_seconds), *_] = demo.wait_until(tick_ran, 15, message="a run of 'tick'")
    assert 0 <= late_seconds < 1.0
    demo.wait_for_log(rf"INFO +spoolcron\.dispatch +job started job={tick_job} .* late_ms=\d")
    demo.wait_for_log(r"INFO +example\.tasks +tick: ran at \d\d:\d\d:\d\d\.\d{3}")

    browser = Browser(demo.url)
    _, home = browser.get("/")
    assert '<iframe src="/runs/"' in home
    assert 'href="/admin/"' in home
    _, live = browser.get("/runs/")
    assert '<meta http-equiv="refresh" content="5">' in live
    assert "<h2>Upcoming runs</h2>" in live
    for entry in ("tick", "stand-up", "report"):
        assert f"<td>{entry}</td>" in live
    assert "every weekday at 09:30 (Europe/Rome)" in live
    assert f"<code>{tick_job}</code>" in live  # the recent runs

    # The form enqueues a delayed one-off job, redirects back showing its id, and it runs.
    text = f"hello from test_demo {os.getpid()}"
    address, page = browser.post_form("/", {"seconds": "1", "text": text})
    job_id = urllib.parse.parse_qs(urllib.parse.urlsplit(address).query)["job"][0]
    assert re.fullmatch(r"[0-9a-f]{32}", job_id), address
    assert f"Enqueued job {job_id}: say(&#x27;{text}&#x27;), due at " in page
    demo.wait_until(
        lambda: demo.query(
            "SELECT 1 FROM spoolcron_run WHERE job_id = ? AND outcome = 'succeeded'", job_id
        ),
        15,
        message=f"the one-off job {job_id} to run",
    )
    demo.wait_for_log(rf"INFO +example\.tasks +say: '{re.escape(text)}' \(ran at ")
    _, live = browser.get(f"/runs/?job={job_id}")
    assert '<tr class="highlight">' in live
    assert f"<code>{job_id}</code>" in live

    # The stock admin: its login page with its static files, and the documented user.
    _, login = browser.get("/admin/login/")
    assert "Django administration" in login
    browser.get("/static/admin/css/base.css")
    address, admin = browser.post_form(
        "/admin/login/?next=/admin/", {"username": "admin", "password": "admin", "next": "/admin/"}
    )
    assert address == f"{demo.url}/admin/"
    assert "Site administration" in admin
    # spoolcron's pages: the entries with their plain-English schedules, and the runs above.
    _, entries = browser.get("/admin/spoolcron/periodicentry/")
    assert "every weekday at 09:30 (Europe/Rome)" in entries
    assert ">tick<" in entries
    _, runs = browser.get("/admin/spoolcron/run/")
    assert tick_job in runs

    # Ctrl-C: the terminal sends SIGINT to the whole foreground process group.
    processes = live_pids("session", demo.pid)
    assert len(processes) >= 6, processes  # master, 2 workers, spooler, mule, http router
    os.killpg(demo.pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_TIMEOUT
    demo.wait_until(lambda: demo.returncode() is not None, STOP_TIMEOUT, message="uWSGI to exit")
    assert demo.returncode() == 0
    # Every process of the demo is gone too (the harness's SIGKILL afterwards must find none).
    demo.wait_until(
        lambda: not live_pids("session", demo.pid),
        max(deadline - time.monotonic(), 0.1),
        message="every process of the demo to exit",
    )
    assert not [pid for pid in processes if pid != demo.pid and pid_alive(pid)]
    log = demo.log()
    assert "goodbye to uWSGI." in log
    assert "Traceback" not in log, log


def test_the_readme_tour_shows_the_demo_schedules() -> None:
    """The tour's copy of example/schedules.py is the file (without its docstring)."""
    tour = README.read_text().partition(".. SECTION tour")[2].partition(".. END SECTION tour")[0]
    block = re.search(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", tour)
    assert block, "no Python block in the README's tour"
    shown = textwrap.dedent(block[1]).strip()
    code = SCHEDULES.read_text().split('"""', 2)[2].strip()
    assert shown == f"# example_project/example/schedules.py\n{code}"
