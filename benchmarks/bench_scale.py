"""Scale of the beat: 10 to 100,000 entries, spoolcron vs Celery beat vs APScheduler.

Each (system, N) runs in a fresh process (``benchmarks.scale_probe``), so the memory it
reports is its own: the scheduler built with N entries of which none is due for months
(spoolcron: the beat benchmark's mix of large intervals, cron lines and calendar times;
Celery and APScheduler: half hourly-plus intervals, half cron lines in a month half a year
away). Per (system, N): the time to build and start it, its resident memory, the cost of
one idle wakeup, and listing the next 100 runs (see ``scale_probe.WHAT`` for what those are
in each system; Celery has no listing, APScheduler keeps one).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

from benchmarks.peers import NotRun, require
from benchmarks.project.server import REPO
from benchmarks.scale_probe import WHAT

__all__ = ["DESCRIPTIONS", "run"]

IDLE_TICK_BUDGET_US = 2000.0  # at 10,000 entries
UPCOMING_BUDGET_MS = 100.0  # at 10,000 entries
PROBE_TIMEOUT = 300.0

DESCRIPTIONS = {
    "beat_scale": (
        "Each system's scheduler with N entries, none due for months, in a fresh process. "
        "`setup_s`: building the entries (parsing included) and starting the scheduler. "
        "`rss_mib`: resident memory of that process after setup; `entries_mib`: minus the "
        "same process before building the entries (after the imports). `idle_wakeup_us`: "
        "one idle call of the scheduler's loop (the `idle_call` column), median over 5 "
        "repeats of a loop. `next_100_ms`: listing the next 100 runs (the `listing` "
        "column), median of 3. Budgets (spoolcron's, at 10,000 entries): idle tick <= 2 ms, "
        "next 100 <= 100 ms."
    ),
}

SYSTEMS = [
    ("spoolcron", "spoolcron beat", None),
    ("celery", "Celery beat", ("celery", "Celery")),
    ("apscheduler", "APScheduler 3", ("apscheduler", "APScheduler")),
]


def _probe(system: str, count: int, loops: int) -> dict[str, float] | str:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.scale_probe", system, str(count), str(loops)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"not measured: took over {PROBE_TIMEOUT:.0f} s"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = " ".join(done.stderr.strip().splitlines()[-1:])
        return f"failed (exit {done.returncode}): {tail}"
    result: dict[str, float] = json.loads(lines[-1])
    return result


def run(quick: bool = False) -> list[dict[str, object]]:
    sizes = (10, 1_000, 10_000) if quick else (10, 1_000, 10_000, 100_000)
    loops = 2_000 if quick else 20_000
    rows: list[dict[str, object]] = []
    for system, label, requirement in SYSTEMS:
        idle_call, listing = WHAT[system]
        try:
            if requirement:
                require(*requirement)
        except NotRun as reason:
            rows.append({"scenario": "beat_scale", "system": label, "entries": str(reason)})
            continue
        for count in sizes:
            row: dict[str, object] = {"scenario": "beat_scale", "system": label, "entries": count}
            result = _probe(system, count, loops)
            if isinstance(result, str):
                row["setup_s"] = result
                rows.append(row)
                continue
            row.update(
                {
                    "setup_s": result["setup_s"],
                    "rss_mib": result["rss_kib"] / 1024,
                    "entries_mib": (result["rss_kib"] - result["rss_base_kib"]) / 1024,
                    "idle_wakeup_us": result["idle_tick_us"],
                    "next_100_ms": result["upcoming_ms"],
                    "idle_call": idle_call,
                    "listing": listing,
                }
            )
            if system == "spoolcron" and count == 10_000:
                tick, upcoming = result["idle_tick_us"], result["upcoming_ms"]
                row["budget"] = (
                    f"idle <= {IDLE_TICK_BUDGET_US:,.0f} us, next 100 <= {UPCOMING_BUDGET_MS:g} ms"
                )
                row["meets_budget"] = (
                    tick <= IDLE_TICK_BUDGET_US
                    and upcoming <= UPCOMING_BUDGET_MS
                    and not math.isnan(tick)
                )
            rows.append(row)
    return rows
