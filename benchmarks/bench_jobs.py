"""One-off jobs: how fast ``schedule()`` enqueues, in detail (the floor, fsync, tmpfs).

``enqueue_throughput``: ``spoolcron.schedule()`` of a small job from one plain process into
a temporary spool dir, jobs/s, median of several repeats, with ``FSYNC`` off and on. Beside
it, the floor: ``files.write()`` of the very same bytes, with no payload, settings or
uuid work; ``vs_floor`` is the ratio of the two medians.

How late one-off jobs start, beside Celery and the bare spooler, is ``bench_oneoff``.
"""

from __future__ import annotations

import functools
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from benchmarks.project.server import setup_django
from spoolcron.spool import codec, files

__all__ = ["DESCRIPTIONS", "run"]

ENQUEUE_BUDGET = 10_000  # jobs/s, FSYNC off

DESCRIPTIONS = {
    "enqueue_throughput": (
        "`spoolcron.schedule()` of a small job from one process into a temporary spool dir "
        "(outside a transaction), jobs/s: median, min and max of the repeats. The floor is "
        "`files.write()` of the same bytes; `vs_floor` = schedule median / floor median. "
        "`cpu_us_per_job`: CPU time (user + system) per job, median; less sensitive than "
        "wall time to a busy disk."
    ),
}


def _rate(count: int, body: Callable[[], None]) -> tuple[float, float]:
    """Jobs per wall-clock second, and CPU seconds (user + system) per job."""
    began, cpu = time.perf_counter(), time.process_time()
    body()
    return count / (time.perf_counter() - began), (time.process_time() - cpu) / count


def _enqueue_throughput(quick: bool) -> list[dict[str, object]]:
    setup_django()
    from django.test import override_settings

    import spoolcron
    from benchmarks.project.tasks import stamp

    count, repeats = (1000, 5) if quick else (2000, 5)
    rows: list[dict[str, object]] = []
    # The disk the temp dir is on, and tmpfs: file creation is what enqueueing costs, and it
    # costs far more on this kind of virtual disk than in memory.
    filesystems = [("disk", None, (False, True))]
    if Path("/dev/shm").is_dir():
        filesystems.append(("tmpfs", "/dev/shm", (False,)))
    for fs, base, fsyncs in filesystems:
        with tempfile.TemporaryDirectory(prefix="spoolcron-bench-enqueue-", dir=base) as tmp:
            root = Path(tmp)
            # The floor writes exactly what schedule() writes: take one of its files as the model.
            model_dir = files.ensure_dir(root / "model")
            with override_settings(SPOOLCRON={"SPOOL_DIR": str(model_dir)}):
                spoolcron.schedule(stamp, ["bench"], run_after=3600.0)
            [model_path] = files.list_files(model_dir)
            model = files.read(model_path)

            # Names shaped like schedule()'s, made once, outside the timings (each repeat writes
            # into a fresh directory).
            names = [f"{codec.PREFIX}spoolcron_{uuid.uuid4().hex}_1" for _ in range(count)]

            def write_floor(
                directory: Path,
                fsync: bool,
                names: list[str] = names,
                model: codec.SpoolFile = model,
            ) -> None:
                due = time.time() + 3600
                for name in names:
                    files.write(directory, name, model.args, model.body, at=due, fsync=fsync)

            def enqueue(directory: Path, fsync: bool) -> None:
                with override_settings(SPOOLCRON={"SPOOL_DIR": str(directory), "FSYNC": fsync}):
                    for _ in range(count):
                        spoolcron.schedule(stamp, ["bench"], run_after=3600.0)

            writers = {"floor": write_floor, "schedule": enqueue}
            for fsync in fsyncs:
                rates: dict[str, list[float]] = {"schedule": [], "floor": []}
                cpu: dict[str, list[float]] = {"schedule": [], "floor": []}
                for repeat in range(-1, repeats):  # repeat -1 warms up and is not counted
                    # Alternate which goes first, so neither always follows the other's cleanup.
                    order = ["floor", "schedule"] if repeat % 2 else ["schedule", "floor"]
                    for writer in order:
                        directory = files.ensure_dir(root / f"{writer}-{fsync}-{repeat}")
                        rate, cpu_per_job = _rate(
                            count, functools.partial(writers[writer], directory, fsync)
                        )
                        written = len(files.list_files(directory))
                        if written != count:
                            raise AssertionError(f"{writer} wrote {written} files, not {count}.")
                        shutil.rmtree(directory)
                        if repeat >= 0:
                            rates[writer].append(rate)
                            cpu[writer].append(cpu_per_job)

                floor_median = statistics.median(rates["floor"])
                for writer, label in (
                    ("floor", "files.write() (floor)"),
                    ("schedule", "spoolcron.schedule()"),
                ):
                    values = rates[writer]
                    median = statistics.median(values)
                    budgeted = writer == "schedule" and not fsync
                    rows.append(
                        {
                            "scenario": "enqueue_throughput",
                            "spool_fs": fs,
                            "writer": label,
                            "fsync": "on" if fsync else "off",
                            "jobs_per_s_median": round(median),
                            "jobs_per_s_min": round(min(values)),
                            "jobs_per_s_max": round(max(values)),
                            "us_per_job": 1e6 / median,
                            "cpu_us_per_job": statistics.median(cpu[writer]) * 1e6,
                            "vs_floor": median / floor_median,
                            "budget": f">= {ENQUEUE_BUDGET:,} jobs/s" if budgeted else "",
                            "meets_budget": (median >= ENQUEUE_BUDGET) if budgeted else None,
                            "jobs": count,
                            "repeats": repeats,
                        }
                    )
    return rows


def run(quick: bool = False) -> list[dict[str, object]]:
    """Measure enqueue throughput (one-off lateness is in bench_oneoff, beside the peers)."""
    return _enqueue_throughput(quick)
