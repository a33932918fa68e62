"""The ``WHEN`` of the command line and the admin: an ISO date-time or ``+2h``, ``today``,
``tomorrow``...; a ``DURATION`` (``90s``, ``12h``, ``7d``); and the relative phrases
(``in 4 min``) they print."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, time, timedelta, tzinfo

from django.utils import timezone

from ..core.times import now as current_time
from ..exceptions import BadWhen

__all__ = ["parse_age", "parse_duration", "parse_when", "relative"]

_RELATIVE = re.compile(
    r"^\+\s*(?P<amount>\d+(?:\.\d+)?)\s*"
    r"(?P<unit>s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?)$"
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(
    r"^\+?\s*(?P<amount>\d+(?:\.\d+)?)\s*"
    r"(?P<unit>s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?)?$"
)


def _midnight_after(day: datetime, days: int, tz: tzinfo) -> datetime:
    local = day.astimezone(tz).date() + timedelta(days=days)
    return datetime.combine(local, time(0), tzinfo=tz)


def parse_when(
    text: str, *, now: datetime | None = None, tz: tzinfo | None = None, option: str = "--until"
) -> datetime:
    """The aware datetime meant by ``text``: an ISO date-time or a phrase relative to ``now``.

    ISO date-times without an offset are read in ``tz`` (default: the project's
    ``TIME_ZONE``). Phrases: ``now``, ``+90s``, ``+15m``, ``+2h``, ``+3d``, ``+1w`` (also
    ``+2 hours``...), ``today`` (the coming local midnight) and ``tomorrow`` (the one after).
    ``option`` names the argument in the error message.
    """
    zone = timezone.get_default_timezone() if tz is None else tz
    current = current_time() if now is None else now
    phrase = text.strip().lower() if isinstance(text, str) else ""
    if phrase == "now":
        return current
    if phrase == "today":
        return _midnight_after(current, 1, zone)
    if phrase == "tomorrow":
        return _midnight_after(current, 2, zone)
    match = _RELATIVE.match(phrase)
    if match:
        seconds = float(match["amount"]) * _UNIT_SECONDS[match["unit"][0]]
        try:
            return current + timedelta(seconds=seconds)
        except OverflowError:
            pass
    elif phrase:
        try:
            parsed = datetime.fromisoformat(text.strip())
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)
    raise BadWhen(
        f"Cannot understand {option} {text!r}: use an ISO date-time like 2026-12-24T18:00 "
        "or +2h, +3d, today, tomorrow."
    )


def _duration(text: str) -> float | None:
    match = _DURATION.match(text.strip().lower()) if isinstance(text, str) else None
    if match is None:
        return None
    seconds = float(match["amount"]) * _UNIT_SECONDS[(match["unit"] or "s")[0]]
    return seconds if math.isfinite(seconds) else None


def parse_duration(text: str, *, option: str = "--failed-since") -> float:
    """The seconds ``text`` means: ``90s``, ``15m``, ``12h``, ``7d``, ``2w`` (also ``7 days``)
    or a plain number of seconds. ``option`` names the argument in the error message."""
    seconds = _duration(text)
    if seconds is None:
        raise BadWhen(
            f"Cannot understand {option} {text!r}: use a duration like 30m, 12h, 7d or a "
            "number of seconds."
        )
    return seconds


def parse_age(
    text: str,
    *,
    now: datetime | None = None,
    tz: tzinfo | None = None,
    option: str = "--older-than",
) -> datetime:
    """The instant ``text`` means as an age: ``7d`` is seven days before ``now``, an ISO
    date-time is itself (read in ``tz``, default ``TIME_ZONE``, without an offset)."""
    current = current_time() if now is None else now
    seconds = _duration(text)
    if seconds is not None:
        try:
            return current - timedelta(seconds=seconds)
        except OverflowError:  # before year 1: nothing is that old
            return datetime.min.replace(tzinfo=UTC)
    if isinstance(text, str) and text.strip():
        try:
            parsed = datetime.fromisoformat(text.strip())
        except ValueError:
            pass
        else:
            zone = timezone.get_default_timezone() if tz is None else tz
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)
    raise BadWhen(
        f"Cannot understand {option} {text!r}: use a duration like 12h, 7d, 2w or an ISO "
        "date-time like 2026-12-24T18:00."
    )


def relative(seconds: float) -> str:
    """``"in 4 min"``, ``"2 s ago"``, ``"in 1 h 5 min"``, ``"in 3 d 2 h"`` or ``"now"``."""
    whole = round(abs(seconds))
    if whole == 0:
        return "now"
    if whole < 60:
        amount = f"{whole} s"
    elif whole < 3600 - 30:
        amount = f"{round(whole / 60)} min"
    elif whole < 86400 - 30:
        hours, minutes = divmod(round(whole / 60), 60)
        amount = f"{hours} h {minutes} min" if minutes else f"{hours} h"
    else:
        days, hours = divmod(round(whole / 3600), 24)
        amount = f"{days} d {hours} h" if hours else f"{days} d"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"
