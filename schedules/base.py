"""The Schedule base class: an immutable, hashable value with one method for fire times."""

from __future__ import annotations

import abc
import zoneinfo
from datetime import datetime
from typing import Any, NoReturn

from schedules.zones import zone_name

__all__ = ["Schedule"]


class Schedule(abc.ABC):
    """When something fires, in one time zone.

    Subclasses are small immutable values: equal when they are of one class with the same
    canonical fields and zone, hashable, picklable, and ``parse(str(s), tz=s.tz) == s``. They
    hold no cursor; ``next_after`` is a pure function of the schedule and its argument.
    """

    __slots__ = ("_hash", "_identity", "_tz")

    _tz: zoneinfo.ZoneInfo
    _identity: tuple[object, ...]  # set on first use by _identity_key()
    _hash: int

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        """The zone whose wall clock the schedule follows; fire times are returned in it."""
        return self._tz

    @abc.abstractmethod
    def next_after(self, dt: datetime) -> datetime | None:
        """The first fire time strictly after the aware ``dt``, in ``self.tz``.

        ``None`` when there is none (a one-shot that is spent). A naive ``dt`` raises
        ValueError.
        """

    @abc.abstractmethod
    def describe(self) -> str:
        """Plain English, ending with the zone: ``every Sunday at 17:03 (Europe/Rome)``."""

    @property
    @abc.abstractmethod
    def hourly_or_faster(self) -> bool:
        """True when the schedule fires every hour (of the days it runs) or more often.

        Such schedules follow absolute time across DST changes (see the README); the others
        follow the local wall clock.
        """

    @abc.abstractmethod
    def __str__(self) -> str:
        """The canonical expression, without the zone."""

    @abc.abstractmethod
    def _key(self) -> tuple[object, ...]:
        """The fields that make two schedules of this class equal (the zone excluded)."""

    @abc.abstractmethod
    def _init_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Constructor arguments that rebuild this schedule (for pickle and copy)."""

    def _zone_key(self) -> object:
        # ZoneInfo instances built with no_cache() or from_file() are distinct objects for
        # one zone; compare by name where there is one.
        return self.tz.key if self.tz.key is not None else self.tz

    def _identity_key(self) -> tuple[object, ...]:
        # Computed once: entries sharing a schedule are grouped by it (upcoming, the beat),
        # so equality and hashing run once per entry and must not rebuild keys each time.
        try:
            return self._identity
        except AttributeError:
            identity = (self._key(), self._zone_key())
            self._set("_identity", identity)
            self._set("_hash", hash((type(self).__name__, identity)))
            return identity

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Schedule)
        return self is other or self._identity_key() == other._identity_key()

    def __hash__(self) -> int:
        try:
            return self._hash
        except AttributeError:
            self._identity_key()
            return self._hash

    def __repr__(self) -> str:
        return f"schedules.parse({str(self)!r}, tz={zone_name(self.tz)!r})"

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot delete {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        args, kwargs = self._init_args()
        return (_rebuild, (type(self), args, kwargs))

    def _set(self, name: str, value: object) -> None:
        """Assign a slot during construction (the public setattr is closed)."""
        object.__setattr__(self, name, value)


def _rebuild(cls: type[Schedule], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Schedule:
    return cls(*args, **kwargs)
