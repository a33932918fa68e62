"""Waking a spool directory's spoolers from any process (a job due now): only processes that
work in that directory, named by a fresh heartbeat, and never a worker's."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from spoolcron.spool import files, heartbeat

from .integration.harness import wait_until

# Stands in for a uWSGI spooler: works in its directory, says when SIGUSR1 arrives.
LISTENER = """
import signal, sys, time
def woken(signum, frame):
    print("woken", flush=True)
signal.signal(signal.SIGUSR1, woken)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    spool = files.ensure_dir(tmp_path / "spool")
    process = subprocess.Popen(
        [sys.executable, "-c", LISTENER], cwd=spool, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    try:
        yield process, spool
    finally:
        process.kill()
        process.wait(10)


def test_a_due_job_wakes_the_spoolers_of_its_directory(
    listener: tuple[subprocess.Popen[str], Path],
) -> None:
    process, spool = listener
    heartbeat.write(spool, spooler_pids=[process.pid], frequency=None)
    assert heartbeat.wake_spoolers(spool, spool) == 1
    assert process.stdout is not None
    assert wait_until(lambda: process.stdout.readline() == "woken\n" or None, 10)


def test_a_pid_working_elsewhere_is_not_signalled(
    listener: tuple[subprocess.Popen[str], Path], tmp_path: Path
) -> None:
    process, spool = listener
    other = files.ensure_dir(tmp_path / "other")
    heartbeat.write(other, spooler_pids=[process.pid], frequency=None)
    assert heartbeat.wake_spoolers(other, other) == 0  # its cwd is another directory
    heartbeat.write(spool, spooler_pids=[process.pid], frequency=None, worker=True)
    assert heartbeat.wake_spoolers(spool, spool) == 0  # a worker watches by itself
    assert process.poll() is None


def test_without_a_fresh_heartbeat_nothing_is_signalled(tmp_path: Path) -> None:
    spool = files.ensure_dir(tmp_path / "spool")
    assert heartbeat.wake_spoolers(spool, spool) == 0
