"""The beat under real uWSGI: periodic fires run on time, once each, across restarts.

Every server runs with ``--spooler-frequency 60``: a fire that runs within a second of its
time was woken by the spoolcron mule, not found by uWSGI's own polling. The tests read what
happened from three independent records: the fire claims (spoolcron_fireclaim), the run
history written by the dispatcher (spoolcron_run) and the lines the tasks themselves append
to runs.jsonl (tests/testapp/tasks.py).
"""

from __future__ import annotations

import collections
import itertools
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Runs

from .conftest import REPO, RunUwsgi
from .harness import UwsgiProcess, free_port, wait_until
from .project import Database

pytestmark = pytest.mark.uwsgi

APPS = "tests.integration.apps"
# Database polls: often enough to react within a fire, rarely enough not to load the server.
POLL = 0.1


# --- reading what happened ------------------------------------------------------------------


def timestamp(value: object) -> float:
    """A DateTimeField as read back: PostgreSQL gives aware datetimes, SQLite UTC text."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True, order=True)
class Claim:
    fire_time: float
    claimed_at: float
    job_id: str  # "" for the baseline the beat records when it first sees an entry


@dataclass(frozen=True)
class RunRow:
    job_id: str
    due: float
    started: float
    finished: float | None
    outcome: str
    pid: int | None

    def covers(self, moment: float) -> bool:
        """Whether *moment* (the same clock, another reading) fell while this run ran."""
        slack = 1e-4  # the columns keep microseconds, time.time() more digits
        end = float("inf") if self.finished is None else self.finished + slack
        return self.started - slack <= moment <= end


def claims(db: Database, entry: str) -> list[Claim]:
    rows = db.query(
        "SELECT fire_time, claimed_at, job_id FROM spoolcron_fireclaim WHERE entry = ?", entry
    )
    return sorted(Claim(timestamp(f), timestamp(c), j) for f, c, j in rows)


def fire_times(db: Database, entry: str) -> list[float]:
    """The fires the beats enqueued for *entry*, oldest first."""
    return [c.fire_time for c in claims(db, entry) if c.job_id]


def run_rows(db: Database, entry: str) -> list[RunRow]:
    rows = db.query(
        "SELECT job_id, due, started, finished, outcome, pid FROM spoolcron_run WHERE entry = ?",
        entry,
    )
    return sorted(
        (
            RunRow(j, timestamp(d), timestamp(s), None if f is None else timestamp(f), o, p)
            for j, d, s, f, o, p in rows
        ),
        key=lambda r: (r.due, r.started),
    )


def succeeded(db: Database, entry: str) -> list[RunRow]:
    return [r for r in run_rows(db, entry) if r.outcome == "succeeded"]


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def gaps(fires: Sequence[float], period: float) -> list[str]:
    """What keeps *fires* from being consecutive fires of an epoch-anchored *period*."""
    problems = [f"{iso(f)} is not on the schedule" for f in fires if f % period]
    problems += [
        f"{iso(a)} is followed by {iso(b)}" for a, b in itertools.pairwise(fires) if b - a != period
    ]
    return problems


def match_records(records: Iterable[Mapping[str, Any]], rows: Sequence[RunRow]) -> list[RunRow]:
    """The run each task record was written in: same spooler pid, inside its start and end.

    A spooler runs one task at a time, so the match is unique; a record no run explains (or
    two runs explain) fails the test.
    """
    matched = []
    for record in records:
        owners = [r for r in rows if r.pid == record["pid"] and r.covers(record["time"])]
        assert len(owners) == 1, f"task record {record} is explained by runs {owners}"
        matched.append(owners[0])
    return matched


def assert_ran_once(db: Database, runs: Runs, entry: str, at_least: int) -> list[float]:
    """Every fire enqueued for *entry*, up to its newest finished run, ran exactly once.

    Each such fire has exactly one run in the history, which succeeded and did not start
    before the fire time; each run has exactly one task record (the task's label is the
    entry's name), written during it. No run is for a fire nobody claimed. Returns the fires.
    """
    fires = fire_times(db, entry)
    assert len(set(fires)) == len(fires)
    rows = run_rows(db, entry)
    done = [r.due for r in rows if r.outcome == "succeeded"]
    assert done, f"no run of {entry!r} finished; fires {[iso(f) for f in fires]}"
    window = [f for f in fires if f <= max(done)]
    assert [r for r in rows if r.due not in set(fires)] == [], "a run of an unclaimed fire"
    counted = [r for r in rows if r.due <= max(done)]
    per_fire = collections.Counter(r.due for r in counted)
    assert [iso(f) for f in window if per_fire[f] != 1] == [], f"{entry!r} ran other than once"
    assert len(window) >= at_least, f"{entry!r} fired only at {[iso(f) for f in window]}"
    assert {r.outcome for r in counted} == {"succeeded"}
    assert [r for r in rows if r.started < r.due] == [], "a run started before its fire"

    records = [r for r in runs.all() if r["task"] == "record" and r.get("label") == entry]
    owners = match_records(records, rows)
    by_fire = collections.Counter(o.due for o in owners)
    assert [iso(f) for f in window if by_fire[f] != 1] == [], "a task ran other than once"
    early = [(r, iso(o.due)) for r, o in zip(records, owners, strict=True) if r["time"] < o.due]
    assert early == [], "a task ran before its fire time"
    return window


# --- starting the server --------------------------------------------------------------------


def beat_env(spool_dir: Path, runs: Runs, db: Database, *modules: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "SPOOLCRON_SPOOL_DIR": str(spool_dir),
        "SPOOLCRON_TEST_RESULTS": str(runs.directory),
        "SPOOLCRON_TEST_MODULES": ",".join(f"{APPS}.{m}" for m in modules),
        **db.env,
    }


# How uWSGI loads spoolcron: the configuration README.rst documents (it works with and
# without --lazy-apps), and the module:function mule form, which only works without.
DOCUMENTED = ("--shared-import=spoolcron.uwsgi", f"--mule={REPO / 'spoolcron' / 'mule.py'}")
MODULE_FUNCTION = ("--import=spoolcron.uwsgi", "--mule=spoolcron.uwsgi:mule")


def beat_options(
    spool_dir: Path, *options: str, hooks: Sequence[str] = DOCUMENTED, port: int | None = None
) -> list[str]:
    """The options of a test project under uWSGI with spoolcron as the README installs it
    (``port``: its HTTP port, default a free one)."""
    return [
        f"--http-socket=127.0.0.1:{port or free_port()}",
        "--module=tests.wsgi",
        f"--spooler={spool_dir}",
        "--spooler-frequency=60",
        *hooks,
        *options,
    ]


def start_beat(
    run_uwsgi: RunUwsgi,
    spool_dir: Path,
    runs: Runs,
    db: Database,
    module: str,
    *options: str,
    hooks: Sequence[str] = DOCUMENTED,
) -> UwsgiProcess:
    uwsgi = run_uwsgi(
        *beat_options(spool_dir, *options, hooks=hooks),
        env=beat_env(spool_dir, runs, db, module),
    )

    def mule_up() -> bool:
        log = uwsgi.log()
        if "Segmentation Fault" in log:
            # The master respawns a crashing mule forever and ignores SIGINT meanwhile.
            uwsgi.stop(timeout=1)
            raise AssertionError(f"the mule crashed:\n{log}")
        return "spoolcron mule started" in log

    uwsgi.wait_until(mule_up, 30, message="the spoolcron mule to start")
    return uwsgi


def wait_for(
    uwsgi: UwsgiProcess, predicate: Callable[[], object], timeout: float, message: str
) -> None:
    """Poll the database (at POLL, gentler than the harness default) until *predicate*."""
    wait_until(predicate, timeout, interval=POLL, message=message, uwsgi=uwsgi)


def count_lines(log: str, pattern: str) -> int:
    return len(re.findall(pattern, log, flags=re.MULTILINE))


# --- 1. every second, once per second ------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "hooks"),
    [
        pytest.param(["--processes=2"], DOCUMENTED, id="preforked"),
        pytest.param(["--processes=2", "--lazy-apps"], DOCUMENTED, id="lazy-apps"),
        pytest.param(["--processes=2"], MODULE_FUNCTION, id="preforked-module-function-mule"),
    ],
)
def test_every_second_fires_each_second_exactly_once(
    run_uwsgi: RunUwsgi,
    spool_dir: Path,
    runs: Runs,
    project_db: Database,
    options: list[str],
    hooks: tuple[str, ...],
) -> None:
    """For six seconds and more, each wall-clock second fires once: no gap, no double, never
    early; with two workers, and with --lazy-apps, the instance runs one beat."""
    uwsgi = start_beat(
        run_uwsgi, spool_dir, runs, project_db, "beat_every_second", *options, hooks=hooks
    )
    wait_for(
        uwsgi,
        lambda: len({r.due for r in succeeded(project_db, "every-second")}) >= 6,
        20,
        "six runs of the every-second entry",
    )
    uwsgi.stop()

    fires = assert_ran_once(project_db, runs, "every-second", at_least=6)
    assert gaps(fires, 1) == []
    # One beat per instance, however many workers and whether apps load lazily.
    log = uwsgi.log()
    assert count_lines(log, r"INFO spoolcron\.beat beat started entries=\d+$") == 1, log
    assert count_lines(log, r"spoolcron mule started pid=") == 1


# --- 2. downtime and the misfire policies --------------------------------------------------

MISFIRE_ENTRIES = {  # entry -> (policy, limit), as declared in apps/beat_misfire.py
    "misfire-coalesce": ("coalesce", 1),
    "misfire-all-2": ("all", 2),
    "misfire-all-10": ("all", 10),
    "misfire-skip": ("skip", 0),
}
MISFIRE_PERIOD = 2
LATE_AFTER = 5.0  # Beat's default: a fire later than this at the beat's tick is a misfire


def schedule_fires(after: float, until: float) -> list[float]:
    """The fires of "every 2 seconds" in (after, until]."""
    first = (int(after) // MISFIRE_PERIOD + 1) * MISFIRE_PERIOD
    return [float(f) for f in range(first, int(until) + 1, MISFIRE_PERIOD) if f <= until]


def expected_after_restart(last: float, tick: float, limit: int, horizon: float) -> list[float]:
    """The fires a beat whose first tick is at *tick* enqueues for an entry that last fired at
    *last* and keeps the latest *limit* missed fires, then the schedule from *tick* on."""
    missed = schedule_fires(last, tick)
    catch_up = missed[-limit:] if limit else []
    return catch_up + schedule_fires(tick, horizon)


def test_restart_catches_up_as_each_misfire_policy_declares(
    run_uwsgi: RunUwsgi, spool_dir: Path, runs: Runs, project_db: Database
) -> None:
    """After downtime, each entry enqueues the missed fires its policy keeps -- coalesce one,
    all up to its limit, skip none -- then goes on with the schedule; everything runs once."""
    entries = list(MISFIRE_ENTRIES)
    first = start_beat(run_uwsgi, spool_dir, runs, project_db, "beat_misfire")
    # Let every entry fire, then stop right after a fire ran: the next is 2 s away.
    wait_for(
        first,
        lambda: all(succeeded(project_db, e) for e in entries),
        20,
        "a first fire of every entry",
    )
    first.stop()
    before = {e: claims(project_db, e) for e in entries}
    last = {e: max(c.fire_time for c in before[e]) for e in entries}

    # Down long enough that the first missed fire is a misfire when the beat looks again.
    down_until = max(last.values()) + MISFIRE_PERIOD + LATE_AFTER + 0.5
    wait_until(lambda: time.time() >= down_until, 15, interval=0.05, message="the downtime")
    restarted_at = time.time()
    second = start_beat(run_uwsgi, spool_dir, runs, project_db, "beat_misfire")

    def new_fires(entry: str) -> list[float]:
        return [c.fire_time for c in claims(project_db, entry) if c.claimed_at > restarted_at]

    # Two ordinary fires after the restart for every entry, each run.
    def settled() -> bool:
        for entry in entries:
            fires = [f for f in new_fires(entry) if f > restarted_at + 1]
            done = {r.due for r in succeeded(project_db, entry)}
            if len([f for f in fires if f in done]) < 2:
                return False
        return True

    wait_for(second, settled, 30, "two fires of every entry after the restart")
    second.stop()

    after = {e: [c for c in claims(project_db, e) if c.claimed_at > restarted_at] for e in entries}
    observed = {e: [c.fire_time for c in after[e]] for e in entries}
    # The restarted beat's first tick handled every entry at one instant, after the start
    # and no later than the first claim it wrote. Between those bounds only the fires of the
    # schedule change the outcome: try each, and one must explain every entry at once.
    first_claim = min(c.claimed_at for e in entries for c in after[e])
    candidates = [restarted_at, *schedule_fires(restarted_at, first_claim)]
    explained = []
    for tick in candidates:
        expected = {
            e: expected_after_restart(last[e], tick, limit, max(observed[e]))
            for e, (_, limit) in MISFIRE_ENTRIES.items()
        }
        if expected == observed:
            explained.append(tick)
    last_text = {e: iso(f) for e, f in last.items()}
    observed_text = {e: [iso(f) for f in fs] for e, fs in observed.items()}
    assert explained, (
        f"no first tick in [{iso(restarted_at)}, {iso(first_claim)}] explains the fires "
        f"enqueued after the restart: last fires {last_text}, enqueued {observed_text}"
    )
    tick = explained[0]
    missed = {e: schedule_fires(last[e], tick) for e in entries}
    # The downtime made a real test of the limits: more fires were missed than "all-2" keeps.
    assert all(len(m) > 2 for m in missed.values()), missed
    caught_up = {e: len([f for f in observed[e] if f <= tick]) for e in entries}
    assert caught_up == {
        "misfire-coalesce": 1,
        "misfire-all-2": 2,
        "misfire-all-10": len(missed["misfire-all-10"]),
        "misfire-skip": 0,
    }
    log = second.log()
    for entry, (policy, _) in MISFIRE_ENTRIES.items():
        pattern = rf"missed fires entry={entry} .*policy={policy} .*enqueued={caught_up[entry]}$"
        assert count_lines(log, pattern) == 1, f"no single {pattern!r} in the log"

    # Every fire enqueued before and after the restart ran once, never before its time.
    for entry in entries:
        assert_ran_once(project_db, runs, entry, at_least=3)


# --- 3. overlap --------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    start: float
    end: float
    pid: int


def task_intervals(runs: Runs, label: str) -> list[Interval]:
    """The [start, end] of each finished run of the sleepy task, from its own records."""
    opened: dict[int, float] = {}
    intervals = []
    for record in runs.all():
        if record.get("label") != label:
            continue
        if record["task"] == "sleepy-start":
            assert record["pid"] not in opened, "one spooler ran two tasks at once"
            opened[record["pid"]] = record["time"]
        elif record["task"] == "sleepy-end":
            intervals.append(Interval(opened.pop(record["pid"]), record["time"], record["pid"]))
    return sorted(intervals, key=lambda i: i.start)


def overlapping(intervals: Sequence[Interval]) -> list[tuple[Interval, Interval]]:
    return [(a, b) for a, b in itertools.pairwise(intervals) if b.start < a.end]


def test_overlap_skip_skips_fires_while_the_previous_run_goes_on(
    run_uwsgi: RunUwsgi, spool_dir: Path, runs: Runs, project_db: Database
) -> None:
    """A 2.5 s task fired every second: the fires during a run are skipped and recorded as
    such, and no two runs of the entry ever overlap."""
    entry = "overlap-skip"
    # Two spoolers: a free one picks up the next fire while the first still runs the task.
    uwsgi = start_beat(
        run_uwsgi, spool_dir, runs, project_db, "beat_overlap", "--spooler-processes=2"
    )

    def enough() -> bool:
        rows = run_rows(project_db, entry)
        return (
            len([r for r in rows if r.outcome == "succeeded"]) >= 2
            and len([r for r in rows if r.outcome == "skipped"]) >= 2
        )

    wait_for(uwsgi, enough, 25, "two runs and two skipped fires")
    uwsgi.stop()

    fires = fire_times(project_db, entry)
    rows = run_rows(project_db, entry)
    done = [r for r in rows if r.outcome == "succeeded"]
    skipped = [r for r in rows if r.outcome == "skipped"]
    last = max(r.due for r in done)
    window = [f for f in fires if f <= last]
    assert gaps(window, 1) == []
    # Each fire either ran or was skipped, once.
    assert sorted(r.due for r in rows if r.due <= last) == window
    assert {r.outcome for r in rows if r.due <= last} == {"succeeded", "skipped"}
    # Skipped only while an earlier fire's run was still going: it started before the skip
    # was recorded and ended after the skipped fire was due, on the other spooler.
    for skip in skipped:
        assert any(
            r.due < skip.due
            and r.started <= skip.started
            and (r.finished is None or r.finished >= skip.due)
            and r.pid != skip.pid
            for r in rows
            if r.outcome != "skipped"
        ), skip
    # Never two runs at once: by the history and by the task's own records.
    started = [r for r in rows if r.outcome != "skipped"]
    history = [Interval(r.started, r.finished or float("inf"), r.pid or 0) for r in started]
    assert overlapping(sorted(history, key=lambda i: i.start)) == []
    intervals = task_intervals(runs, entry)
    assert len(intervals) >= 2
    assert overlapping(intervals) == []
    log = uwsgi.log()
    assert count_lines(log, rf"WARNING spoolcron\.dispatch fire skipped entry={entry} ") >= len(
        [s for s in skipped if s.due <= last]
    )


def test_overlap_allow_runs_concurrently_on_several_spoolers(
    run_uwsgi: RunUwsgi, spool_dir: Path, runs: Runs, project_db: Database
) -> None:
    """The same task with overlap="allow" and three spoolers: runs overlap, none is skipped."""
    entry = "overlap-allow"
    uwsgi = start_beat(
        run_uwsgi, spool_dir, runs, project_db, "beat_overlap_allow", "--spooler-processes=3"
    )
    wait_for(
        uwsgi,
        lambda: len(task_intervals(runs, entry)) >= 3,
        25,
        "three finished runs",
    )
    uwsgi.stop()

    rows = run_rows(project_db, entry)
    assert [r for r in rows if r.outcome == "skipped"] == []
    # Each fire started once, while earlier ones were still running.
    last = max(r.due for r in rows if r.outcome == "succeeded")
    fires = [f for f in fire_times(project_db, entry) if f <= last]
    assert gaps(fires, 1) == []
    assert sorted(r.due for r in rows if r.due <= last) == fires
    assert overlapping(task_intervals(runs, entry)) != []


# --- 4. invalid entries ----------------------------------------------------------------------

BROKEN = (
    "entry 'broken' in tests.integration.apps.beat_bad_expression: Cannot parse schedule "
    "'every fortnight': unknown word 'fortnight' at position 6; write e.g. 'every 5 minutes'."
)


def test_an_invalid_entry_never_stops_uwsgi(
    run_uwsgi: RunUwsgi, spool_dir: Path, runs: Runs, project_db: Database
) -> None:
    """A typo in a schedules module is not an outage: the mule logs it loudly, the beat runs
    the valid entries without it, and the web goes on serving."""
    uwsgi = start_beat(run_uwsgi, spool_dir, runs, project_db, "beat_bad_expression")
    uwsgi.wait_until(lambda: "fine" in runs.labels() or None, 10, message="the valid entry")
    log = uwsgi.log()
    assert f"CRITICAL spoolcron.uwsgi {BROKEN} (spoolcron.E002)\n" in log, log
    assert (
        "ERROR spoolcron.uwsgi spoolcron: the beat runs without the invalid entries and the web "
        "goes on serving; fix them and reload invalid=1\n"
    ) in log
    assert f"ERROR spoolcron.uwsgi invalid entry, not run: {BROKEN} (spoolcron.E002)\n" in log
    assert "stopping uWSGI" not in log
    assert uwsgi.running()
    port = re.search(r"--http-socket=127\.0\.0\.1:(\d+)", " ".join(uwsgi.options))
    assert port is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{port[1]}/enqueue/?label=web") as reply:
        assert reply.status == 200
    assert "broken" not in runs.labels()
    entries = {row[0] for row in project_db.query("SELECT entry FROM spoolcron_fireclaim")}
    assert "fine" in entries
    assert "broken" not in entries


def test_invalid_entry_fails_the_system_checks(spool_dir: Path) -> None:
    """The same module fails `manage.py check` with the same message."""
    result = subprocess.run(
        [sys.executable, "-m", "django", "check"],
        cwd=REPO,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "SPOOLCRON_SPOOL_DIR": str(spool_dir),  # exists: no spoolcron.W011 beside it
            "SPOOLCRON_TEST_MODULES": f"{APPS}.beat_bad_expression",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"?: (spoolcron.E002) {BROKEN}\n" in result.stderr, result.stderr
    assert "System check identified 1 issue" in result.stderr
