"""Starting uWSGI the way the README documents it, and reading what the faults left behind."""

from __future__ import annotations

import collections
import os
import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from spoolcron.core.beat import fire_job_id
from spoolcron.spool import codec, files
from tests.conftest import Runs
from tests.integration.conftest import REPO, RunUwsgi
from tests.integration.harness import UwsgiProcess, free_port, pid_alive, wait_until
from tests.integration.project import Database
from tests.integration.test_beat_uwsgi import fire_times, iso, match_records, run_rows

APPS = "tests.faults.apps"
MULE = str(REPO / "spoolcron" / "mule.py")


@dataclass(frozen=True)
class Dirs:
    spool: Path
    failed: Path

    def pending(self) -> list[Path]:
        return files.list_files(self.spool)

    def quarantined(self) -> list[Path]:
        return files.list_quarantined(self.failed)

    def reasons(self) -> list[str]:
        return [
            Path(f"{p}{files.REASON_SUFFIX}").read_text().rstrip("\n") for p in self.quarantined()
        ]


def env(dirs: Dirs, runs: Runs, db: Database, *modules: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "SPOOLCRON_SPOOL_DIR": str(dirs.spool),
        "SPOOLCRON_TEST_RESULTS": str(runs.directory),
        "SPOOLCRON_TEST_MODULES": ",".join(f"{APPS}.{m}" for m in modules),
        **db.env,
    }


def options(dirs: Dirs, *extra: str) -> list[str]:
    """The documented configuration; --spooler-frequency 60, so the mule does the waking."""
    return [
        f"--http-socket=127.0.0.1:{free_port()}",
        "--module=tests.wsgi",
        f"--spooler={dirs.spool}",
        "--spooler-frequency=60",
        "--shared-import=spoolcron.uwsgi",
        f"--mule={MULE}",
        "--processes=2",
        *extra,
    ]


def start(
    run_uwsgi: RunUwsgi,
    dirs: Dirs,
    runs: Runs,
    db: Database,
    modules: Sequence[str] = (),
    *extra: str,
    environ: dict[str, str] | None = None,
) -> UwsgiProcess:
    """Start uWSGI and wait for the spoolcron mule's beat to run."""
    uwsgi = run_uwsgi(
        *options(dirs, *extra), env={**env(dirs, runs, db, *modules), **(environ or {})}
    )
    uwsgi.wait_for_log("spoolcron mule started", timeout=30)
    return uwsgi


def mule_starts(uwsgi: UwsgiProcess) -> int:
    return uwsgi.log().count("spoolcron mule started")


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def wait_dead(pids: Sequence[int], timeout: float, uwsgi: UwsgiProcess | None = None) -> None:
    wait_until(
        lambda: not [p for p in pids if pid_alive(p)],
        timeout,
        interval=0.05,
        message=f"processes {list(pids)} to end",
        uwsgi=uwsgi,
    )


RUNS_AGAIN = re.compile(
    r"spool file runs again after its spooler died path=\S*/"
    + re.escape(codec.PREFIX)
    + r"spoolcron_(?P<job>\S+)_\d+ starts=\d+$",
    re.M,
)


def interrupted_fires(log: str, entry: str) -> set[float]:
    """The fires of *entry* whose spooler died while running them, by the spooler's log."""
    prefix = fire_job_id(entry, 0).rsplit("-", 1)[0] + "-"
    return {
        int(m["job"][len(prefix) :]) / 1000
        for m in RUNS_AGAIN.finditer(log)
        if m["job"].startswith(prefix)
    }


def assert_fires_once(
    db: Database,
    runs: Runs,
    entry: str,
    at_least: int,
    since: float = 0.0,
    interrupted: set[float] = frozenset(),  # type: ignore[assignment]
) -> list[float]:
    """Every fire claimed for *entry*, up to its newest finished run, was handled exactly once.

    Handled: run (succeeded, with exactly one task record written during the run, not before
    the fire time) or skipped by ``overlap="skip"`` because the entry's previous run was
    still going. No fire claimed twice, no run of a fire nobody claimed. Only fires after
    *since* count (the ledger may hold older ones a test put there). A fire in *interrupted*
    (its spooler was killed while running it) ran at least once: its killed run, if it got
    as far as the history, is marked failed; it ran again once; its task recorded once or
    twice. Returns the fires.
    """
    fires = [f for f in fire_times(db, entry) if f > since]
    assert len(set(fires)) == len(fires), "a fire claimed twice"
    rows = [r for r in run_rows(db, entry) if r.due > since]
    assert [r for r in rows if r.due not in set(fires)] == [], "a run of an unclaimed fire"
    done = [r.due for r in rows if r.outcome == "succeeded"]
    assert done, f"no run of {entry!r} finished"
    window = [f for f in fires if f <= max(done)]
    assert len(window) >= at_least, f"{entry!r} fired only at {[iso(f) for f in window]}"
    # A run killed before it was recorded left no row; one killed after it is marked failed.
    killed = [r for r in rows if r.due in interrupted and r.outcome == "failed"]
    assert len(killed) <= len(interrupted) == len({r.due for r in killed} | interrupted)
    counted = [r for r in rows if r.due <= max(done) and r not in killed]
    per_fire = collections.Counter(r.due for r in counted)
    assert [iso(f) for f in window if per_fire[f] != 1] == [], f"{entry!r} handled other than once"
    assert {r.outcome for r in counted} <= {"succeeded", "skipped"}
    assert [r for r in rows if r.started < r.due] == [], "a run started before its fire"
    skipped = db.query(
        "SELECT error FROM spoolcron_run WHERE entry = ? AND outcome = 'skipped'", entry
    )
    overlap = f"Entry {entry!r} skipped its fire: its previous run "
    assert [e for (e,) in skipped if not str(e).startswith(overlap)] == []

    records = [r for r in runs.all() if r["task"] == "record" and r.get("label") == entry]
    records = [r for r in records if r["time"] > since]
    owners = match_records(records, rows)
    assert {o.outcome for o in owners if o not in killed} <= {"succeeded"}
    by_fire = collections.Counter(o.due for o in owners)
    ran = {r.due for r in counted if r.outcome == "succeeded"}

    def recorded_right(fire: float) -> bool:
        if fire in interrupted:
            return by_fire[fire] in (1, 2)
        return by_fire[fire] == (1 if fire in ran else 0)

    assert [iso(f) for f in window if not recorded_right(f)] == []
    early = [r for r, o in zip(records, owners, strict=True) if r["time"] < o.due]
    assert early == [], "a task ran before its fire time"
    return window
