"""One-off jobs: how fast ``schedule()`` enqueues, and how late jobs start under uWSGI.

``enqueue_throughput``: ``spoolcron.schedule()`` of a small job from one plain process into
a temporary spool dir, jobs/s, median of several repeats, with ``FSYNC`` off and on. Beside
it, the floor: ``spoolfile.write()`` of the very same bytes, with no payload, settings or
uuid work; ``vs_floor`` is the ratio of the two medians.

``one_off_lateness``: the benchmark project under real uWSGI (one spooler at the default
``--spooler-frequency`` of 30 s, the spoolcron mule waking it). This process enqueues jobs
due in 1-5 s (random, fractional) and jobs due now, one every half second; each job's task
notes ``time.time()`` first thing. Lateness = that start time - ``run_after``. ``dispatch``
columns are the dispatcher's own ``late_ms`` (logged just before it records the run in the
history table and calls the task), so task - dispatch is the cost of that history write.
"""

from __future__ import annotations

import functools
import math
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from benchmarks import spread
from benchmarks.project.server import Server, serve, setup_django
from spoolcron import spoolfile

__all__ = ["DESCRIPTIONS", "run"]

ENQUEUE_BUDGET = 10_000  # jobs/s, FSYNC off
LATENESS_BUDGET_MS = 50.0  # p99
SPACING = 0.5  # seconds between two enqueues in one_off_lateness
DUE_NOW_SHARE = 0.2

