"""Unix times to datetimes, in one place: aware UTC for computing, the database's own kind for
storing (aware UTC with ``USE_TZ``, naive local time without it, as Django's backends want)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from ..exceptions import InvalidArguments

__all__ = ["aware", "from_db_datetime", "now", "timestamp_of", "to_db_datetime", "utc"]


def utc(timestamp: float) -> datetime:
    """``timestamp`` as an aware datetime in UTC."""
    return datetime.fromtimestamp(timestamp, UTC)


def to_db_datetime(timestamp: float | datetime) -> datetime:
    """A Unix time (or a datetime) as a DateTimeField stores it under the current USE_TZ."""
    value = utc(timestamp) if not isinstance(timestamp, datetime) else timestamp
    if settings.USE_TZ:
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    return timezone.make_naive(value) if timezone.is_aware(value) else value


def from_db_datetime(value: datetime) -> float:
    """The Unix time of a datetime read from the database (naive ones are local time)."""
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value.timestamp()


def now() -> datetime:
    """The current time, aware in UTC whatever USE_TZ says (Django's ``timezone.now()`` is
    naive without USE_TZ, and naive and aware datetimes do not compare)."""
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """A datetime read from the database as an aware one in UTC (naive ones are local time)."""
    return utc(from_db_datetime(value))


def timestamp_of(run_after: datetime | timedelta | float | None, now: float) -> float:
    """The Unix time of a ``run_after`` (default: ``now``); InvalidArguments if unusable.

    Naive datetimes are local time, and refused while USE_TZ is on.
    """
    if run_after is None:
        return now
    if isinstance(run_after, datetime):
        if timezone.is_naive(run_after):
            if settings.USE_TZ:
                raise InvalidArguments(
                    f"run_after={run_after!r} is a naive datetime while USE_TZ is on; pass an "
                    "aware one, e.g. timezone.now() + timedelta(minutes=5)."
                )
            run_after = timezone.make_aware(run_after)
        value = run_after.timestamp()
        if not math.isfinite(value):
            raise InvalidArguments(f"run_after={run_after!r} is not a usable time.")
        return value
    if isinstance(run_after, timedelta):
        return now + run_after.total_seconds()
    if isinstance(run_after, int | float) and not isinstance(run_after, bool):
        if not math.isfinite(run_after):
            raise InvalidArguments(
                f"run_after must be a finite number of seconds, not {run_after!r}."
            )
        return now + run_after
    raise InvalidArguments(
        f"run_after must be a datetime, a timedelta or a number of seconds, not {run_after!r}."
    )
