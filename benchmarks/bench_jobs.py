"""One-off jobs: how fast spoolcron enqueues, in detail (the floor, fsync, tmpfs, the stores).

``enqueue_throughput``: ``spoolcron.schedule()`` of a small near-term job (due in 2 s, within
the horizon: straight into the spool dir) from one plain process into a temporary spool dir,
jobs/s, median of several repeats, with ``FSYNC`` off and on. Beside it, the floor:
``files.write()`` of the very same bytes, with no payload, settings or uuid work;
``vs_floor`` is the ratio of the two medians.

``bulk_enqueue``: ``spoolcron.schedule_many()`` of 100,000 jobs (quick: 20,000) due in an
hour, later than the horizon, in one call, into each pending store: ``database`` on the
machine's PostgreSQL (a schema of its own, emptied between repeats; rows by COPY) and
``files`` on tmpfs and on the disk of the temp dir; beside each, ``schedule()`` called once
per job into the same store, for scale.

How late one-off jobs start, beside Celery and the bare spooler, is ``bench_oneoff``.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks.peers import NotRun
from benchmarks.project.server import setup_django
from spoolcron.spool import codec, files

__all__ = ["DESCRIPTIONS", "run"]

ENQUEUE_BUDGET = 10_000  # jobs/s, FSYNC off
BULK_BUDGET = 20_000  # jobs/s, schedule_many into PostgreSQL and into files on tmpfs
NEAR = 2.0  # s: due within the horizon (5 s), so schedule() writes into the spool dir
LATER = 3600.0  # s: later than the horizon, so into the pending store

Fresh = Callable[[], contextlib.AbstractContextManager[None]]

DESCRIPTIONS = {
    "enqueue_throughput": (
        "`spoolcron.schedule()` of a small job from one process into a temporary spool dir "
        "(outside a transaction), jobs/s: median, min and max of the repeats. The floor is "
        "`files.write()` of the same bytes; `vs_floor` = schedule median / floor median. "
        "`cpu_us_per_job`: CPU time (user + system) per job, median; less sensitive than "
        "wall time to a busy disk. The jobs are due in 2 s: within the horizon, so they are "
        "spool files at once (as every job was before the pending store)."
    ),
    "bulk_enqueue": (
        "Jobs due in an hour (later than the horizon: they wait in the pending store) enqueued "
        "from one process: `spoolcron.schedule_many()` of all of them in one call, and "
        "`schedule()` once per job, for scale. `database`: the WaitingJob table on this "
        "machine's PostgreSQL (one transaction per call; rows by COPY); `files`: per-minute "
        "directories on tmpfs or the temp dir's disk. jobs/s: median, min and max of the "
        "repeats; `cpu_us_per_job`: this process's CPU per job (not the database server's). "
        "Budget: >= 20,000 jobs/s into PostgreSQL and into files on tmpfs (issue 13)."
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
                spoolcron.schedule(stamp, ["bench"], run_after=NEAR)
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
                        spoolcron.schedule(stamp, ["bench"], run_after=NEAR)

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


# --- bulk_enqueue -------------------------------------------------------------------------


@contextlib.contextmanager
def _targets() -> Iterator[list[tuple[str, str, Fresh | None]]]:
    """(store, where, fresh) per target: ``fresh()`` is a context in which this process
    enqueues into an empty store of that kind; None if the store cannot run (``where``
    says why)."""
    from django.test import override_settings

    found: list[tuple[str, str, Fresh | None]] = []
    with contextlib.ExitStack() as stack:
        try:
            from benchmarks.project import postgres

            env = stack.enter_context(postgres.postgres_schema())
            root = Path(stack.enter_context(tempfile.TemporaryDirectory()))

            @contextlib.contextmanager
            def database(env: dict[str, str] = env, root: Path = root) -> Iterator[None]:
                postgres.truncate(env, "spoolcron_waitingjob")
                conf = {"SPOOL_DIR": str(root / "spool"), "PENDING_STORE": "database"}
                with postgres.in_process(env), override_settings(SPOOLCRON=conf):
                    yield

            where = f"PostgreSQL (schema {env['SPOOLCRON_BENCH_PG_SCHEMA']})"
            found.append(("database", where, database))
        except NotRun as reason:
            found.append(("database", str(reason), None))
        bases = [("tmpfs (/dev/shm)", "/dev/shm")] if Path("/dev/shm").is_dir() else []
        bases.append((f"disk (temp dir {tempfile.gettempdir()})", None))
        for where, base in bases:
            top = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=base)))
            loops = itertools.count()

            @contextlib.contextmanager
            def store(top: Path = top, loops: itertools.count[int] = loops) -> Iterator[None]:
                workdir = top / str(next(loops))
                conf = {"SPOOL_DIR": str(workdir / "spool"), "PENDING_STORE": "files"}
                try:
                    with override_settings(SPOOLCRON=conf):
                        yield
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)

            found.append(("files", where, store))
        yield found


def _bulk(quick: bool) -> list[dict[str, object]]:
    setup_django()
    import spoolcron
    import spoolcron.jobs
    from benchmarks.project.tasks import stamp

    many, repeats = (20_000, 2) if quick else (100_000, 3)
    single = 1000 if quick else 2000
    rows: list[dict[str, object]] = []
    calls = (("schedule_many(), one call", many), ("schedule() per job", single))
    with _targets() as targets:
        for store, where, fresh in targets:
            if fresh is None:
                rows.append({"scenario": "bulk_enqueue", "store": store, "where": where})
                continue
            # The disk is slow: two repeats there keep the whole run within its half hour.
            times = min(repeats, 2) if where.startswith("disk") else repeats
            for call, count in calls:
                rates: list[float] = []
                cpu: list[float] = []
                for repeat in range(-1, times):  # repeat -1 warms up and is not counted
                    n = 200 if repeat < 0 else count
                    jobs = [{"args": [f"bulk-{i}"], "run_after": LATER} for i in range(n)]
                    with fresh():

                        def body(jobs: list[dict[str, object]] = jobs, call: str = call) -> None:
                            if call.startswith("schedule_many"):
                                spoolcron.schedule_many(stamp, jobs)
                            else:
                                for job in jobs:
                                    spoolcron.schedule(stamp, job["args"], run_after=LATER)  # type: ignore[arg-type]

                        gc.collect()
                        rate, cpu_per_job = _rate(n, body)
                        waiting = spoolcron.jobs.pending_store().count()
                        if waiting != n:
                            raise AssertionError(f"{store} holds {waiting} jobs, not {n}.")
                    if repeat >= 0:
                        rates.append(rate)
                        cpu.append(cpu_per_job)
                median = statistics.median(rates)
                budgeted = call.startswith("schedule_many") and (
                    store == "database" or where.startswith("tmpfs")
                )
                rows.append(
                    {
                        "scenario": "bulk_enqueue",
                        "store": store,
                        "where": where,
                        "call": call,
                        "jobs_per_s_median": round(median),
                        "jobs_per_s_min": round(min(rates)),
                        "jobs_per_s_max": round(max(rates)),
                        "us_per_job": 1e6 / median,
                        "cpu_us_per_job": statistics.median(cpu) * 1e6,
                        "budget": f">= {BULK_BUDGET:,} jobs/s" if budgeted else "",
                        "meets_budget": (median >= BULK_BUDGET) if budgeted else None,
                        "jobs": count,
                        "repeats": times,
                    }
                )
    return rows


def run(quick: bool = False) -> list[dict[str, object]]:
    """Measure enqueue throughput (one-off lateness is in bench_oneoff, beside the peers)."""
    return _enqueue_throughput(quick) + _bulk(quick)
