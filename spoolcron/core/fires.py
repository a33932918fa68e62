"""Fire times: the job id of a fire, and the fires of a schedule in a window (the beat's
misfire policy, backfill and upcoming use them)."""

from __future__ import annotations

import collections
import hashlib
import re
from datetime import UTC, datetime

import schedules

__all__ = ["count_fires", "fire_job_id", "next_fire", "recent_fires"]


def fire_job_id(entry: str, fire_time: float) -> str:
    """The job id of one fire: the same in every process, so two writers collide."""
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", entry)[:48].strip("-") or "entry"
    digest = hashlib.sha1(entry.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{slug}-{digest}-{round(fire_time * 1000)}"


def next_fire(schedule: schedules.Schedule, after: float) -> float | None:
    """The first fire time after ``after`` (Unix times); None for a spent one-shot."""
    fire = schedule.next_after(datetime.fromtimestamp(after, UTC))
    return None if fire is None else fire.timestamp()


def recent_fires(
    schedule: schedules.Schedule, after: float, until: float, limit: int
) -> list[float]:
    """Up to ``limit`` of the latest fire times in (after, until], oldest first.

    Looks back in growing windows from ``until``, so a long outage of a frequent schedule
    costs about ``limit`` steps, not one step per missed fire.
    """
    span = 60.0
    while True:
        start = max(after, until - span)
        found: collections.deque[float] = collections.deque(maxlen=limit)
        fire = next_fire(schedule, start)
        while fire is not None and fire <= until:
            found.append(fire)
            fire = next_fire(schedule, fire)
        if len(found) >= limit or start == after:
            return list(found)
        span *= 16


def count_fires(
    schedule: schedules.Schedule, after: float, until: float, limit: int = 10_000
) -> int | None:
    """How many fire times fall in (after, until]; None when more than ``limit``."""
    count = 0
    fire = next_fire(schedule, after)
    while fire is not None and fire <= until:
        count += 1
        if count > limit:
            return None
        fire = next_fire(schedule, fire)
    return count
