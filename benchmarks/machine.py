"""What the results were measured on: the machine, the versions, the load during the run."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

__all__ = ["LoadSampler", "load", "machine"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _filesystem(path: str) -> str:
    """The type of the filesystem holding *path* (fsync costs depend on it)."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    real = os.path.realpath(path)
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        device, mount, fstype = fields[:3]
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):  # the deepest mount point holding it
            best, kind = mount, f"{fstype} ({device} on {mount})"
    return kind


def _uwsgi_version() -> str:
    binary = Path(sys.executable).parent / "uwsgi"
    try:
        done = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "not installed"
    return done.stdout.strip()


def _revision() -> str:
    """The commit benchmarked, and whether the library code differs from it."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "spoolcron", "schedules"],
            cwd=repo,
            capture_output=True,
            timeout=30,
            check=False,
        ).returncode
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head} (spoolcron/schedules modified since)" if changed else head


def load() -> str:
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def machine() -> list[tuple[str, str]]:
    import django

    try:
        cpus = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        cpus = str(os.cpu_count())
    return [
        ("CPUs (nproc)", cpus),
        ("CPU model", _cpu_model()),
        ("Memory", _memory()),
        ("OS", platform.platform()),
        ("Temp dir filesystem", _filesystem(tempfile.gettempdir())),
        ("Python", platform.python_version()),
        ("Django", django.get_version()),
        ("uWSGI", _uwsgi_version()),
        *_peer_versions(),
        ("spoolcron revision", _revision()),
        ("Load average 1/5/15 min, at the end", load()),
    ]


def _peer_versions() -> list[tuple[str, str]]:
    from benchmarks.peers.apscheduler import apscheduler_version
    from benchmarks.peers.celery_beat import celery_version
    from benchmarks.peers.redis_server import redis_version

    try:
        from importlib.metadata import version

        plotting = f"matplotlib {version('matplotlib')}"
    except Exception:
        plotting = "matplotlib not installed"
    return [
        ("Celery", celery_version()),
        ("redis-server", redis_version()),
        ("APScheduler", apscheduler_version()),
        ("Plot", plotting),
    ]


class LoadSampler:
    """The 1-minute load average every *interval* seconds, in a thread, while in the block."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        if not self.samples:
            return "not sampled"
        mean = sum(self.samples) / len(self.samples)
        return (
            f"min {min(self.samples):.2f}, mean {mean:.2f}, max {max(self.samples):.2f} "
            f"({len(self.samples)} samples, every {self.interval:g} s)"
        )
