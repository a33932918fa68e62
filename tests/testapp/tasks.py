"""Tasks the test suite runs, in the spooler and in-process. Each records its runs in a file."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import spoolcron


def _record(name: str, **fields: object) -> None:
    # Tests point SPOOLCRON_TEST_RESULTS at a directory; one JSON line per run.
    directory = os.environ.get("SPOOLCRON_TEST_RESULTS")
    if not directory:
        return
    line = json.dumps({"task": name, "time": time.time(), "pid": os.getpid(), **fields})
    with open(Path(directory) / "runs.jsonl", "a") as out:
        out.write(line + "\n")


@spoolcron.task
def record(label: str, **extra: object) -> str:
    _record("record", label=label, **extra)
    return label


@spoolcron.task
def where(label: str) -> str:
    """Records which host ran it: the spool directory its spooler serves."""
    _record("where", label=label, spool=os.environ.get("SPOOLCRON_SPOOL_DIR", ""))
    return label


@spoolcron.task
async def record_async(label: str) -> str:
    _record("record_async", label=label)
    return label


@spoolcron.task(retries=2, retry_backoff=0.5)
def flaky(label: str, fail_times: int) -> None:
    """Fails its first ``fail_times`` attempts (counted in the results dir)."""
    directory = Path(os.environ["SPOOLCRON_TEST_RESULTS"])
    counter = directory / f"flaky-{label}.count"
    count = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(count + 1))
    _record("flaky", label=label, attempt=count + 1)
    if count < fail_times:
        raise RuntimeError(f"flaky {label} failing on purpose, attempt {count + 1}")


@spoolcron.task
def always_fails(label: str) -> None:
    _record("always_fails", label=label)
    raise ValueError(f"always_fails {label}")


@spoolcron.task
def slow(label: str, release_file: str) -> None:
    """Runs until ``release_file`` exists (or 60 s), so tests can act while a job runs."""
    _record("slow-start", label=label)
    deadline = time.monotonic() + 60
    while not os.path.exists(release_file) and time.monotonic() < deadline:
        time.sleep(0.01)
    _record("slow-end", label=label)


@spoolcron.task
def sleepy(label: str, seconds: float) -> None:
    """Takes ``seconds``; records its start and end, so tests can tell whether runs overlap."""
    _record("sleepy-start", label=label)
    time.sleep(seconds)
    _record("sleepy-end", label=label)


@spoolcron.task
def noop() -> None:
    """Does nothing; the test app's own schedules.py runs it (and must not disturb runs.jsonl)."""


@spoolcron.task
def returns_object() -> object:
    """Returns what JSON cannot carry: the job still succeeds, the value is not stored."""
    return object()


@spoolcron.task(timeout=1, retries=1, retry_backoff=0.5)
def oversleeps(label: str, seconds: float = 10) -> None:
    """Sleeps past its 1 s timeout: each attempt is stopped; records its start (and an end that
    must never come)."""
    _record("oversleeps-start", label=label)
    time.sleep(seconds)
    _record("oversleeps-end", label=label)


# Django's @task functions are found by the same autodiscovery of tasks modules.
from . import framework_tasks  # noqa: E402, F401


@spoolcron.task(remote=True)
def remote_record(label: str) -> str:
    """Accepts signed requests from other uWSGI instances; records where it ran."""
    _record("remote_record", label=label, spool=os.environ.get("SPOOLCRON_SPOOL_DIR", ""))
    return label


@spoolcron.task(nginx={"group": "group", "subject": "subject"})
def mass_mail(group: str, subject: str = "") -> None:
    """Enqueued by nginx (the uWSGI docs' /sendmassmail example): records its arguments."""
    _record("mass_mail", group=group, subject=subject)
