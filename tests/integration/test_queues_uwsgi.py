"""Queues under a real uWSGI: a long job in one queue does not hold up another queue's
fires, a queue with four spooler processes runs four jobs at once, each once; and remote
queues: jobs sent over the uwsgi protocol (modifier1 17) from this plain Python process to
another uWSGI instance each run once there, a stopped instance is an error at enqueue,
forged, unsigned and wrong-task requests are quarantined with their reasons, never run, and a
request sent again within its validity runs once."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import spoolcron
from spoolcron.core.payload import MARKER, Payload
from spoolcron.core.remote import request_args
from spoolcron.exceptions import RemoteSpoolError
from spoolcron.spool import files, remote
from tests.conftest import Runs
from tests.settings import TEST_REMOTE_KEY
from tests.testapp import tasks

from .conftest import RunUwsgi
from .harness import UwsgiProcess, free_port
from .project import Database
from .test_beat_uwsgi import beat_env, beat_options

pytestmark = [pytest.mark.uwsgi, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue_dirs(tmp_path: Path, settings: Any) -> dict[str, Path]:
    dirs = {name: files.ensure_dir(tmp_path / name) for name in ("spool", "slow", "wide")}
    queues = {
        "slow": {"spool_dir": str(dirs["slow"])},
        "wide": {"spool_dir": str(dirs["wide"]), "processes": 4},
    }
    settings.SPOOLCRON = {"SPOOL_DIR": str(dirs["spool"]), "QUEUES": queues}
    return dirs


def test_a_long_job_in_one_queue_does_not_delay_another_and_four_processes_run_four_jobs(
    run_uwsgi: RunUwsgi, queue_dirs: dict[str, Path], runs: Runs, project_db: Database
) -> None:
    spool, slow, wide = queue_dirs["spool"], queue_dirs["slow"], queue_dirs["wide"]
    env = beat_env(spool, runs, project_db, "beat_every_second")
    env["SPOOLCRON_TEST_QUEUES"] = json.dumps(
        {"slow": {"spool_dir": str(slow)}, "wide": {"spool_dir": str(wide), "processes": 4}}
    )
    uwsgi = run_uwsgi(
        *beat_options(spool, f"--spooler={slow}", *[f"--spooler={wide}"] * 4, "--processes=1"),
        env=env,
    )
    uwsgi.wait_for_log("spoolcron mule started")
    assert "spoolcron.E031" not in uwsgi.log()
    assert "spoolcron.W032" not in uwsgi.log()

    def fires() -> list[float]:
        return [r["time"] for r in runs.all() if r.get("label") == "every-second"]

    uwsgi.wait_until(lambda: len(fires()) >= 2 or None, 15, message="the every-second entry")
    spoolcron.schedule(tasks.sleepy, ["slow-5"], {"seconds": 5}, queue="slow")

    def sleepy(kind: str, label: str) -> list[dict[str, Any]]:
        return [r for r in runs.all() if r["task"] == f"sleepy-{kind}" and r["label"] == label]

    uwsgi.wait_until(lambda: sleepy("end", "slow-5") or None, 15, message="the 5 s job")
    [start] = [r["time"] for r in sleepy("start", "slow-5")]
    [end] = [r["time"] for r in sleepy("end", "slow-5")]
    during = [t for t in fires() if start < t < end]
    # One spooler per queue: the entry's fires ran while the slow queue's job slept, each
    # started within its own second (late by less than a quarter second; ~ms when idle).
    assert len(during) >= 4, (start, end, fires())
    assert max(t - math.floor(t) for t in during) < 0.25, during

    labels = [f"wide-{n}" for n in range(4)]
    spoolcron.schedule_many(
        tasks.sleepy,
        [{"args": [label], "kwargs": {"seconds": 2}} for label in labels],
        queue="wide",
    )
    uwsgi.wait_until(
        lambda: all(sleepy("end", label) for label in labels) or None, 20, message="4 jobs"
    )
    starts = [r for label in labels for r in sleepy("start", label)]
    ends = [r for label in labels for r in sleepy("end", label)]
    assert sorted(r["label"] for r in starts) == labels  # each once
    assert len({r["pid"] for r in starts}) == 4  # four spooler processes, one job each
    assert max(r["time"] for r in ends) - min(r["time"] for r in starts) < 3.5


# --- remote queues ------------------------------------------------------------------------------


@pytest.fixture
def receiver(
    run_uwsgi: RunUwsgi, tmp_path: Path, runs: Runs, project_db: Database, settings: Any
) -> tuple[UwsgiProcess, str, Path]:
    """A remote uWSGI instance with a spooler, the mule and a uwsgi socket; this process
    sends to it through the queue "far"."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    spool = files.ensure_dir(tmp_path / "remote" / "spool")
    uwsgi = run_uwsgi(
        *beat_options(spool, f"--socket={address}", "--processes=2"),
        env=beat_env(spool, runs, project_db),
    )
    uwsgi.wait_for_log("spoolcron mule started")
    local = files.ensure_dir(tmp_path / "local")
    settings.SPOOLCRON = {
        "SPOOL_DIR": str(local),
        "QUEUES": {"far": {"address": address, "timeout": 5}},
        "REMOTE_KEYS": [TEST_REMOTE_KEY],
    }
    return uwsgi, address, spool


