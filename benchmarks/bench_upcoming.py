"""``spoolcron upcoming``: listing the next runs of many entries, in this process.

``spoolcron.upcoming.merge_upcoming`` with N resolved entries (the schedules parsed once, as
``collect()`` would) and 100 one-off jobs read from a spool directory, at a fixed instant.
The budget: the next 100 runs over 10,000 entries in under 100 ms.

Mixes: ``mixed`` is the beat benchmark's mix (large intervals, cron lines, weekday and
monthly calendar times, all in UTC; many calendar times and cron lines repeat, as they do
when entries are generated per tenant); ``daily, 5 zones`` is one daily time per entry
in one of five zones; ``distinct cron lines`` is the worst case: every entry a different
cron line, each computed on its own.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.bench_beat import T0, _expression, _quiet
from benchmarks.project.server import setup_django
from tests.helpers import resolved_entry

__all__ = ["DESCRIPTIONS", "run"]

BUDGET_MS = 100.0  # the next 100 runs over 10,000 entries
ONE_OFF_JOBS = 100
ZONES = ["UTC", "Europe/Rome", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]

DESCRIPTIONS = {
    "upcoming": (
        "`merge_upcoming()` (what `manage.py spoolcron upcoming` calls) listing the next "
        "`count` runs of N entries plus the one-off jobs read from a spool directory holding "
        f"{ONE_OFF_JOBS}, at a fixed instant; median of the repeats, reading the spool "
        "included, collecting the entries (importing and parsing) not. `distinct_schedules`: "
        "how many different schedules the entries have (fires are computed once per "
        "schedule). Budget: 100 runs over 10,000 entries in under 100 ms."
    ),
}


def _mixed(i: int) -> tuple[str, str]:
    return _expression(i), "UTC"


def _daily(i: int) -> tuple[str, str]:
    return f"daily at {(i // 60) % 24:02d}:{i % 60:02d}", ZONES[(i // 1440) % len(ZONES)]


def _distinct_cron(i: int) -> tuple[str, str]:
    return f"{i % 60} {(i // 60) % 24} {(i // 1440) % 28 + 1} * *", "UTC"


MIXES: dict[str, Callable[[int], tuple[str, str]]] = {
    "mixed": _mixed,
    "daily, 5 zones": _daily,
    "distinct cron lines": _distinct_cron,
}


def _entries(count: int, mix: Callable[[int], tuple[str, str]]) -> list[Any]:
    from benchmarks.project.tasks import stamp

    entries = []
    for i in range(count):
        text, zone = mix(i)
        entries.append(
            resolved_entry(
                f"bench-{i}", text, tz=zone, task=stamp, module="benchmarks.bench_upcoming"
            )
        )
    return entries


def _spool_with_jobs(directory: Path, now: datetime) -> Path:
    from spoolcron.core.payload import Payload
    from spoolcron.spool import files
    from spoolcron.spool.payloads import write_payload

    spool = files.ensure_dir(directory / "spool")
    for i in range(ONE_OFF_JOBS):
        when = now + timedelta(seconds=37 * i)
        job = Payload(
            task="benchmarks.project.tasks.stamp",
            job_id=f"job-{i}",
            run_after=when.timestamp(),
            args=[f"job-{i}"],
        )
        write_payload(spool, job)
    return spool


def _measure(
    entries: list[Any], spool: Path, now: datetime, count: int, repeats: int
) -> tuple[float, int]:
    from spoolcron.core.upcoming import merge_upcoming
    from spoolcron.spool.payloads import pending_payloads

    samples = []
    listed = 0
    for _ in range(repeats):
        started = time.perf_counter()
        spooled = [payload for _, payload in pending_payloads(spool)]
        result = merge_upcoming(entries, spooled, now=now, count=count)
        samples.append(time.perf_counter() - started)
        listed = len(result.runs)
    return statistics.median(samples) * 1000, listed


def run(quick: bool = False) -> list[dict[str, object]]:
    """Median time of one listing for several entry counts, mixes and counts."""
    setup_django()
    now = datetime.fromtimestamp(T0, UTC)
    repeats = 3 if quick else 9
    sizes = [1_000, 10_000]
    rows: list[dict[str, object]] = []
    with _quiet(), tempfile.TemporaryDirectory(prefix="spoolcron-bench-upcoming-") as tmp:
        spool = _spool_with_jobs(Path(tmp), now)
        for mix_name, mix in MIXES.items():
            for size in sizes:
                entries = _entries(size, mix)
                distinct = len({e.schedule for e in entries})
                for count in (20, 100):
                    median_ms, listed = _measure(entries, spool, now, count, repeats)
                    judged = size == 10_000 and count == 100
                    rows.append(
                        {
                            "scenario": "upcoming",
                            "mix": mix_name,
                            "entries": size,
                            "distinct_schedules": distinct,
                            "count": count,
                            "listed": listed,
                            "median_ms": round(median_ms, 1),
                            "budget": f"< {BUDGET_MS:g} ms" if judged else "",
                            "meets_budget": (median_ms < BUDGET_MS) if judged else None,
                            "repeats": repeats,
                        }
                    )
    return rows
