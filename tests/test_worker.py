"""``manage.py spoolcron worker`` as a real process beside runserver-style settings (SQLite):
the every-second entry fires once a second and each delayed job enqueued from another process
runs once; Ctrl-C mid-job lets it finish (twice aborts it); ``--once`` runs what is due and
exits. Plus the Worker class driven in-process (the heartbeat, --max-jobs, --no-beat).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from spoolcron.spool import files, heartbeat
from tests.conftest import Runs
from tests.integration.harness import wait_until
from tests.integration.project import Database
from tests.integration.test_beat_uwsgi import assert_ran_once, iso, run_rows

REPO = Path(__file__).parents[1]
EVERY_SECOND = "tests.integration.apps.beat_every_second"
STOP_TIMEOUT = 15.0


class WorkerProcess:
    """``python -m django spoolcron worker ARGS`` in its own session, output in a file."""

    def __init__(self, env: Mapping[str, str], log_path: Path, *args: str) -> None:
        self.log_path = log_path
        self.args = args
        log = open(log_path, "wb")  # noqa: SIM115  (closed in stop())
        self._log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "django", "spoolcron", "worker", *args],
            cwd=REPO,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.process.poll() is None

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        wait_until(
            lambda: text in self.log() or not self.running(),
            timeout,
            interval=0.05,
            message=f"{text!r} in the worker's output:\n{self.log()}",
        )
        assert text in self.log(), f"the worker exited:\n{self.log()}"

    def signal(self, signum: int) -> None:
        """To its process group, as a terminal's Ctrl-C (with --reload: the reloader and the
        worker it runs)."""
        os.killpg(self.pid, signum)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the worker did not exit:\n{self.log()}") from None

    def stop(self) -> int | None:
        """SIGINT, a deadline, then SIGKILL to its process group; its exit status."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                self.signal(signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT)
        self._log.close()
        return self.process.returncode


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.integration.project import sqlite_template

    return sqlite_template(tmp_path_factory.mktemp("worker-db"))


@pytest.fixture
def project_db(sqlite_template: Path, tmp_path: Path) -> Database:
    from tests.integration.project import sqlite_database

    return sqlite_database(sqlite_template, tmp_path)


@pytest.fixture
def worker_env(tmp_path: Path, project_db: Database, runs: Runs) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SPOOLCRON_", "DJANGO_")) and key != "PYTHONSTARTUP"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        SPOOLCRON_SPOOL_DIR=str(tmp_path / "spool"),
        SPOOLCRON_TEST_MODULES=EVERY_SECOND,
        SPOOLCRON_TEST_RESULTS=str(runs.directory),
        **project_db.env,
    )
    return env


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Any]:
    started: list[WorkerProcess] = []

    def start(env: Mapping[str, str], *args: str) -> WorkerProcess:
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started) + 1}.log", *args)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in reversed(started):
            worker.stop()


