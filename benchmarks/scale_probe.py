"""One scale measurement in a fresh process, so its memory is its own.

    python -m benchmarks.scale_probe SYSTEM ENTRIES LOOPS

SYSTEM is ``spoolcron``, ``celery`` or ``apscheduler``. Builds the system's scheduler with
ENTRIES entries, none due for months, and prints one JSON object: ``setup_s`` (building the
entries and starting the scheduler), ``rss_base_kib`` (after the imports) and ``rss_kib``
(after setup), ``idle_tick_us`` (median over repeats of the mean of up to LOOPS idle calls,
fewer when one call is slow) and
``upcoming_ms`` (listing the next 100 runs; median of 3). What the idle call and the listing
are for each system is in ``WHAT``.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["WHAT", "main", "measure"]

REPEATS = 5

WHAT = {
    "spoolcron": (
        "`Beat.tick()` (in-memory ledger)",
        "`merge_upcoming(count=100)`: the next 100 runs",
    ),
    "celery": (
        "`Scheduler.tick()` (in-memory `Scheduler`)",
        "next run of every entry (`remaining_estimate`), sorted, first 100",
    ),
    "apscheduler": (
        "`BackgroundScheduler._process_jobs()`",
        "`get_jobs()[:100]` (kept sorted by next run)",
    ),
}


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _idle_us(call: Callable[[], object], loops: int) -> float:
    began = time.perf_counter()
    call()
    # Some systems' idle call costs tens of ms with many entries: about 0.2 s per repeat.
    loops = max(1, min(loops, int(0.2 / max(time.perf_counter() - began, 1e-9))))
    samples = []
    for _ in range(REPEATS):
        gc.collect()
        gc.disable()
        began = time.perf_counter()
        for _ in range(loops):
            call()
        samples.append((time.perf_counter() - began) / loops)
        gc.enable()
    return statistics.median(samples) * 1e6


def _listing_ms(call: Callable[[], object]) -> float:
    samples = []
    for _ in range(3):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1000


def _spoolcron(count: int, workdir: Path) -> tuple[Callable[[], object], Callable[[], object]]:
    from benchmarks.bench_beat import T0, _entries, _quiet
    from spoolcron.core.beat import Beat
    from spoolcron.core.upcoming import merge_upcoming
    from spoolcron.spool.payloads import SpoolFireWriter
    from tests.helpers import Clock, MemoryLedger

    entries = _entries(count)
    with _quiet():
        beat = Beat(entries, MemoryLedger(), SpoolFireWriter(workdir), clock=Clock(T0), lead=0.5)
        beat.start()
    now = datetime.fromtimestamp(T0, UTC)
    return beat.tick, lambda: merge_upcoming(entries, [], now=now, count=100)


def _far_month() -> int:
    return (datetime.now(UTC).month + 5) % 12 + 1  # about half a year away


def _celery(count: int, workdir: Path) -> tuple[Callable[[], object], Callable[[], object]]:
    from celery import Celery
    from celery.beat import Scheduler
    from celery.schedules import crontab

    app = Celery("spoolcron_bench_scale", broker="memory://", set_as_current=False)
    month = _far_month()
    schedule: dict[str, dict[str, Any]] = {}
    for i in range(count):
        when: Any = (
            timedelta(hours=1, seconds=i)
            if i % 2 == 0
            else crontab(minute=i % 60, hour=(i // 60) % 24, month_of_year=month)
        )
        schedule[f"bench-{i}"] = {"task": "bench.stamp", "schedule": when, "args": (str(i),)}
    app.conf.beat_schedule = schedule
    scheduler = Scheduler(app=app, lazy=False)
    scheduler.tick()  # builds the heap; nothing is due
    entries = list(scheduler.schedule.values())

    def upcoming() -> object:
        now = datetime.now(UTC)
        fires = [
            now
            + timedelta(
                seconds=entry.schedule.remaining_estimate(entry.last_run_at).total_seconds()
            )
            for entry in entries
        ]
        return sorted(fires)[:100]

    return scheduler.tick, upcoming


def _apscheduler(count: int, workdir: Path) -> tuple[Callable[[], object], Callable[[], object]]:
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    def job() -> None:
        pass

    scheduler = BackgroundScheduler(timezone="UTC")
    month = _far_month()
    for i in range(count):
        trigger: Any = (
            IntervalTrigger(hours=1, seconds=i)
            if i % 2 == 0
            else CronTrigger(minute=i % 60, hour=(i // 60) % 24, month=month, timezone="UTC")
        )
        scheduler.add_job(job, trigger, id=f"bench-{i}")
    scheduler.start()
    return scheduler._process_jobs, lambda: scheduler.get_jobs()[:100]


SYSTEMS = {"spoolcron": _spoolcron, "celery": _celery, "apscheduler": _apscheduler}
# Imported before the baseline memory is read, so rss_kib - rss_base_kib is the entries' cost.
IMPORTS = {
    "spoolcron": ["benchmarks.bench_beat", "spoolcron.core.beat", "spoolcron.core.upcoming"],
    "celery": ["celery", "celery.beat", "celery.schedules"],
    "apscheduler": [
        "apscheduler.schedulers.background",
        "apscheduler.triggers.cron",
        "apscheduler.triggers.interval",
    ],
}


def measure(system: str, count: int, loops: int, workdir: Path) -> dict[str, object]:
    """Build *system* with *count* entries (files, if any, go to *workdir*) and measure it."""
    if system == "spoolcron":
        from benchmarks.project.server import setup_django

        setup_django()
    for module in IMPORTS[system]:
        importlib.import_module(module)
    build = SYSTEMS[system]
    gc.collect()
    base = _rss_kib()
    began = time.perf_counter()
    tick, upcoming = build(count, workdir)
    setup = time.perf_counter() - began
    gc.collect()
    rss = _rss_kib()
    return {
        "setup_s": setup,
        "rss_base_kib": base,
        "rss_kib": rss,
        "idle_tick_us": _idle_us(tick, loops),
        "upcoming_ms": _listing_ms(upcoming),
    }


def main(argv: list[str]) -> int:
    system, count, loops = argv[0], int(argv[1]), int(argv[2])
    if system not in SYSTEMS:
        print(f"Unknown system {system!r}; choose from {', '.join(SYSTEMS)}.", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="spoolcron-bench-scale-") as tmp:
        print(json.dumps(measure(system, count, loops, Path(tmp))))
    sys.stdout.flush()
    os._exit(0)  # a started BackgroundScheduler's thread would otherwise hold the exit


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