def test_jobs_sent_to_a_remote_queue_each_run_once_there(
    receiver: tuple[UwsgiProcess, str, Path], runs: Runs, tmp_path: Path
) -> None:
    uwsgi, _address, spool = receiver
    labels = [f"r{n}" for n in range(1000)]
    for label in labels:
        spoolcron.schedule(tasks.remote_record, [label], queue="far")
    assert files.list_files(tmp_path / "local") == []  # nothing stayed here

    def ran() -> list[dict[str, Any]] | None:
        found = [r for r in runs.all() if r["task"] == "remote_record"]
        return found if len(found) >= len(labels) else None

    records = uwsgi.wait_until(ran, 60, message="1,000 remote jobs to run")
    time.sleep(0.5)  # none runs twice: a second run would be recorded by now
    records = [r for r in runs.all() if r["task"] == "remote_record"]
    assert Counter(r["label"] for r in records) == Counter(labels)
    assert {r["spool"] for r in records} == {str(spool)}


def test_forged_unsigned_and_wrong_task_requests_are_quarantined_and_never_run(
    receiver: tuple[UwsgiProcess, str, Path], runs: Runs
) -> None:
    uwsgi, address, spool = receiver
    failed = spool.parent / "failed"

    def payload(task: str, label: str) -> Payload:
        return Payload(task, f"job-{label}", time.time(), args=[label])

    def signed(task: str, label: str, key: bytes) -> dict[bytes, bytes]:
        job = payload(task, label)
        return request_args(job, job.to_body(), key=key, expires=time.time() + 60)

    forged = signed("tests.testapp.tasks.remote_record", "forged", b"not-the-key-" * 3)
    unsigned = {MARKER: b"1", b"task": b"tests.testapp.tasks.remote_record", b"job": b"j"}
    wrong_task = signed("tests.testapp.tasks.record", "wrong-task", TEST_REMOTE_KEY.encode())
    for args in (forged, unsigned, wrong_task):
        remote.send(address, args, timeout=5, job="test")  # uWSGI takes each: the file is written

    def reasons() -> list[str] | None:
        found = sorted(p.read_text() for p in failed.glob("*.reason.txt"))
        return found if len(found) >= 3 else None

    texts = uwsgi.wait_until(reasons, 20, message="three quarantined requests")
    assert len(texts) == 3
    assert (
        sum("whose signature no key of SPOOLCRON['REMOTE_KEYS'] verifies" in t for t in texts) == 1
    )
    assert sum("is a remote request without a signature" in t for t in texts) == 1
    assert sum("which does not accept remote jobs" in t for t in texts) == 1
    spoolcron.schedule(tasks.remote_record, ["after"], queue="far")
    uwsgi.wait_until(lambda: "after" in runs.labels() or None, 10, message="a good job after")
    assert set(runs.labels()) == {"after"}  # none of the refused ones ran


def test_a_request_sent_again_within_its_validity_runs_once(
    receiver: tuple[UwsgiProcess, str, Path], runs: Runs
) -> None:
    """Someone who captured a signed request sends it again before it expires: the job ran
    once, the copy is quarantined naming the file that brought the job first."""
    uwsgi, address, spool = receiver
    job = Payload("tests.testapp.tasks.remote_record", "job-replayed", time.time(), args=["once"])
    args = request_args(job, job.to_body(), key=TEST_REMOTE_KEY.encode(), expires=time.time() + 60)
    remote.send(address, args, timeout=5, job="test")
    uwsgi.wait_until(lambda: runs.labels() or None, 20, message="the first request's run")
    remote.send(address, args, timeout=5, job="test")  # uWSGI takes it: the file is written

    def reason() -> str | None:
        found = [p.read_text() for p in (spool.parent / "failed").glob("*.reason.txt")]
        return found[0] if found else None

    text = uwsgi.wait_until(reason, 20, message="the copy quarantined")
    assert "is a remote request for job 'job-replayed', which this host received before in" in text
    assert "(sent again, or replayed): refused, not run." in text
    spoolcron.schedule(tasks.remote_record, ["after"], queue="far")
    uwsgi.wait_until(lambda: "after" in runs.labels() or None, 10, message="a good job after")
    assert runs.labels().count("once") == 1


def test_a_stopped_remote_instance_is_an_error_at_enqueue(
    receiver: tuple[UwsgiProcess, str, Path],
) -> None:
    uwsgi, address, _ = receiver
    uwsgi.stop()
    with pytest.raises(RemoteSpoolError) as caught:
        spoolcron.schedule(tasks.remote_record, ["lost?"], queue="far")
    assert f"on the remote spooler {address!r}: Connection refused." in str(caught.value)
    assert caught.value.address == address
