"""USE_TZ = False under real uWSGI on SQLite: the beat claims and runs each fire once, a one-off
job enqueued from outside runs, and the rows read back as naive local time.

The server's settings get ``SPOOLCRON_TEST_USE_TZ=0`` (tests/settings.py): ``USE_TZ = False``
and ``TIME_ZONE = "Europe/Rome"``, a zone that is not UTC, so a value stored in UTC (or a
claim refused for being aware, as before the fix) shows here.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings

from tests.conftest import Runs
from tests.testapp import tasks

from .conftest import RunUwsgi
from .harness import UwsgiProcess, wait_until
from .project import Database
from .test_beat_uwsgi import POLL, RunRow, beat_env, beat_options, gaps, iso, match_records

pytestmark = pytest.mark.uwsgi

ZONE = "Europe/Rome"
LOCAL = ZoneInfo(ZONE)
ENTRY = "every-second"
# The columns keep microseconds; time.time() has more digits.
SLACK = 1e-3


def unix(value: object) -> float:
    """A DateTimeField as SQLite holds it without USE_TZ: naive local time in ZONE."""
    moment = datetime.fromisoformat(str(value))
    assert moment.tzinfo is None, value
    return moment.replace(tzinfo=LOCAL).timestamp()


def local(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, LOCAL).replace(tzinfo=None)


@pytest.fixture
def local_time(settings: Any, spool_dir: Path) -> Iterator[None]:
    """This process as the server is configured: USE_TZ off, the same zone and spool dir."""
    settings.SPOOLCRON = {"SPOOL_DIR": str(spool_dir)}
    with override_settings(USE_TZ=False, TIME_ZONE=ZONE):
        yield


def start(run_uwsgi: RunUwsgi, spool_dir: Path, runs: Runs, db: Database) -> UwsgiProcess:
    uwsgi = run_uwsgi(
        *beat_options(spool_dir, "--processes=2"),
        env={**beat_env(spool_dir, runs, db, "beat_every_second"), "SPOOLCRON_TEST_USE_TZ": "0"},
    )
    uwsgi.wait_for_log("spoolcron mule started", timeout=30)
    return uwsgi


def claims(db: Database) -> list[tuple[float, float, str]]:
    """(fire time, claimed at, job id) of the entry's claims, oldest first."""
    rows = db.query(
        "SELECT fire_time, claimed_at, job_id FROM spoolcron_fireclaim WHERE entry = ?", ENTRY
    )
    return sorted((unix(f), unix(c), j) for f, c, j in rows)


def run_rows(db: Database, where: str, *params: object) -> list[RunRow]:
    rows = db.query(
        f"SELECT job_id, due, started, finished, outcome, pid FROM spoolcron_run WHERE {where}",
        *params,
    )
    return sorted(
        (
            RunRow(j, unix(d), unix(s), None if f is None else unix(f), o, p)
            for j, d, s, f, o, p in rows
        ),
        key=lambda r: (r.due, r.started),
    )


def test_the_beat_and_a_one_off_job_with_use_tz_off(
    run_uwsgi: RunUwsgi, spool_dir: Path, runs: Runs, project_db: Database, local_time: None
) -> None:
    began = time.time()
    uwsgi = start(run_uwsgi, spool_dir, runs, project_db)

    # A one-off job from this process, due in a moment, given as naive local time.
    due = round(time.time() + 1.5, 3)
    job = tasks.record.schedule(["one-off"], run_after=local(due))

    def finished() -> bool:
        fires = {r.due for r in run_rows(project_db, "entry = ?", ENTRY)}
        done = run_rows(project_db, "job_id = ? AND outcome = 'succeeded'", job.id)
        return len(fires) >= 5 and bool(done)

    wait_until(finished, 30, interval=POLL, message="five fires and the one-off job", uwsgi=uwsgi)
    uwsgi.stop()
    ended = time.time()
    log = uwsgi.log()
    assert "Traceback" not in log, log
    assert "could not record" not in log, log

    # The beat's claims: one per fire, each a whole second, claimed just before it, all within
    # this test's wall-clock time (a claim stored in UTC would be an hour or two off).
    found = claims(project_db)
    fired = [f for f, _, j in found if j]
    assert len(set(fired)) == len(fired)
    assert len(fired) >= 5
    assert gaps(fired, 1) == []
    for fire_time, claimed_at, _ in found:
        assert began - 1 <= claimed_at <= ended + SLACK, (iso(fire_time), iso(claimed_at))
        assert claimed_at - 2 <= fire_time <= claimed_at + 2, (iso(fire_time), iso(claimed_at))
    baselines = [f for f, _, j in found if not j]
    assert len(baselines) == 1  # when the beat first saw the entry
    assert baselines[0] < fired[0]

    # The runs: each fire up to the newest finished one ran once, not before its time.
    rows = run_rows(project_db, "entry = ?", ENTRY)
    done = max(r.due for r in rows if r.outcome == "succeeded")
    window = [f for f in fired if f <= done]
    counted = [r for r in rows if r.due <= done]
    per_fire = collections.Counter(r.due for r in counted)
    assert [iso(f) for f in window if per_fire[f] != 1] == []
    assert {r.outcome for r in counted} == {"succeeded"}
    assert {r.due for r in rows} <= set(fired), "a run of an unclaimed fire"
    for row in counted:
        assert row.finished is not None
        assert row.due <= row.started + SLACK <= row.finished + 2 * SLACK, row
        assert row.started <= row.due + 5, row  # late by seconds, not hours
    # Each task record (its own time.time()) falls inside the run the history gives it.
    records = [r for r in runs.all() if r.get("label") == ENTRY]
    owners = match_records(records, rows)
    assert sorted(o.due for o in owners if o.due <= done) == window

    # The one-off job: its due time as given, its run and result in local time.
    [run] = run_rows(project_db, "job_id = ?", job.id)
    assert run.outcome == "succeeded"
    assert run.due == pytest.approx(due, abs=SLACK)
    assert run.finished is not None
    assert due - SLACK <= run.started <= run.finished <= ended
    assert run.started <= due + 5
    [record] = [r for r in runs.all() if r.get("label") == "one-off"]
    assert run.started - SLACK <= record["time"] <= run.finished + SLACK
    [(status, run_after, started_at, finished_at)] = project_db.query(
        "SELECT status, run_after, started_at, finished_at FROM spoolcron_jobresult WHERE id = ?",
        job.id,
    )
    assert status == "SUCCESSFUL"
    assert unix(run_after) == pytest.approx(due, abs=SLACK)
    assert run.started - 1 <= unix(started_at) <= unix(finished_at) <= run.finished + 1