def django_shell(env: Mapping[str, str], code: str) -> None:
    """Run ``code`` in ``manage.py shell``: another process, with the worker's settings."""
    done = subprocess.run(
        [sys.executable, "-m", "django", "shell", "-c", code],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def lateness_ms(db: Database, where: str) -> list[float]:
    rows = db.query(f"SELECT due, started FROM spoolcron_run WHERE {where}")
    from tests.integration.test_beat_uwsgi import timestamp

    return sorted((timestamp(s) - timestamp(d)) * 1000 for d, s in rows)


def report(name: str, late: list[float]) -> None:
    print(
        f"{name}: {len(late)} runs, late_ms median={statistics.median(late):.1f} "
        f"max={max(late):.1f}"
    )


# --- the worker beside runserver ------------------------------------------------------------


def test_worker_runs_each_fire_and_each_job_once(
    start_worker: Any, worker_env: dict[str, str], project_db: Database, runs: Runs
) -> None:
    worker = start_worker(worker_env)
    worker.wait_for_log("spoolcron worker started")
    labels = [f"job-{i}" for i in range(6)]
    # From another process, as a view under runserver would: due within the horizon (spool
    # directory) and one later (the pending store, published by the worker).
    django_shell(
        worker_env,
        "from tests.testapp import tasks\n"
        "for i in range(6):\n"
        "    tasks.record.schedule([f'job-{i}'], run_after=1 + i * 0.4)\n"
        "tasks.record.schedule(['job-later'], run_after=7)\n",
    )
    labels.append("job-later")
    wait_until(
        lambda: (
            set(labels) <= set(runs.labels())
            and len({r.due for r in run_rows(project_db, "every-second")}) >= 6
        ),
        40,
        interval=0.1,
        message=f"the jobs and six fires:\n{worker.log()}",
    )
    assert worker.stop() == 0
    window = assert_ran_once(project_db, runs, "every-second", at_least=6)
    counts = collections.Counter(runs.labels())
    assert {label: counts[label] for label in labels} == dict.fromkeys(labels, 1)
    jobs = project_db.query("SELECT outcome FROM spoolcron_run WHERE entry = ''")
    assert [o for (o,) in jobs] == ["succeeded"] * len(labels)
    # Nothing ran early; how late is printed, not asserted (a shared machine).
    report("fires", lateness_ms(project_db, "entry = 'every-second'"))
    report("jobs", lateness_ms(project_db, "entry = ''"))
    print("fires", iso(window[0]), "...", iso(window[-1]))
    assert min(lateness_ms(project_db, "1 = 1")) >= 0
    assert "Ran " in worker.log()
    assert "stopped: stop." in worker.log()


def test_ctrl_c_mid_job_lets_it_finish(
    start_worker: Any, worker_env: dict[str, str], project_db: Database, runs: Runs, tmp_path: Path
) -> None:
    worker_env["SPOOLCRON_TEST_MODULES"] = ""
    worker = start_worker(worker_env, "--no-beat")
    worker.wait_for_log("spoolcron worker started")
    release = tmp_path / "release"
    django_shell(
        worker_env,
        f"from tests.testapp import tasks\ntasks.slow.delay('slow', {str(release)!r})\n",
    )
    wait_until(
        lambda: "slow-start" in [r["task"] for r in runs.all()], 30, message="the job to start"
    )
    worker.signal(signal.SIGINT)
    worker.wait_for_log("SIGINT received: finishing the running job")
    assert worker.running()  # the job holds it
    release.touch()
    assert worker.wait() == 0
    assert [r["task"] for r in runs.all()] == ["slow-start", "slow-end"]
    assert project_db.query("SELECT outcome FROM spoolcron_run") == [("succeeded",)]
    assert files.list_files(tmp_path / "spool") == []


def test_a_second_ctrl_c_aborts_the_job(
    start_worker: Any, worker_env: dict[str, str], runs: Runs, tmp_path: Path
) -> None:
    worker_env["SPOOLCRON_TEST_MODULES"] = ""
    worker = start_worker(worker_env, "--no-beat")
    worker.wait_for_log("spoolcron worker started")
    django_shell(
        worker_env,
        f"from tests.testapp import tasks\ntasks.slow.delay('slow', {str(tmp_path / 'never')!r})\n",
    )
    wait_until(lambda: "slow-start" in [r["task"] for r in runs.all()], 30, message="the job")
    worker.signal(signal.SIGTERM)
    worker.wait_for_log("SIGTERM received: finishing")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 130
    assert "Aborted: the running job was interrupted; it runs again later." in worker.log()
    assert [r["task"] for r in runs.all()] == ["slow-start"]
    # Its file stays: at least once, it runs again.
    assert len(files.list_files(tmp_path / "spool")) == 1


def once(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django", "spoolcron", "worker", "--once", *args],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_once_runs_what_is_due_and_exits(
    worker_env: dict[str, str], project_db: Database, runs: Runs, tmp_path: Path
) -> None:
    first = once(worker_env)  # the beat starts watching the entry: nothing is owed yet
    assert first.returncode == 0, first.stderr
    assert "Ran 0 job(s); stopped: once." in first.stdout
    started = time.time()
    django_shell(
        worker_env,
        "from tests.testapp import tasks\n"
        "tasks.record.schedule(['due-now'])\n"
        "tasks.record.schedule(['due-soon'], run_after=0.5)\n"
        "tasks.record.schedule(['tomorrow'], run_after=86400)\n",
    )
    # Let two fires of the every-second entry come due (a deadline, not a guess).
    wait_until(lambda: time.time() >= started + 2.5, 10)
    done = once(worker_env)
    assert done.returncode == 0, done.stderr
    fires = [r for r in run_rows(project_db, "every-second")]
    assert len(fires) >= 1  # the fires owed since the first --once (coalesced if > 5 s late)
    assert len({r.due for r in fires}) == len(fires)
    assert {r.outcome for r in fires} == {"succeeded"}
    assert sorted(label for label in runs.labels() if label != "every-second") == [
        "due-now",
        "due-soon",
    ]
    assert f"Ran {len(fires) + 2} job(s); stopped: once." in done.stdout
    # Failing jobs make the exit status 1, as with run-due.
    django_shell(worker_env, "from tests.testapp import tasks\ntasks.always_fails.delay('x')\n")
    failed = once(worker_env, "--no-beat")
    assert failed.returncode == 1
    assert "CommandError: 1 of 1 job(s) failed." in failed.stderr


def test_max_jobs_exits_after_n_jobs(
    start_worker: Any, worker_env: dict[str, str], runs: Runs
) -> None:
    worker_env["SPOOLCRON_TEST_MODULES"] = ""
    django_shell(
        worker_env,
        "from tests.testapp import tasks\nfor i in range(3):\n    tasks.record.delay(f'm{i}')\n",
    )
    worker = start_worker(worker_env, "--max-jobs", "2", "--no-beat")
    assert worker.wait(60) == 0
    assert "stopped: max-jobs." in worker.log()
    assert len(runs.labels()) == 2


def test_the_worker_heartbeat_makes_health_see_a_spooler(
    start_worker: Any, worker_env: dict[str, str], tmp_path: Path
) -> None:
    worker_env["SPOOLCRON_TEST_MODULES"] = ""
    worker = start_worker(worker_env, "--no-beat")
    worker.wait_for_log("spoolcron worker started")
    spool = tmp_path / "spool"
    beat = wait_until(lambda: heartbeat.read(spool), 10, message="the heartbeat")
    assert (beat["worker"], beat["spooler_pids"]) == (True, [worker.pid])
    done = subprocess.run(
        [sys.executable, "-m", "django", "spoolcron", "health", "--json"],
        cwd=REPO,
        env=worker_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"spooler_attached": true' in done.stdout
    assert worker.stop() == 0


def test_reload_restarts_the_worker_on_code_change(
    start_worker: Any, worker_env: dict[str, str], tmp_path: Path
) -> None:
    package = tmp_path / "reloadme"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "schedules.py"
    module.write_text("ENTRIES = []\n")
    worker_env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO)])
    worker_env["SPOOLCRON_TEST_MODULES"] = "reloadme.schedules"
    worker = start_worker(worker_env, "--reload")
    worker.wait_for_log("spoolcron worker started")
    wait_until(lambda: worker.log().count("spoolcron worker started") == 1, 5)
    # The autoreloader compares each module's mtime with its first look at it, which comes
    # a tick (1 s) or, on a loaded machine, several after the import: a change made before
    # that look goes unseen. So the module changes again every 2 s until a restart shows.
    changes = itertools.count(1)

    def restarted() -> bool:
        if worker.log().count("spoolcron worker started") >= 2:
            return True
        if time.time() > module.stat().st_mtime + 2:
            module.write_text(f"ENTRIES = []  # change {next(changes)}\n")
        return False

    wait_until(restarted, 60, interval=0.1, message=f"a restart:\n{worker.log()}")
    assert worker.stop() == 0


def test_a_worker_per_queue_runs_that_queues_jobs(
    worker_env: dict[str, str], runs: Runs, tmp_path: Path
) -> None:
    worker_env["SPOOLCRON_TEST_MODULES"] = ""
    worker_env["SPOOLCRON_TEST_QUEUES"] = json.dumps(
        {"slow": {"spool_dir": str(tmp_path / "slow")}}
    )
    django_shell(
        worker_env,
        "from tests.testapp import tasks\n"
        "tasks.record.schedule(['in-slow'], queue='slow')\n"
        "tasks.record.schedule(['in-default'])\n",
    )
    slow = once(worker_env, "--no-beat", "--queue", "slow")
    assert slow.returncode == 0, slow.stderr
    assert runs.labels() == ["in-slow"]
    unknown = once(worker_env, "--no-beat", "--queue", "fast")
    assert unknown.returncode == 1
    assert (
        "CommandError: Unknown local queue 'fast'; SPOOLCRON['QUEUES'] has 'default', 'slow' here."
        in unknown.stderr
    )
    default = once(worker_env, "--no-beat")
    assert default.returncode == 0, default.stderr
    assert runs.labels() == ["in-slow", "in-default"]
