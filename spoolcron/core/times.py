"""Unix times to datetimes, in one place: aware UTC for computing, the database's own kind for
storing (aware UTC with ``USE_TZ``, naive local time without it, as Django's backends want)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone

__all__ = ["aware", "from_db_datetime", "now", "to_db_datetime", "utc"]


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
