"""The beat: what a tick costs, and (``--long``) how precisely spoolcron alone fires.

``beat_precision`` (only with ``--long``; the side-by-side run is ``bench_periodic``): the
benchmark project under real uWSGI with one ``every second`` entry, a migrated SQLite file
as the ledger (the beat inserts a claim per fire, the dispatcher a run history row), one
spooler at the default ``--spooler-frequency``. For each fire in the measured window:
lateness = the task's first ``time.time()`` - the fire's wall-clock instant (whole seconds,
epoch-anchored). Runs are matched to fires through the run history rows.

``beat_idle_tick``: ``spoolcron.beat.Beat`` in this process with 10 / 1,000 / 10,000 entries
of mixed schedules (large intervals, cron lines, calendar times), an in-memory ledger and an
injected clock. ``start()``; ``tick()`` when nothing is due (a loop of many ticks, median of
the repeats); one ``tick()`` when k entries are due (each writes its spool file).
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import itertools
import logging
import math
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import spread
from benchmarks.project.server import HistoryRow, Server, serve, setup_django
from tests.helpers import Clock, MemoryLedger, resolved_entry

__all__ = ["DESCRIPTIONS", "run"]

PRECISION_BUDGET_MS = 20.0  # p99
IDLE_TICK_BUDGET_US = 2000.0  # at 10,000 entries
WARMUP_S = 2  # fires right after start are not counted
# A fixed instant, a few seconds past a minute, so runs are reproducible.
T0 = datetime(2026, 11, 23, 12, 0, 7, 300_000, tzinfo=UTC).timestamp()
SYNCHRONIZED = "every 10 seconds"  # the due entries: all fire at T0 + 2.7 s
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

DESCRIPTIONS = {
    "beat_precision": (
        "An `every second` entry under uWSGI (the mule's beat writes each fire 0.5 s ahead, "
        "claims it in a SQLite ledger; the waker signals the spooler at the fire instant). "
        "Lateness = the task's first `time.time()` - the fire's wall-clock second, in ms. "
        "`dispatch_*`: the dispatcher's logged late_ms (after its overlap check, before the "
        "history row); `history_write_p50_ms`: task start - the run row's `started`. "
        "Jitter: start-to-start interval - 1 s."
    ),
    "beat_idle_tick": (
        "`Beat` with N entries of mixed schedules, an in-memory ledger, an injected clock. "
        "`start()`: median of the repeats. `tick(), nothing due`: median over repeats of the "
        "mean of a loop of ticks. `tick(), k due`: one tick with k entries due, each written "
        "as a spool file (fresh Beat per repeat), median; `per_due_us` = that / k."
    ),
}


# --- beat_precision ----------------------------------------------------------------------


def _wait_for_fire(server: Server, entry: str, fire: float, deadline: float) -> None:
    """Poll until the run of *fire* (or a later one) is in the history, or the deadline."""
    while time.time() < deadline:
        if any(row.due >= fire for row in server.history(entry)):
            return
        if not server.uwsgi.running():
            raise AssertionError(
                f"uWSGI exited during the benchmark; see its log {server.uwsgi.log_path}."
            )
        time.sleep(0.25)


def _match_stamps(rows: Sequence[HistoryRow], stamps: list[dict[str, Any]]) -> dict[str, float]:
    """The task's start time of each run: its process's first stamp after the run's start."""
    by_pid: dict[int, list[float]] = {}
    for s in stamps:
        by_pid.setdefault(int(s["pid"]), []).append(float(s["time"]))
    for times in by_pid.values():
        times.sort()
    matched: dict[str, float] = {}
    for row in rows:
        times = by_pid.get(row.pid or -1, [])
        i = bisect.bisect_left(times, row.started)
        if i < len(times):
            matched[row.job_id] = times[i]
    return matched


def _beat_precision(quick: bool, long: bool) -> list[dict[str, object]]:
    from benchmarks.project.schedules import BEAT_ENTRY

    seconds = 20 if quick else 600 if long else 120
    with (
        tempfile.TemporaryDirectory(prefix="spoolcron-bench-beat-") as tmp,
        serve(Path(tmp), beat=True) as server,
    ):
        first = math.ceil(time.time()) + WARMUP_S
        end = first + seconds  # fires at first, first + 1, ..., end - 1 are measured
        _wait_for_fire(server, BEAT_ENTRY, end, deadline=end + 15)
        rows = server.history(BEAT_ENTRY)
        stamps = server.stamps()
        dispatched = server.dispatch_lateness()

    window = [row for row in rows if first <= round(row.due) < end]
    by_fire: dict[int, list[HistoryRow]] = {}
    for row in window:
        by_fire.setdefault(round(row.due), []).append(row)
    ran = [row for row in window if row.outcome != "skipped"]
    started = _match_stamps(ran, stamps)
    late = [(started[r.job_id] - r.due) * 1000 for r in ran if r.job_id in started]
    dispatch = [dispatched[r.job_id][0] for r in ran if r.job_id in dispatched]
    history_write = [(started[r.job_id] - r.started) * 1000 for r in ran if r.job_id in started]
    starts = sorted((r.due, started[r.job_id]) for r in ran if r.job_id in started)
    jitter = [
        ((b_start - a_start) - (b_due - a_due)) * 1000
        for (a_due, a_start), (b_due, b_start) in itertools.pairwise(starts)
        if round(b_due - a_due) == 1
    ]
    stats = spread(late)
    missed = sum(1 for fire in range(first, end) if fire not in by_fire)
    return [
        {
            "scenario": "beat_precision",
            "seconds": seconds,
            "expected": end - first,
            "runs_seen": len({round(r.due) for r in ran}),
            "missed": missed,
            "doubled": sum(len(found) - 1 for found in by_fire.values()),
            "skipped": len(window) - len(ran),
            "p50_ms": stats["p50"],
            "p99_ms": stats["p99"],
            "max_ms": stats["max"],
            "dispatch_p50_ms": spread(dispatch)["p50"],
            "dispatch_p99_ms": spread(dispatch)["p99"],
            "history_write_p50_ms": spread(history_write)["p50"],
            "jitter_stdev_ms": statistics.pstdev(jitter) if jitter else math.nan,
            "jitter_max_abs_ms": max(map(abs, jitter)) if jitter else math.nan,
            "budget": f"p99 <= {PRECISION_BUDGET_MS:g} ms",
            "meets_budget": stats["p99"] <= PRECISION_BUDGET_MS and missed == 0,
        }
    ]


