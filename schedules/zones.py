"""Time zones and the one daylight-saving rule every wall-clock schedule follows.

Fire times are computed as naive local wall-clock candidates (by matching a cron line or by
arithmetic) and turned into instants here, with zoneinfo's ``fold``:

* wall-clock rule (``map_wall_clock``): a local time in a spring-forward gap fires at the
  first instant after the gap; a local time that occurs twice fires at its first occurrence;
* absolute rule (``next_absolute``, for schedules that repeat hourly or faster): fire at every
  instant whose local reading matches, so both halves of a repeated hour fire and readings
  that do not exist never fire.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

from schedules.errors import ScheduleError, did_you_mean

__all__ = [
    "EARLIEST",
    "UTC_ZONE",
    "NextNaive",
    "localize",
    "next_absolute",
    "next_wall_clock",
    "resolve_zone",
    "to_utc",
    "zone_name",
]

UTC_ZONE = zoneinfo.ZoneInfo("UTC")
#: next_after searches from here at the earliest: a day inside datetime's range, so that
#: every zone can show it. An earlier fire is never returned.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)

#: Next matching naive local wall-clock time strictly after the argument, or None if none.
NextNaive = Callable[[datetime], datetime | None]

_NORMAL, _REPEATED, _SKIPPED = 0, 1, 2
_ONE_SECOND = timedelta(seconds=1)
_TINY = timedelta(microseconds=1)
# Any loop over candidates ends long before this; hitting it means a bug, not slow input.
_MAX_STEPS = 100_000


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def resolve_zone(tz: str | tzinfo | None) -> zoneinfo.ZoneInfo:
    """Return the ZoneInfo for a zone name, a ZoneInfo, ``datetime.UTC`` or ``None`` (UTC)."""
    if tz is None or tz is UTC:
        return UTC_ZONE
    if isinstance(tz, zoneinfo.ZoneInfo):
        return tz
    if not isinstance(tz, str):
        raise TypeError(f"tz must be a zone name, a ZoneInfo or None, got {tz!r}")
    try:
        if tz.strip() != tz or not tz:
            raise ValueError(tz)
        return zoneinfo.ZoneInfo(tz)
    except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):
        # OSError: a directory ("Europe") or a name too long for the file system.
        hint = did_you_mean(tz.strip(), _zone_names(), cutoff=0.75) or (
            "use an IANA name such as 'Europe/Rome' or 'UTC'."
        )
        raise ScheduleError(
            tz, "it is not in the time zone database", None, hint, subject="time zone"
        ) from None


def zone_name(tz: zoneinfo.ZoneInfo) -> str:
    """The IANA name of a zone (``str(tz)`` for one loaded from a file)."""
    return tz.key if tz.key is not None else str(tz)


def to_utc(dt: datetime) -> datetime:
    """``dt`` as an aware UTC datetime; a naive ``dt`` is refused, never guessed.

    An instant before ``EARLIEST`` (2 January of year 1, UTC) is read as ``EARLIEST``, so that
    every zone can show it; one past the end of year 9999 in UTC as the last instant there is
    (nothing can fire after it).
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(
            f"next_after() needs an aware datetime, got the naive {dt!r}; "
            "attach a zone, e.g. dt.replace(tzinfo=datetime.UTC)."
        )
    try:
        utc = dt.astimezone(UTC)
    except OverflowError:  # within a day of year 1 or year 9999 in dt's zone
        return EARLIEST if dt.year == 1 else _LAST
    return EARLIEST if utc.year == 1 and utc < EARLIEST else utc


def _classify(naive: datetime, tz: zoneinfo.ZoneInfo) -> tuple[int, timedelta, timedelta]:
    """Return (kind, offset with fold=0, offset with fold=1) for a naive local time."""
    # A reading is a reading: a fold set on the input must not pick the occurrence.
    off0 = tz.utcoffset(naive.replace(fold=0))
    off1 = tz.utcoffset(naive.replace(fold=1))
    assert off0 is not None
    assert off1 is not None
    if off0 == off1:
        return _NORMAL, off0, off1
    # PEP 495: in a repeated hour fold=0 is the earlier reading (larger offset); in a gap
    # fold=0 applies the offset from before the change, which is the smaller one.
    return (_REPEATED if off0 > off1 else _SKIPPED), off0, off1


