"""The benchmark project in-process (``setup_django``) and under real uWSGI (``serve``).

``serve()`` migrates a fresh SQLite file, starts uWSGI through the integration tests' harness
(``--master --die-on-term``, its own process group, stopped by pid on exit) with one spooler
at the default ``--spooler-frequency`` and the spoolcron mule, and hands back what the run
left behind: the task's stamps, the run history rows and the dispatcher's log lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from spoolcron.spool import files
from tests.integration.harness import UwsgiProcess, free_port, run_uwsgi

__all__ = ["REPO", "SETTINGS", "HistoryRow", "Server", "migrate", "serve", "setup_django"]

REPO = Path(__file__).resolve().parents[2]
SETTINGS = "benchmarks.project.settings"

_STARTED = re.compile(
    r"job started job=(?P<job>\S+) task=\S+ attempt=\d+ late_ms=(?P<late>-?[\d.]+)"
)


def setup_django() -> None:
    """Configure Django in this process with the benchmark settings (once)."""
    from django.apps import apps

    if apps.ready:
        return
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    import django

    django.setup()


def migrate(sqlite_path: Path, env: Mapping[str, str] | None = None) -> None:
    """Create the spoolcron tables in a fresh SQLite file (or the database ``env`` names,
    see settings.py), in a separate process."""
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v0"],
        cwd=REPO,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "SPOOLCRON_BENCH_SQLITE": str(sqlite_path),
            **(env or {}),
        },
        check=True,
        timeout=120,
    )


@dataclass(frozen=True)
class HistoryRow:
    """One row of spoolcron_run, as the spooler wrote it."""

    job_id: str
    entry: str
    due: float
    started: float
    outcome: str
    pid: int | None


def _timestamp(value: str) -> float:
    # Django stores aware datetimes in SQLite as naive UTC text.
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


@dataclass
class Server:
    uwsgi: UwsgiProcess
    spool_dir: Path
    results_dir: Path
    db_path: Path

    def stamps(self) -> list[dict[str, object]]:
        """What the ``stamp`` task recorded: label, start time and pid of each run."""
        path = self.results_dir / "stamps.jsonl"
        try:
            text = path.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.endswith("}")]

    def history(self, entry: str | None = None) -> list[HistoryRow]:
        """The run history rows, oldest first, optionally of one periodic entry only."""
        sql = "SELECT job_id, entry, due, started, outcome, pid FROM spoolcron_run"
        params: tuple[str, ...] = ()
        if entry is not None:
            sql += " WHERE entry = ?"
            params = (entry,)
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=20)) as db:
            rows = db.execute(sql + " ORDER BY started", params).fetchall()
        return [
            HistoryRow(job, ent, _timestamp(due), _timestamp(started), outcome, pid)
            for job, ent, due, started, outcome, pid in rows
        ]

    def dispatch_lateness(self) -> dict[str, list[float]]:
        """late_ms of every "job started" line the dispatcher logged, by job id."""
        found: dict[str, list[float]] = {}
        for match in _STARTED.finditer(self.uwsgi.log()):
            found.setdefault(match["job"], []).append(float(match["late"]))
        return found

    def pending_files(self) -> list[Path]:
        return files.list_files(self.spool_dir)


@contextlib.contextmanager
def serve(
    workdir: Path,
    *,
    beat: bool = False,
    start_timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    socket: str | None = None,
) -> Iterator[Server]:
    """Run the benchmark project under uWSGI in *workdir*; always stopped on exit.

    ``beat=True`` declares the ``every second`` entry (schedules.py) for the mule's beat.
    ``env``: more settings for the project (settings.py), e.g. the pending store and a
    PostgreSQL database (already migrated: see project/postgres.py); without a database URL
    a fresh SQLite file in *workdir* is migrated. ``socket``: also listen on this uwsgi
    socket, where other processes send remote jobs.
    """
    spool = files.ensure_dir(workdir / "spool")
    results = workdir / "results"
    results.mkdir(exist_ok=True)
    db_path = workdir / "db.sqlite3"
    extra = dict(env or {})
    if not extra.get("SPOOLCRON_BENCH_DATABASE_URL"):
        migrate(db_path)
    process_env = {
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "SPOOLCRON_BENCH_SPOOL_DIR": str(spool),
        "SPOOLCRON_BENCH_SQLITE": str(db_path),
        "SPOOLCRON_BENCH_RESULTS": str(results),
        "SPOOLCRON_BENCH_BEAT": "1" if beat else "",
        **extra,
    }
    with run_uwsgi(
        f"--http-socket=127.0.0.1:{free_port()}",
        "--module=benchmarks.project.wsgi",
        "--processes=1",
        # Default --spooler-frequency (30 s): what wakes the spooler on time is the mule.
        f"--spooler={spool}",
        # As `manage.py spoolcron uwsgi-config` prints it: no "managing request" line from
        # uWSGI before and after each job (spoolcron logs its own).
        "--spooler-quiet",
        "--import=spoolcron.uwsgi",
        "--mule=spoolcron.uwsgi:mule",
        *([f"--socket={socket}"] if socket else []),
        env=process_env,
        cwd=REPO,
        log_path=workdir / "uwsgi.log",
        timeout=start_timeout,
    ) as uwsgi:
        uwsgi.wait_for_log("spoolcron mule started", timeout=start_timeout)
        yield Server(uwsgi=uwsgi, spool_dir=spool, results_dir=results, db_path=db_path)