DESCRIPTIONS = {
    "enqueue_throughput": (
        "`spoolcron.schedule()` of a small job from one process into a temporary spool dir "
        "(outside a transaction), jobs/s: median, min and max of the repeats. The floor is "
        "`spoolfile.write()` of the same bytes; `vs_floor` = schedule median / floor median. "
        "`cpu_us_per_job`: CPU time (user + system) per job, median; less sensitive than "
        "wall time to a busy disk."
    ),
    "one_off_lateness": (
        "Jobs enqueued from outside uWSGI, one every 0.5 s, due in 1-5 s (random, fractional) "
        "or due now, run by one uWSGI spooler at the default --spooler-frequency (30 s) and "
        "woken by the spoolcron mule. Lateness = the task's first `time.time()` - run_after, "
        "in ms. `dispatch_*`: the dispatcher's logged late_ms, just before it writes the run "
        "history row; `history_write_p50_ms`: task start - dispatch start. `overtaken`: jobs "
        "that started after a job due later than them; `p99_ms_not_overtaken` leaves them out."
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

    count, repeats = (1000, 5) if quick else (5000, 7)
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
            model_dir = spoolfile.ensure_dir(root / "model")
            with override_settings(SPOOLCRON={"SPOOL_DIR": str(model_dir)}):
                spoolcron.schedule(stamp, ["bench"], run_after=3600.0)
            [model_path] = spoolfile.list_files(model_dir)
            model = spoolfile.read(model_path)

            # Names shaped like schedule()'s, made once, outside the timings (each repeat writes
            # into a fresh directory).
            names = [f"{spoolfile.PREFIX}spoolcron_{uuid.uuid4().hex}_1" for _ in range(count)]

            def write_floor(
                directory: Path,
                fsync: bool,
                names: list[str] = names,
                model: spoolfile.SpoolFile = model,
            ) -> None:
                due = time.time() + 3600
                for name in names:
                    spoolfile.write(directory, name, model.args, model.body, at=due, fsync=fsync)

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
                        directory = spoolfile.ensure_dir(root / f"{writer}-{fsync}-{repeat}")
                        rate, cpu_per_job = _rate(
                            count, functools.partial(writers[writer], directory, fsync)
                        )
                        written = len(spoolfile.list_files(directory))
                        if written != count:
                            raise AssertionError(f"{writer} wrote {written} files, not {count}.")
                        shutil.rmtree(directory)
                        if repeat >= 0:
                            rates[writer].append(rate)
                            cpu[writer].append(cpu_per_job)

                floor_median = statistics.median(rates["floor"])
                for writer, label in (
                    ("floor", "spoolfile.write() (floor)"),
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


def _wait_for(server: Server, labels: set[str], deadline: float) -> None:
    """Poll until every label ran and the spool dir is empty, or the deadline passes."""
    while time.time() < deadline:
        seen = {str(s["label"]) for s in server.stamps()}
        if labels <= seen and not server.pending_files():
            return
        if not server.uwsgi.running():
            raise AssertionError(
                f"uWSGI exited during the benchmark; see its log {server.uwsgi.log_path}."
            )
        time.sleep(0.1)


def _one_off_lateness(quick: bool) -> list[dict[str, object]]:
    setup_django()
    from django.test import override_settings

    import spoolcron
    from benchmarks.project.tasks import stamp

    count = 30 if quick else 300
    rng = random.Random(2026)
    plan = [
        (f"job-{i}", 0.0 if rng.random() < DUE_NOW_SHARE else rng.uniform(1.0, 5.0))
        for i in range(count)
    ]
    run_after: dict[str, float] = {}
    job_ids: dict[str, str] = {}
    with (
        tempfile.TemporaryDirectory(prefix="spoolcron-bench-oneoff-") as tmp,
        serve(Path(tmp)) as server,
    ):
        with override_settings(SPOOLCRON={"SPOOL_DIR": str(server.spool_dir)}):
            began = time.monotonic()
            for i, (label, delay) in enumerate(plan):
                pause = began + i * SPACING - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # pacing the enqueues, not waiting for a result
                job = spoolcron.schedule(stamp, [label], run_after=delay)
                run_after[label] = job.run_after.timestamp()
                job_ids[label] = job.id
        # Past uWSGI's own 30 s scan: a job the mule failed to wake shows up as very late.
        _wait_for(server, set(run_after), max(run_after.values()) + 35)
        stamps = server.stamps()
        dispatched = server.dispatch_lateness()

    times: dict[str, list[float]] = {}
    for s in stamps:
        times.setdefault(str(s["label"]), []).append(float(s["time"]))  # type: ignore[arg-type]
    # Overtaken: started after a job that was due later than it.
    overtaken: set[str] = set()
    latest_due = -math.inf
    for _started, label in sorted((min(t), label) for label, t in times.items()):
        if run_after[label] < latest_due:
            overtaken.add(label)
        latest_due = max(latest_due, run_after[label])

    rows: list[dict[str, object]] = []
    groups = {
        "due in 1-5 s": [label for label, delay in plan if delay > 0],
        "due now": [label for label, delay in plan if delay == 0],
        "all": [label for label, _ in plan],
    }
    for kind, labels in groups.items():
        ran = [label for label in labels if label in times]
        late = [(min(times[label]) - run_after[label]) * 1000 for label in ran]
        dispatch = [dispatched[job_ids[label]][0] for label in ran if job_ids[label] in dispatched]
        history_write = [
            (min(times[label]) - run_after[label]) * 1000 - dispatched[job_ids[label]][0]
            for label in ran
            if job_ids[label] in dispatched
        ]
        stats = spread(late)
        in_order = [
            (min(times[label]) - run_after[label]) * 1000 for label in ran if label not in overtaken
        ]
        rows.append(
            {
                "scenario": "one_off_lateness",
                "jobs": kind,
                "count": len(labels),
                "p50_ms": stats["p50"],
                "p99_ms": stats["p99"],
                "max_ms": stats["max"],
                "min_ms": min(late) if late else math.nan,
                "missing": len(labels) - len(ran),
                "doubled": sum(1 for label in ran if len(times[label]) > 1),
                "overtaken": sum(1 for label in ran if label in overtaken),
                "p99_ms_not_overtaken": spread(in_order)["p99"],
                "dispatch_p50_ms": spread(dispatch)["p50"],
                "dispatch_p99_ms": spread(dispatch)["p99"],
                "history_write_p50_ms": spread(history_write)["p50"],
                "budget": f"p99 <= {LATENESS_BUDGET_MS:g} ms",
                "meets_budget": stats["p99"] <= LATENESS_BUDGET_MS and len(ran) == len(labels),
            }
        )
    return rows


def run(quick: bool = False) -> list[dict[str, object]]:
    """Measure enqueue throughput, then one-off job lateness under uWSGI."""
    return _enqueue_throughput(quick) + _one_off_lateness(quick)