def _first_instant_with_new_offset(lo: datetime, hi: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    """The first whole second in (lo, hi] whose UTC offset differs from the offset at lo.

    lo and hi are naive UTC and straddle exactly one transition (they are at most the size
    of one DST shift apart), so a bisection over whole seconds finds it.
    """
    old = tz.fromutc(lo.replace(tzinfo=tz)).utcoffset()
    low, high = 0, int((hi - lo).total_seconds()) + 1
    while high - low > 1:
        middle = (low + high) // 2
        probe = (lo + timedelta(seconds=middle)).replace(tzinfo=tz)
        if tz.fromutc(probe).utcoffset() == old:
            low = middle
        else:
            high = middle
    return lo + timedelta(seconds=high)


def _gap_end(naive: datetime, off0: timedelta, off1: timedelta, tz: zoneinfo.ZoneInfo) -> datetime:
    """The first instant (naive UTC) after the spring-forward gap that holds ``naive``."""
    lo, hi = naive - off1, naive - off0
    return _first_instant_with_new_offset(lo.replace(microsecond=0), hi, tz)


def _repeated_window(
    naive: datetime, off0: timedelta, off1: timedelta, tz: zoneinfo.ZoneInfo
) -> tuple[datetime, datetime]:
    """The naive local readings [start, end) that occur twice around ``naive``."""
    lo, hi = naive - off0, naive - off1
    change = _first_instant_with_new_offset(lo.replace(microsecond=0), hi, tz)
    return change + off1, change + off0


def localize(naive: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    """A naive local time as an aware datetime in ``tz`` under the wall-clock rule."""
    return _wall_instant(naive, tz).replace(tzinfo=UTC).astimezone(tz)


def _wall_instant(naive: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    kind, off0, off1 = _classify(naive, tz)
    if kind == _SKIPPED:
        return _gap_end(naive, off0, off1, tz)
    # Normal and first occurrence of a repeated reading both use fold=0.
    return naive - off0


def next_wall_clock(
    next_naive: NextNaive, after: datetime, tz: zoneinfo.ZoneInfo
) -> datetime | None:
    """The first fire strictly after ``after`` (aware UTC) under the wall-clock rule; None
    when there is none before the end of year 9999 (in UTC and in ``tz``)."""
    try:
        return _next_wall_clock(next_naive, after, tz)
    except OverflowError:  # the next fire is past what datetime can hold
        return None


def _next_wall_clock(
    next_naive: NextNaive, after: datetime, tz: zoneinfo.ZoneInfo
) -> datetime | None:
    limit = after.replace(tzinfo=None)
    local = after.astimezone(tz)
    start = local.replace(tzinfo=None, fold=0)
    if local.fold:
        # ``after`` is in the second pass of a repeated hour: every reading left in that
        # hour already fired in the first pass, so resume at the end of the repeated hour.
        _, off0, off1 = _classify(start, tz)
        _, end = _repeated_window(start, off0, off1, tz)
        start = end - _TINY
    for _ in range(_MAX_STEPS):
        candidate = next_naive(start)
        if candidate is None:
            return None
        kind, off0, off1 = _classify(candidate, tz)
        if kind == _SKIPPED:
            instant = _gap_end(candidate, off0, off1, tz)
            if instant > limit:
                return _aware(instant, tz)
            # Every other reading in this gap lands on the same instant: jump past the gap.
            start = instant + off1 - _TINY
            continue
        if candidate - off0 > limit:
            return _aware(candidate - off0, tz)
        start = candidate
    raise RuntimeError(f"no fire time found after {after!r} within {_MAX_STEPS} candidates")


def next_absolute(next_naive: NextNaive, after: datetime, tz: zoneinfo.ZoneInfo) -> datetime | None:
    """The first fire strictly after ``after`` (aware UTC) under the absolute rule; None when
    there is none before the end of year 9999 (in UTC and in ``tz``)."""
    try:
        return _next_absolute(next_naive, after, tz)
    except OverflowError:  # the next fire is past what datetime can hold
        return None


def _next_absolute(
    next_naive: NextNaive, after: datetime, tz: zoneinfo.ZoneInfo
) -> datetime | None:
    local = after.astimezone(tz)
    start = local.replace(tzinfo=None, fold=0)
    kind, off0, off1 = _classify(start, tz)
    # Readings before this bound that occur twice are in their second pass already.
    second_pass_until = start
    if kind == _REPEATED:
        window_start, window_end = _repeated_window(start, off0, off1, tz)
        if local.fold:
            second_pass_until = window_end
        else:
            # First pass of a repeated hour: the rest of this pass comes first, then every
            # match of the second pass, and only then the readings after the hour.
            candidate = next_naive(start)
            if candidate is not None and candidate < window_end:
                return _aware(candidate - off0, tz)
            again = next_naive(window_start - _TINY)
            if again is not None and again < window_end:
                return _aware(again - off1, tz)
    for _ in range(_MAX_STEPS):
        candidate = next_naive(start)
        if candidate is None:
            return None
        kind, off0, off1 = _classify(candidate, tz)
        if kind == _NORMAL:
            return _aware(candidate - off0, tz)
        if kind == _REPEATED:
            return _aware(candidate - (off1 if candidate < second_pass_until else off0), tz)
        # A reading inside a spring-forward gap never happens, so it does not fire; resume at
        # the first reading after the gap instead of walking through every one inside it.
        start = _gap_end(candidate, off0, off1, tz) + off1 - _TINY
    raise RuntimeError(f"no fire time found after {after!r} within {_MAX_STEPS} candidates")


def _aware(naive_utc: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    return naive_utc.replace(tzinfo=UTC).astimezone(tz)
