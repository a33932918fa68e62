"""Many pending far-future one-off jobs: what an idle spooler directory costs.

For each backlog size, a spool directory is filled with that many spoolcron job files due
next week (real payloads, distinct names and due times, written with ``write_payload``),
then the benchmark project starts on it under uWSGI (one spooler at the default
``--spooler-frequency``, the spoolcron mule with its waker). After a short settle, over a
fixed window: the CPU time (user + system, from ``/proc/<pid>/stat``) of the spooler, of the
mule (whose waker rescans the directory) and of the master + worker, as % of one core. Then
jobs due now are enqueued one at a time and their lateness measured (the task's first
``time.time()`` - ``run_after``) with the backlog present.

The directory lives on tmpfs (``/dev/shm``) when it has room, else in the temp dir; the row
says which. Sizes whose files would take too long to create on the filesystem used are
measured with as many files as could be created in the time, and the row says so.
"""

from __future__ import annotations

import contextlib
import math
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from benchmarks import spread
from benchmarks.peers import cpu_seconds
from benchmarks.project.server import Server, serve, setup_django

__all__ = ["DESCRIPTIONS", "run"]

SIZES, QUICK_SIZES = (1_000, 100_000, 1_000_000), (1_000, 10_000)
WINDOW_S, QUICK_WINDOW_S = 60.0, 15.0
SETTLE_S = 5.0
PROBES, QUICK_PROBES = 8, 3  # jobs due now, one at a time
PROBE_SPACING = 2.0
PROBE_BUDGET_S = 120.0  # stop enqueueing probes after this long (a huge backlog is slow)
CREATE_BUDGET_S = 240.0  # longest we spend creating one backlog
BYTES_PER_FILE = 6 * 1024  # a page of data, inode and dentry, rounded up
WEEK = 7 * 24 * 3600.0
TASK = "benchmarks.project.tasks.stamp"

_MULE = re.compile(r"spawned uWSGI mule \d+ \(pid: (\d+)\)")
_WORKER = re.compile(r"spawned uWSGI worker \d+ .*\(pid: (\d+)")

DESCRIPTIONS = {
    "backlog_idle_cost": (
        "N one-off jobs due next week in the spool dir, the project under uWSGI on it. "
        "`*_cpu_pct`: CPU time (user + system) of that process over the idle window, as % "
        "of one core (spooler: uWSGI's own scan every --spooler-frequency = 30 s and on "
        "each wake; mule: spoolcron's waker, which lists the directory when it changes and "
        "every 2 s). `due_now_*`: lateness of jobs due now enqueued one at a time with the "
        "backlog present (task start - run_after). `create_per_s`: how fast the backlog "
        "was written. If a cost grows with N, the table shows it as measured."
    ),
}


def _meminfo_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def _base_for(count: int) -> tuple[str | None, str]:
    """Where to put a backlog of *count* files: tmpfs if it fits with room to spare."""
    shm = Path("/dev/shm")
    need = count * BYTES_PER_FILE
    if shm.is_dir():
        free = shutil.disk_usage(shm).free
        if free > 1.5 * need and _meminfo_available() > 2 * need:
            return str(shm), "tmpfs (/dev/shm)"
    return None, f"temp dir ({tempfile.gettempdir()})"


def _fill(spool: Path, count: int, deadline: float) -> tuple[int, float]:
    """Write up to *count* job files due next week; stop at *deadline*. (written, rate)"""
    from spoolcron.core.payload import Payload, encode_body
    from spoolcron.spool.payloads import write_payload

    due = time.time() + WEEK
    began = time.perf_counter()
    prefix = uuid.uuid4().hex[:8]
    for i in range(count):
        job = Payload(
            task=TASK,
            job_id=f"backlog-{prefix}-{i}",
            run_after=due + i * 0.37,
            args=[f"backlog-{i}"],
            enqueued_at=time.time(),
        )
        write_payload(spool, job, body=encode_body(job))
        if i % 1000 == 999 and time.time() > deadline:
            return i + 1, (i + 1) / (time.perf_counter() - began)
    return count, count / max(time.perf_counter() - began, 1e-9)


