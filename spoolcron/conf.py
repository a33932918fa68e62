"""The ``SPOOLCRON`` setting, read on use (never at import) and validated in one place."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .exceptions import SpoolcronImproperlyConfigured

__all__ = ["MIN_PENDING_LEASE", "PENDING_STORES", "Settings", "get_settings"]

_DEFAULTS: dict[str, Any] = {
    "SPOOL_DIR": None,
    "FAILED_DIR": None,
    "FSYNC": False,
    "ON_COMMIT": True,
    "RETRY_BACKOFF": 2.0,
    "MAX_RETRY_DELAY": 3600.0,
    "MODULES": (),
    "HISTORY_DAYS": 7,
    "FAILED_DAYS": None,
    "PENDING_STORE": "files",
    "PENDING_DIR": None,
    "HORIZON": 5.0,
    "PENDING_LEASE": 60.0,
    "METRICS": False,
}

PENDING_STORES = ("files", "database")

MIN_PENDING_LEASE = 10.0
"""The shortest ``PENDING_LEASE``: a mule renews its claims every few seconds."""


@dataclass(frozen=True)
class Settings:
    spool_dir: Path
    failed_dir: Path
    fsync: bool
    on_commit: bool
    retry_backoff: float
    max_retry_delay: float
    modules: tuple[str, ...]
    history_retention: timedelta
    failed_retention: timedelta
    """How long a failed file is kept (``FAILED_DAYS``; default: ``HISTORY_DAYS``)."""
    pending_store: str
    """Where jobs due later than ``horizon`` wait: "files" or "database"."""
    pending_dir: Path
    horizon: float
    """Jobs due within this many seconds are written straight into the spool directory."""
    pending_lease: float
    """How long a host's claim on a job of the database store holds unless its mule renews
    it; then another host publishes the job again."""
    metrics: bool = False
    """Whether job events are counted for Prometheus (``spoolcron.metrics``; needs the
    ``metrics`` extra)."""


def _raw() -> Mapping[str, Any]:
    raw = getattr(settings, "SPOOLCRON", {})
    if not isinstance(raw, Mapping):
        raise SpoolcronImproperlyConfigured(
            f"The SPOOLCRON setting must be a dict, not {type(raw).__name__!r}."
        )
    unknown = sorted(set(raw) - set(_DEFAULTS))
    if unknown:
        raise SpoolcronImproperlyConfigured(
            f"Unknown key {unknown[0]!r} in the SPOOLCRON setting; "
            f"valid keys are {', '.join(sorted(_DEFAULTS))}."
        )
    return {**_DEFAULTS, **raw}


def _number(raw: Mapping[str, Any], key: str, unit: str = "seconds", minimum: float = 0.0) -> float:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise SpoolcronImproperlyConfigured(
            f"SPOOLCRON[{key!r}] must be a number of {unit} >= {minimum:g}, not {value!r}."
        )
    return float(value)


@functools.cache
def get_settings() -> Settings:
    """The current settings, validated once and cached until a setting changes."""
    raw = _raw()
    spool_dir = raw["SPOOL_DIR"]
    if not spool_dir:
        raise SpoolcronImproperlyConfigured(
            "SPOOLCRON['SPOOL_DIR'] is not set; set it to the directory uWSGI's --spooler uses."
        )
    spool = Path(spool_dir)
    failed = Path(raw["FAILED_DIR"]) if raw["FAILED_DIR"] else spool.parent / "failed"
    modules = raw["MODULES"]
    if isinstance(modules, str) or not all(isinstance(m, str) for m in modules):
        raise SpoolcronImproperlyConfigured(
            f"SPOOLCRON['MODULES'] must be a list of module names, not {modules!r}."
        )
    store = raw["PENDING_STORE"]
    if store not in PENDING_STORES:
        raise SpoolcronImproperlyConfigured(
            f"SPOOLCRON['PENDING_STORE'] must be one of {', '.join(map(repr, PENDING_STORES))}, "
            f"not {store!r}."
        )
    pending = Path(raw["PENDING_DIR"]) if raw["PENDING_DIR"] else spool.parent / "pending"
    if not isinstance(raw["METRICS"], bool):
        raise SpoolcronImproperlyConfigured(
            f"SPOOLCRON['METRICS'] must be True or False, not {raw['METRICS']!r}."
        )
    history = timedelta(days=_number(raw, "HISTORY_DAYS", unit="days"))
    return Settings(
        spool_dir=spool,
        failed_dir=failed,
        fsync=bool(raw["FSYNC"]),
        on_commit=bool(raw["ON_COMMIT"]),
        retry_backoff=_number(raw, "RETRY_BACKOFF"),
        max_retry_delay=_number(raw, "MAX_RETRY_DELAY"),
        modules=tuple(modules),
        history_retention=history,
        failed_retention=(
            history
            if raw["FAILED_DAYS"] is None
            else timedelta(days=_number(raw, "FAILED_DAYS", unit="days"))
        ),
        pending_store=store,
        pending_dir=pending,
        horizon=_number(raw, "HORIZON"),
        # Mules renew their claims every few seconds: a shorter lease would expire meanwhile.
        pending_lease=_number(raw, "PENDING_LEASE", minimum=MIN_PENDING_LEASE),
        metrics=raw["METRICS"],
    )


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    # override_settings() and test fixtures change settings at run time.
    if setting == "SPOOLCRON":
        get_settings.cache_clear()
