"""The bare uWSGI peer: uWSGI's spooler and timer without spoolcron (``raw_uwsgi_app``).

``raw_uwsgi(workdir, timer=..., frequency=...)`` starts uWSGI through the integration tests'
harness (``--master --die-on-term``, stopped by its pid) with one worker, one spooler, one mule
and the app; ``frequency`` is ``--spooler-frequency`` (None: uWSGI's default, 30 s).
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.peers import read_jsonl
from benchmarks.project.server import REPO
from tests.integration.harness import UwsgiProcess, free_port, run_uwsgi

__all__ = ["RawUwsgi", "raw_uwsgi"]

START_TIMEOUT = 90.0  # the machine may be busy


@dataclass
class RawUwsgi:
    uwsgi: UwsgiProcess
    port: int
    spool_dir: Path
    results_dir: Path

    def stamps(self) -> list[dict[str, object]]:
        return read_jsonl(self.results_dir / "stamps.jsonl")

    def _get(self, path: str) -> bytes:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=120) as answer:
            body: bytes = answer.read()
            return body

    def spool(self, label: str, at: int | None = None) -> None:
        """``uwsgi.spool({"label": label, "at": at})`` in the worker."""
        self._get(f"/spool?label={label}" + (f"&at={at}" if at is not None else ""))

    def burst(self, count: int) -> tuple[float, float]:
        """Seconds of wall and CPU time *count* ``uwsgi.spool`` calls took in the worker."""
        answer = json.loads(self._get(f"/burst?n={count}"))
        return float(answer["seconds"]), float(answer["cpu"])


@contextlib.contextmanager
def raw_uwsgi(
    workdir: Path, *, timer: bool = False, frequency: int | None = None
) -> Iterator[RawUwsgi]:
    spool = workdir / "spool"
    results = workdir / "results"
    spool.mkdir(parents=True, exist_ok=True)
    results.mkdir(exist_ok=True)
    port = free_port()
    options = [
        f"--http-socket=127.0.0.1:{port}",
        "--processes=1",
        f"--spooler={spool}",
        "--import=benchmarks.peers.raw_uwsgi_app",
        "--module=benchmarks.peers.raw_uwsgi_app",
        "--mule",
    ]
    if frequency is not None:
        options.append(f"--spooler-frequency={frequency}")
    env = {"BENCH_RAW_RESULTS": str(results), "BENCH_RAW_TIMER": "1" if timer else ""}
    with run_uwsgi(
        *options, env=env, cwd=REPO, log_path=workdir / "uwsgi.log", timeout=START_TIMEOUT
    ) as uwsgi:
        yield RawUwsgi(uwsgi=uwsgi, port=port, spool_dir=spool, results_dir=results)
