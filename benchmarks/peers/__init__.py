"""The systems spoolcron is compared with, each run as its own processes.

``celery_beat`` (Celery beat + a worker on a local Redis), ``apscheduler`` (a
``BlockingScheduler`` process) and ``raw_uwsgi`` (uWSGI's spooler and timers, no spoolcron).
This module holds what they share: ``NotRun`` (a peer that cannot run here says why, and its
rows say so instead of failing the benchmark), ``Spawned`` (a child process in its own
session, stopped by its pid), and readers of ``/proc`` and of the JSON lines the tasks write.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

__all__ = [
    "NotRun",
    "Spawned",
    "cpu_seconds",
    "read_jsonl",
    "require",
    "rss_kib",
    "spawn",
    "wait_for",
]

STOP_TIMEOUT = 15.0


class NotRun(Exception):
    """This peer cannot run on this machine; the message says why, in one sentence."""


def require(module: str, what: str) -> None:
    """Raise NotRun unless *module* can be imported (the ``bench`` extra installs it)."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise NotRun(f"not run: {what} is not installed (pip install -e '.[bench]')")


class Spawned:
    """A child process started in its own session; ``stop()`` ends its process group."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def check(self, name: str) -> None:
        """Raise if the process has exited, with the tail of its log."""
        if not self.running():
            tail = "\n".join(self.log().splitlines()[-20:])
            raise AssertionError(
                f"{name} exited with status {self.process.returncode}; log {self.log_path}:\n{tail}"
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_TIMEOUT)
        # Whatever it left behind in its group (Celery's pool children), and never another's:
        # the group id is our child's pid, which stays ours until we reap it below.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait()


@contextlib.contextmanager
def spawn(
    argv: Sequence[str], *, log_path: Path, env: Mapping[str, str], cwd: Path
) -> Iterator[Spawned]:
    """Run *argv* (``sys.executable`` for a leading "python") until the block ends."""
    command = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            cwd=cwd,
            start_new_session=True,
        )
    child = Spawned(process, log_path)
    try:
        yield child
    finally:
        child.stop()


def read_jsonl(path: Path) -> list[dict[str, object]]:
    """The whole lines of a JSON-lines file (a line being written is left out)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of *pid* so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the ")" closing the command name: state is field 3, utime 14 and stime 15.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Resident set size of *pid* in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"No VmRSS line in /proc/{pid}/status.")


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.1
) -> None:
    """Poll *predicate* until it returns something true; AssertionError after *timeout*."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout:g} s waiting for {what}.")
        time.sleep(interval)
