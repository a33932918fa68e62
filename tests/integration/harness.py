"""Start and stop real uWSGI processes for the integration tests.

``run_uwsgi(...)`` starts the uWSGI binary of the running virtualenv in its own session
(process group) with ``--master --die-on-term``, logs to a file, waits until it is up and
on exit stops it by its pid: SIGINT, a deadline, then SIGKILL to its process group.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Literal, TypeVar

__all__ = [
    "UwsgiProcess",
    "free_port",
    "live_pids",
    "pid_alive",
    "run_uwsgi",
    "uwsgi_binary",
    "wait_until",
]

T = TypeVar("T")

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
LOG_TAIL_LINES = 40

_SPOOLER_LINE = re.compile(r"spawned the uWSGI spooler on dir (?P<dir>.+) with pid (?P<pid>\d+)")
_WORKER_LINE = re.compile(r"spawned uWSGI worker (?P<id>\d+) .*\(pid: (?P<pid>\d+)")
_MULE_LINE = re.compile(r"spawned uWSGI mule (?P<id>\d+) \(pid: (?P<pid>\d+)\)")


def uwsgi_binary() -> Path:
    """The ``uwsgi`` installed in the virtualenv that runs the tests."""
    return Path(sys.executable).parent / "uwsgi"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    interval: float = 0.02,
    message: str = "condition",
    uwsgi: UwsgiProcess | None = None,
) -> T:
    """Poll *predicate* until it returns something truthy and return that.

    On timeout raise AssertionError naming *message*, with the tail of *uwsgi*'s log.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = f"Timed out after {timeout}s waiting for {message}."
            if uwsgi is not None:
                detail += f"\n--- tail of the uWSGI log {uwsgi.log_path} ---\n{_tail(uwsgi.log())}"
            raise AssertionError(detail)
        time.sleep(interval)