def _cpu(pids: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(cpu_seconds(pid) for pid in group) for name, group in pids.items()}


def _pids(server: Server) -> dict[str, list[int]]:
    log = server.uwsgi.log()
    return {
        "spooler": server.uwsgi.spooler_pids()[-1:],
        "mule": [int(m) for m in _MULE.findall(log)][-1:],
        "master_worker": [server.uwsgi.pid, *[int(w) for w in _WORKER.findall(log)][-1:]],
    }


def _probe(server: Server, count: int) -> tuple[list[float], int]:
    """Enqueue up to *count* jobs due now, one at a time (for at most PROBE_BUDGET_S).

    Returns their lateness in ms and how many were enqueued.
    """
    from django.test import override_settings

    import spoolcron
    from benchmarks.project.tasks import stamp

    late: list[float] = []
    sent = 0
    stop = time.time() + PROBE_BUDGET_S
    with override_settings(SPOOLCRON={"SPOOL_DIR": str(server.spool_dir)}):
        for i in range(count):
            if time.time() > stop:
                break
            label = f"probe-{uuid.uuid4().hex[:8]}-{i}"
            sent += 1
            due = spoolcron.schedule(stamp, [label], run_after=0).run_after.timestamp()
            deadline = time.time() + 40  # past uWSGI's own 30 s scan
            started = None
            while time.time() < deadline and started is None:
                started = next(
                    (float(s["time"]) for s in server.stamps() if s["label"] == label),  # type: ignore[arg-type]
                    None,
                )
                time.sleep(0.02)
            if started is not None:
                late.append((started - due) * 1000)
            time.sleep(PROBE_SPACING)
    return late, sent


@contextlib.contextmanager
def _workdir(base: str | None) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="spoolcron-bench-backlog-", dir=base) as tmp:
        yield Path(tmp)


def _one(count: int, quick: bool) -> dict[str, object]:
    from spoolcron.spool import files

    window = QUICK_WINDOW_S if quick else WINDOW_S
    base, where = _base_for(count)
    row: dict[str, object] = {"scenario": "backlog_idle_cost", "backlog": count, "spool_fs": where}
    with _workdir(base) as workdir:
        spool = files.ensure_dir(workdir / "spool")
        began = time.perf_counter()
        written, rate = _fill(spool, count, time.time() + CREATE_BUDGET_S)
        row["create_s"] = time.perf_counter() - began
        row["create_per_s"] = round(rate)
        row["files"] = written
        if written < count:
            # Measure what fits in the time, and say so.
            row["note"] = (
                f"only {written:,} files created in {CREATE_BUDGET_S:.0f} s on {where} "
                f"({rate:,.0f}/s); {count:,} would take about {count / rate:,.0f} s"
            )
        with serve(workdir, start_timeout=300) as server:
            time.sleep(SETTLE_S)  # startup scans are not the idle cost
            pids = _pids(server)
            before = _cpu(pids)
            began_window = time.monotonic()
            time.sleep(window)  # the measurement: CPU used while nothing happens
            elapsed = time.monotonic() - began_window
            after = _cpu(pids)
            late, sent = _probe(server, QUICK_PROBES if quick else PROBES)
            pending = len(files.list_files(spool))
    for name in pids:
        row[f"{name}_cpu_pct"] = (after[name] - before[name]) / elapsed * 100
    stats = spread(late)
    row.update(
        {
            "window_s": round(elapsed),
            "due_now_jobs": sent,
            "due_now_ran": len(late),
            "due_now_p50_ms": stats["p50"],
            "due_now_max_ms": stats["max"],
            "pending_after": pending,
        }
    )
    return row


def run(quick: bool = False) -> list[dict[str, object]]:
    """One row per backlog size, smallest first."""
    setup_django()
    rows = [_one(count, quick) for count in (QUICK_SIZES if quick else SIZES)]
    for row in rows:
        if isinstance(row.get("due_now_max_ms"), float) and math.isnan(row["due_now_max_ms"]):  # type: ignore[arg-type]
            row["due_now_max_ms"] = "none ran within 40 s"
    return rows
