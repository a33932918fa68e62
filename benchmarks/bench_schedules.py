"""How fast ``schedules`` computes fire times and parses expressions.

Targets (one core): ``next_after`` at least 50,000 calls/s for an interval and 10,000 calls/s
for a cron or calendar schedule. Each scenario calls the function on distinct, pseudo-random
datetimes spread over a year (no two inputs alike, so nothing is answered from a cache), times
several repeats with ``time.perf_counter`` and reports the median.

Run ``python benchmarks/bench_schedules.py [--quick]`` for a table.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import schedules

__all__ = ["run"]

INTERVAL_TARGET = 50_000
CRON_TARGET = 10_000

# (expression, zone, target calls/s)
NEXT_AFTER = [
    ("every 5 seconds", "UTC", INTERVAL_TARGET),
    ("every 5 seconds", "Europe/Rome", INTERVAL_TARGET),
    ("every 15 minutes", "Australia/Lord_Howe", INTERVAL_TARGET),
    ("*/5 * * * *", "UTC", CRON_TARGET),
    ("*/15 * * * *", "Australia/Lord_Howe", CRON_TARGET),
    ("0 9 * * MON-FRI", "Europe/Rome", CRON_TARGET),
    ("30 */5 * * * *", "UTC", CRON_TARGET),
    ("@daily", "America/New_York", CRON_TARGET),
    ("Sunday 17:03", "Europe/Rome", CRON_TARGET),
    ("weekdays at 09:30", "America/New_York", CRON_TARGET),
    ("monthly on the last day at 23:00", "Europe/Rome", CRON_TARGET),
    ("every hour at :15", "Australia/Lord_Howe", CRON_TARGET),
    ("once at 2026-12-24 18:00", "Europe/Rome", CRON_TARGET),
]
PARSE = ["every 5 seconds", "Sunday 17:03", "*/5 * * * *", "monthly on the 1st at 09:00"]


def _moments(count: int, seed: int = 2026) -> list[datetime]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        start + timedelta(microseconds=rng.randrange(365 * 86_400 * 10**6)) for _ in range(count)
    ]


def _median_rate(call: Callable[[], None], calls: int, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        rates.append(calls / (time.perf_counter() - began))
    return statistics.median(rates)


def run(quick: bool = False) -> list[dict[str, object]]:
    """Measure every scenario; one row per scenario and schedule."""
    calls, repeats = (300, 3) if quick else (3000, 7)
    moments = _moments(calls)
    rows: list[dict[str, object]] = []
    for text, zone, target in NEXT_AFTER:
        schedule = schedules.parse(text, tz=zone)
        next_after = schedule.next_after

        def each_moment(next_after: Callable[[datetime], object] = next_after) -> None:
            for moment in moments:
                next_after(moment)

        each_moment()  # warm up: first calls load zone data
        rate = _median_rate(each_moment, calls, repeats)
        rows.append(
            {
                "scenario": "next_after",
                "schedule": text,
                "tz": zone,
                "kind": type(schedule).__name__,
                "calls_per_s_median": round(rate),
                "target_calls_per_s": target,
                "meets_target": rate >= target,
                "calls": calls,
                "repeats": repeats,
            }
        )
    for text in PARSE:

        def parse_many(text: str = text) -> None:
            for _ in range(calls):
                schedules.parse(text, tz="Europe/Rome")

        rate = _median_rate(parse_many, calls, repeats)
        rows.append(
            {
                "scenario": "parse",
                "schedule": text,
                "tz": "Europe/Rome",
                "kind": "",
                "calls_per_s_median": round(rate),
                "target_calls_per_s": None,
                "meets_target": None,
                "calls": calls,
                "repeats": repeats,
            }
        )
    return rows


def _table(rows: list[dict[str, object]]) -> str:
    header = f"{'scenario':<11} {'schedule':<34} {'tz':<20} {'calls/s (median)':>17}  target"
    lines = [header, "-" * len(header)]
    for row in rows:
        target = row["target_calls_per_s"]
        verdict = (
            "" if target is None else f"{target:>6,} {'ok' if row['meets_target'] else 'MISS'}"
        )
        lines.append(
            f"{row['scenario']:<11} {row['schedule']!s:<34} {row['tz']!s:<20} "
            f"{row['calls_per_s_median']:>17,}  {verdict}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(_table(run(quick="--quick" in sys.argv[1:])))
