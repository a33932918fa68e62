"""Django's Tasks framework on a real uWSGI spooler: the framework's own usage examples.

A uWSGI worker enqueues (``my_task.enqueue(...)``, ``my_task.using(run_after=...).enqueue(...)``)
and reads results back (``get_result(id)``, ``result.refresh()``) through the views of
tests/testapp/views.py; the spooler, woken by the spoolcron mule, runs the tasks.
"""

from __future__ import annotations

import json
import socket
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import spoolcron
from spoolcron.spool import files
from tests.conftest import Runs

from .conftest import RunUwsgi
from .harness import UwsgiProcess, free_port
from .project import Database

pytestmark = [pytest.mark.uwsgi]

APPS = "tests.integration.apps"


class Server:
    def __init__(self, uwsgi: UwsgiProcess, port: int) -> None:
        self.uwsgi = uwsgi
        self.port = port

    def get(self, path: str, **query: Any) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}{path}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(url, timeout=60) as reply:
            document: dict[str, Any] = json.load(reply)
            return document

    def enqueue(self, task: str, *args: Any, **query: Any) -> dict[str, Any]:
        return self.get("/tasks/enqueue/", task=task, args=json.dumps(args), **query)

    def result(self, result_id: str, wait: float = 0) -> dict[str, Any]:
        return self.get("/tasks/result/", id=result_id, wait=wait)


def start(
    run_uwsgi: RunUwsgi, tmp_path: Path, runs: Runs, project_db: Database, modules: str = ""
) -> Server:
    spool = files.ensure_dir(tmp_path / "spool")
    port = free_port()
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "SPOOLCRON_SPOOL_DIR": str(spool),
        "SPOOLCRON_TEST_RESULTS": str(runs.directory),
        **project_db.env,
    }
    if modules:
        env["SPOOLCRON_TEST_MODULES"] = modules
    uwsgi = run_uwsgi(
        f"--http-socket=127.0.0.1:{port}",
        "--module=tests.wsgi",
        f"--spooler={spool}",
        "--spooler-frequency=60",  # anything that runs within seconds was woken by the mule
        "--shared-import=spoolcron.uwsgi",
        f"--mule={Path(spoolcron.__file__).parent / 'mule.py'}",
        "--processes=2",
        env=env,
    )
    uwsgi.wait_for_log("spoolcron mule started")
    return Server(uwsgi, port)


@pytest.fixture
def server(run_uwsgi: RunUwsgi, tmp_path: Path, runs: Runs, project_db: Database) -> Server:
    return start(run_uwsgi, tmp_path, runs, project_db)


def test_enqueue_then_get_result_sees_it_succeed(server: Server, runs: Runs) -> None:
    enqueued = server.enqueue("add", 2, 3)
    assert enqueued["status"] == "READY"
    done = server.result(enqueued["id"], wait=20)
    assert done["status"] == "SUCCESSFUL", done
    assert (done["return_value"], done["attempts"], done["errors"]) == (5, 1, [])
    [worker] = done["worker_ids"]
    assert worker.split(":")[0] == socket.gethostname()
    assert int(worker.split(":")[1]) in server.uwsgi.spooler_pids()
    assert done["enqueued_at"] <= done["started_at"] <= done["finished_at"]
    assert runs.labels("add") == ["2+3"]


def test_run_after_is_never_early(server: Server, runs: Runs) -> None:
    enqueued = server.enqueue("add", 1, 2, delay=2)
    assert server.result(enqueued["id"])["status"] == "READY"
    done = server.result(enqueued["id"], wait=20)
    assert (done["status"], done["return_value"]) == ("SUCCESSFUL", 3)
    [run] = [r for r in runs.all() if r["task"] == "add"]
    assert run["time"] >= enqueued["run_after"]
    assert done["started_at"] >= enqueued["run_after"]
    assert done["run_after"] == enqueued["run_after"]


def test_a_failing_task_is_failed_with_its_traceback(server: Server, runs: Runs) -> None:
    enqueued = server.enqueue("fail", "boom")
    done = server.result(enqueued["id"], wait=20)
    assert done["status"] == "FAILED", done
    [error] = done["errors"]
    assert error["exception_class_path"] == "builtins.ValueError"
    assert error["traceback"].endswith("ValueError: fail boom on purpose\n")
    # The framework's signals, sent in the spooler (a receiver in framework_tasks records them).
    signals = [r for r in runs.all() if r["task"] == "signal"]
    assert [r["label"] for r in signals] == [
        f"started {enqueued['id']} RUNNING",
        f"finished {enqueued['id']} FAILED",
    ]
    assert {r["pid"] for r in signals} == set(server.uwsgi.spooler_pids())
    assert server.uwsgi.running()


def test_an_async_task(server: Server, runs: Runs) -> None:
    enqueued = server.enqueue("add_async", 20, 22)
    done = server.result(enqueued["id"], wait=20)
    assert (done["status"], done["return_value"]) == ("SUCCESSFUL", 42)


def test_a_django_task_in_a_periodic_entry(
    run_uwsgi: RunUwsgi, tmp_path: Path, runs: Runs, project_db: Database
) -> None:
    server = start(run_uwsgi, tmp_path, runs, project_db, modules=f"{APPS}.tasks_backend_entry")
    rows = "SELECT id, status, return_value FROM spoolcron_jobresult WHERE entry = 'django-tick'"
    [(job_id, _status, value), *_] = server.uwsgi.wait_until(
        lambda: [r for r in project_db.query(rows) if r[1] == "SUCCESSFUL"] or None,
        20,
        message="a fire of the entry to succeed",
    )
    assert json.loads(value) == "tick"
    fetched = server.result(job_id)
    assert (fetched["status"], fetched["return_value"]) == ("SUCCESSFUL", "tick")
    assert "tick" in runs.labels("tick")