# --- beat_idle_tick ----------------------------------------------------------------------


def _expression(i: int) -> str:
    kind = i % 4
    if kind == 0:
        return f"every {3600 + 7 * i} seconds"  # large, all different: fires spread out
    if kind == 1:
        return f"{i % 60} {(i // 60) % 24} * * *"
    if kind == 2:
        return f"{DAYS[i % 7]} at {(i // 7) % 24:02d}:{i % 60:02d}"
    return f"monthly on the {i % 28 + 1}{_suffix(i % 28 + 1)} at {i % 24:02d}:{(i * 7) % 60:02d}"


def _suffix(day: int) -> str:
    if day in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _entries(count: int, due_together: int = 0) -> list[Any]:
    """*count* entries: *due_together* of them fire at the same instant, first; the rest mixed."""
    from benchmarks.project.tasks import stamp

    texts = [SYNCHRONIZED] * due_together + [_expression(i) for i in range(count - due_together)]
    return [
        resolved_entry(f"bench-{i}", text, task=stamp, module="benchmarks.bench_beat")
        for i, text in enumerate(texts)
    ]


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the beat's INFO lines ("beat started") out of the output and the timings."""
    logger = logging.getLogger("spoolcron")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Like timeit: collect first, then keep the collector out of the timed code."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _beat_idle_tick(quick: bool) -> list[dict[str, object]]:
    from spoolcron.core.beat import Beat
    from spoolcron.spool import files
    from spoolcron.spool.payloads import SpoolFireWriter

    sizes = (10, 1_000, 10_000)
    loop, repeats, due_repeats, start_repeats = (20_000, 5, 5, 3) if quick else (100_000, 9, 15, 5)
    lead = 0.5

    def make(entries: list[Any], spool: Path) -> tuple[Beat, Clock]:
        clock = Clock(T0)
        return Beat(entries, MemoryLedger(), SpoolFireWriter(spool), clock=clock, lead=lead), clock

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="spoolcron-bench-tick-") as tmp, _quiet():
        root = Path(tmp)
        for size in sizes:
            entries = _entries(size)
            starts = []
            for _ in range(start_repeats):
                beat, clock = make(entries, root)
                with _no_gc():
                    began = time.perf_counter()
                    beat.start()
                    starts.append(time.perf_counter() - began)
            rows.append(_tick_row(size, "start()", _median_us(starts), start_repeats))

            next_due = beat.next_due()
            if next_due is None or next_due <= clock.now:
                raise AssertionError(f"An entry is due at the start, {next_due!r}.")
            tick = beat.tick
            idle = []
            for _ in range(repeats):
                with _no_gc():
                    began = time.perf_counter()
                    for _ in range(loop):
                        tick()
                    idle.append((time.perf_counter() - began) / loop)
            idle_us = _median_us(idle)
            row = _tick_row(size, "tick(), nothing due", idle_us, repeats, loop)
            if size == sizes[-1]:
                row["budget"] = f"<= {IDLE_TICK_BUDGET_US:,.0f} us"
                row["meets_budget"] = idle_us <= IDLE_TICK_BUDGET_US
            rows.append(row)
            if beat.enqueued:
                raise AssertionError(f"An idle tick enqueued {beat.enqueued} fires.")

            for k in (1, 10, 100):
                if k > size:
                    continue
                entries = _entries(size, due_together=k)
                samples = []
                for r in range(due_repeats):
                    spool = files.ensure_dir(root / f"spool-{size}-{k}-{r}")
                    beat, clock = make(entries, spool)
                    beat.start()
                    now = beat.next_due()
                    assert now is not None
                    clock.now = now
                    with _no_gc():
                        began = time.perf_counter()
                        beat.tick()
                        samples.append(time.perf_counter() - began)
                    if beat.enqueued != k:
                        raise AssertionError(f"{beat.enqueued} fires enqueued, not {k}.")
                median = _median_us(samples)
                row = _tick_row(size, f"tick(), {k} due", median, due_repeats)
                row["per_due_us"] = median / k
                rows.append(row)
    return rows


def _tick_row(
    size: int, what: str, median_us: float, repeats: int, loop: int = 1
) -> dict[str, object]:
    return {
        "scenario": "beat_idle_tick",
        "entries": size,
        "call": what,
        "median_us": median_us,
        "per_due_us": None,
        "budget": "",
        "meets_budget": None,
        "repeats": repeats,
        "calls_per_repeat": loop,
    }


def run(quick: bool = False, *, long: bool = False) -> list[dict[str, object]]:
    """Measure tick costs in this process; with ``long``, also spoolcron's precision alone.

    The side-by-side precision run is ``bench_periodic``; ``long`` adds this one, spoolcron
    alone for 10 minutes (20 s when quick), with the dispatcher's own timings.
    """
    setup_django()
    rows = _beat_idle_tick(quick)
    if long:
        rows += _beat_precision(quick, long)
    return rows
