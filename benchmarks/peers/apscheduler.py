"""The APScheduler peer: ``apscheduler_app`` in its own process, stopped by its pid."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.peers import NotRun, read_jsonl, require, spawn
from benchmarks.project.server import REPO

__all__ = ["ApScheduler", "apscheduler_process", "apscheduler_version"]


def apscheduler_version() -> str:
    try:
        require("apscheduler", "APScheduler")
    except NotRun as reason:
        return str(reason)
    from importlib.metadata import version

    return f"APScheduler {version('APScheduler')}"


@dataclass
class ApScheduler:
    kind: str
    results_dir: Path
    pid: int

    def stamps(self) -> list[dict[str, object]]:
        return read_jsonl(self.results_dir / "stamps.jsonl")

    def fires(self) -> list[float]:
        """The fire time of each submitted run, in order (coalesced runs: the latest)."""
        return [
            float(record["fires"][-1])  # type: ignore[index]
            for record in read_jsonl(self.results_dir / "submitted.jsonl")
        ]


@contextlib.contextmanager
def apscheduler_process(workdir: Path, kind: str) -> Iterator[ApScheduler]:
    """A BlockingScheduler with one every-second job, *kind* "cron" or "interval"."""
    require("apscheduler", "APScheduler")
    results = workdir / "results"
    results.mkdir(parents=True, exist_ok=True)
    argv = ["python", "-m", "benchmarks.peers.apscheduler_app", str(results), kind]
    with spawn(argv, log_path=workdir / "apscheduler.log", env={}, cwd=REPO) as process:
        yield ApScheduler(kind=kind, results_dir=results, pid=process.pid)