class UwsgiProcess:
    """One uWSGI master started with ``--master --die-on-term`` plus *options*."""

    def __init__(
        self,
        *options: str,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        binary: str | os.PathLike[str] | None = None,
    ) -> None:
        self.binary = Path(binary) if binary is not None else uwsgi_binary()
        self.options = tuple(options)
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="uwsgi-", suffix=".log")
            os.close(fd)
            log_path = name
        self.log_path = Path(log_path)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        return [
            str(self.binary),
            "--master",
            "--die-on-term",
            # The pip-built binary embeds the base interpreter; point it at the venv.
            "--virtualenv",
            sys.prefix,
            *self.options,
        ]

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("uWSGI has not been started.")
        return self.process.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = START_TIMEOUT) -> UwsgiProcess:
        """Start uWSGI and wait until its workers, spoolers and mules are spawned."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        try:
            self.wait_until(self._is_up, timeout, message="uWSGI to start")
        except BaseException:
            self.stop()
            raise
        return self

    def _count(self, name: str) -> int:
        return sum(1 for o in self.options if o == name or o.startswith(name + "="))

    def _is_up(self) -> bool:
        if not self.running():
            raise AssertionError(
                f"uWSGI exited with status {self.returncode()} while starting.\n"
                f"--- tail of the uWSGI log {self.log_path} ---\n{_tail(self.log())}"
            )
        text = self.log()
        if not _WORKER_LINE.search(text):
            return False
        spoolers = self._count("--spooler")
        processes = self._option_int("--spooler-processes", 1)
        if len(_SPOOLER_LINE.findall(text)) < spoolers * processes:
            return False
        mules = self._count("--mule") + self._option_int("--mules", 0)
        return len(_MULE_LINE.findall(text)) >= mules

    def _option_int(self, name: str, default: int) -> int:
        for i, option in enumerate(self.options):
            if option.startswith(name + "="):
                return int(option.split("=", 1)[1])
            if option == name and i + 1 < len(self.options):
                return int(self.options[i + 1])
        return default

    def running(self) -> bool:
        return self.process is not None and self.returncode() is None

    def returncode(self) -> int | None:
        """The master's exit status (negative: killed by that signal), None while it runs.

        Never reaps the master (see :meth:`stop`), so its pid stays ours until then.
        """
        if self.process is None:
            return None
        if self.process.returncode is not None:
            return self.process.returncode
        return _exit_status(self.process.pid)

    def wait_until(
        self, predicate: Callable[[], T | None], timeout: float, message: str = "condition"
    ) -> T:
        return wait_until(predicate, timeout, message=message, uwsgi=self)

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Wait until a line of the log matches the regular expression *pattern* (``^`` and
        ``$`` match at each line)."""
        regex = re.compile(pattern, re.MULTILINE)
        return self.wait_until(
            lambda: regex.search(self.log()), timeout, message=f"log line {pattern!r}"
        )

    def spooler_pids(self) -> list[int]:
        """The current pid of each spooler, from the (re)spawn lines of the log, oldest first."""
        latest: dict[str, int] = {}
        order: list[str] = []
        for match in _SPOOLER_LINE.finditer(self.log()):
            if match["dir"] not in latest:
                order.append(match["dir"])
            latest[match["dir"]] = int(match["pid"])
        if self._option_int("--spooler-processes", 1) > 1:
            # Several spoolers share a dir: keep every pid that is still alive.
            return [
                int(m["pid"])
                for m in _SPOOLER_LINE.finditer(self.log())
                if pid_alive(int(m["pid"]))
            ]
        return [latest[d] for d in order]

    def mule_pids(self) -> list[int]:
        """The current pid of each mule, from the (re)spawn lines of the log."""
        latest: dict[str, int] = {}
        for match in _MULE_LINE.finditer(self.log()):
            latest[match["id"]] = int(match["pid"])
        return list(latest.values())

    def group_pids(self) -> list[int]:
        """Every live process of this uWSGI's session, orphans of a killed master included."""
        return [pid for pid in live_pids("pgrp", self.pid) if pid != self.pid or self.running()]

    def worker_pids(self) -> list[int]:
        latest: dict[str, int] = {}
        for match in _WORKER_LINE.finditer(self.log()):
            latest[match["id"]] = int(match["pid"])
        return list(latest.values())

    def kill(self, sig: int) -> None:
        """Send *sig* to the master."""
        os.kill(self.pid, sig)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Stop uWSGI (SIGINT, then SIGKILL to its process group) and return its exit status."""
        if self.process is None:
            return None
        pid = self.process.pid
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + timeout
            # WNOWAIT leaves the master a zombie: its process group id cannot be reused
            # until we reap it, so the killpg below can only hit our own stragglers.
            while time.monotonic() < deadline and _exit_status(pid) is None:
                time.sleep(0.02)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        return self.process.wait()

    def run_until_it_stops(self, timeout: float = 30.0) -> str:
        """Start uWSGI when it is expected to stop itself (the mule's checks failing), wait
        for that, clean up, and return the log."""
        try:
            # The mule may stop the master before everything counts as started: that is fine.
            with contextlib.suppress(AssertionError):
                self.start()
            wait_until(lambda: not self.running(), timeout, message="uWSGI to stop", uwsgi=self)
        finally:
            self.stop()
        return self.log()

    def __enter__(self) -> UwsgiProcess:
        return self.start() if self.process is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _exit_status(pid: int) -> int | None:
    """Exit status of our child *pid* without reaping it; None while it runs."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return 0
    if info is None or info.si_pid == 0:
        return None
    return -info.si_status if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else info.si_status


def pid_alive(pid: int) -> bool:
    """Whether process *pid* exists and is not a zombie (an orphan init has not reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _stat(pid)
    return fields is None or fields[0] != "Z"  # no procfs (or gone meanwhile): trust kill()


# The fields of /proc/PID/stat that follow the command (which may hold spaces and parentheses).
_STAT_FIELDS = ("state", "ppid", "pgrp", "session")


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/*pid*/stat after the command; None if it cannot be read."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def live_pids(field: Literal["ppid", "pgrp", "session"], value: int) -> list[int]:
    """The live (not zombie) processes whose *field* in /proc/PID/stat is *value*, sorted.

    ``live_pids("pgrp", pgid)`` is a process group, ``live_pids("session", sid)`` a session.
    uWSGI runs in a session of its own (see :meth:`UwsgiProcess.start`): its children keep that
    group and session when the master dies, so this finds orphans too.
    """
    index = _STAT_FIELDS.index(field)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(entry.name)  # None: exited meanwhile
        if fields is not None and fields[0] != "Z" and int(fields[index]) == value:
            found.append(int(entry.name))
    return sorted(found)


@contextlib.contextmanager
def run_uwsgi(
    *options: str,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    log_path: str | os.PathLike[str] | None = None,
    timeout: float = START_TIMEOUT,
) -> Iterator[UwsgiProcess]:
    """Run uWSGI with *options* for the duration of the block; always stop it afterwards."""
    uwsgi = UwsgiProcess(*options, env=env, cwd=cwd, log_path=log_path)
    try:
        uwsgi.start(timeout=timeout)
        yield uwsgi
    finally:
        uwsgi.stop()
