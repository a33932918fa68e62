"""The ``SPOOLCRON`` setting, read on use (never at import) and validated in one place."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .exceptions import SpoolcronImproperlyConfigured

__all__ = [
    "DEFAULT_QUEUE",
    "MIN_PENDING_LEASE",
    "PENDING_STORES",
    "Queue",
    "Settings",
    "get_settings",
]

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
    "QUEUES": {},
    "REMOTE_KEYS": (),
    "REMOTE_TTL": 300.0,
    "NGINX_TOKENS": (),
    "SPOOLER_NICE": 0,
}

DEFAULT_QUEUE = "default"
"""The queue of every job that names none: ``SPOOL_DIR``, one spooler process."""
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LOCAL_KEYS = frozenset({"spool_dir", "processes"})
_REMOTE_KEYS = frozenset({"address", "spooler", "timeout"})

PENDING_STORES = ("files", "database")

MIN_PENDING_LEASE = 10.0
"""The shortest ``PENDING_LEASE``: a mule renews its claims every few seconds."""


@dataclass(frozen=True)
class Queue:
    """A queue: a local spool directory with its spooler processes, or a remote uWSGI
    instance's spooler reached over the uwsgi protocol (``address``)."""

    name: str
    spool_dir: Path | None = None
    processes: int = 1
    address: str | None = None
    """``host:port`` (or a unix socket path) of the remote instance."""
    spooler: str | None = None
    """The remote spool directory (one of its ``--spooler``); None: its first one."""
    timeout: float = 5.0
    """Seconds a remote enqueue may take, connecting and answering each."""

    @property
    def is_remote(self) -> bool:
        return self.address is not None


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
    queues: Mapping[str, Queue] = field(default_factory=dict)
    """Every queue by name, ``default`` first (``SPOOL_DIR``)."""
    remote_keys: tuple[bytes, ...] = ()
    """Keys of remote jobs' signatures: the first signs, any verifies (rotation)."""
    remote_ttl: float = 300.0
    """How long after its due time (or its sending, if later) a remote job may still run."""
    nginx_tokens: tuple[bytes, ...] = ()
    """The shared tokens a request from nginx must carry (``spoolcron_token``)."""
    spooler_nice: int | None = 0
    """The nice value a spooler sets itself to (uWSGI starts it at 19); None: left alone."""

    def queue(self, name: str | None) -> Queue:
        """The queue ``name`` (None: the default); KeyError for an unknown one."""
        return self.queues[name or DEFAULT_QUEUE]

    @property
    def local_queues(self) -> list[Queue]:
        """The queues with a spool directory on this host, the default first."""
        return [queue for queue in self.queues.values() if not queue.is_remote]


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
    queues = _queues(raw["QUEUES"], spool)
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
        queues=queues,
        remote_keys=_secrets(raw, "REMOTE_KEYS"),
        remote_ttl=_number(raw, "REMOTE_TTL", minimum=1.0),
        nginx_tokens=_secrets(raw, "NGINX_TOKENS"),
        spooler_nice=_nice(raw["SPOOLER_NICE"]),
    )


def _nice(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and -20 <= value <= 19:
        return value
    raise SpoolcronImproperlyConfigured(
        f"SPOOLCRON['SPOOLER_NICE'] must be a nice value from -20 to 19 or None, not {value!r}."
    )


def _queues(raw: Any, spool: Path) -> dict[str, Queue]:
    """``QUEUES`` validated; the default queue is always there, on ``SPOOL_DIR``."""
    if not isinstance(raw, Mapping):
        raise SpoolcronImproperlyConfigured(
            f"SPOOLCRON['QUEUES'] must be a dict of queue name -> options, not {raw!r}."
        )
    queues = {DEFAULT_QUEUE: Queue(DEFAULT_QUEUE, spool_dir=spool)}
    for name, options in raw.items():
        where = f"SPOOLCRON['QUEUES'][{name!r}]"
        if not isinstance(name, str) or not _QUEUE_NAME.fullmatch(name):
            raise SpoolcronImproperlyConfigured(
                f"SPOOLCRON['QUEUES'] has the queue name {name!r}: use 1-64 letters, digits, "
                "'_' or '-'."
            )
        if not isinstance(options, Mapping):
            raise SpoolcronImproperlyConfigured(f"{where} must be a dict, not {options!r}.")
        queues[name] = _queue(name, options, where, queues[DEFAULT_QUEUE])
    return queues


def _queue(name: str, options: Mapping[str, Any], where: str, default: Queue) -> Queue:
    remote = "address" in options
    allowed = _REMOTE_KEYS if remote else _LOCAL_KEYS
    unknown = sorted(set(options) - allowed)
    if unknown:
        kind = "a remote queue (with 'address')" if remote else "a local queue"
        raise SpoolcronImproperlyConfigured(
            f"{where} has the unknown key {unknown[0]!r} for {kind}; valid keys are "
            f"{', '.join(sorted(allowed))}."
        )
    if name == DEFAULT_QUEUE and (remote or "spool_dir" in options):
        raise SpoolcronImproperlyConfigured(
            f"{where} may only set 'processes': the default queue is SPOOL_DIR."
        )
    if remote:
        address = options["address"]
        if not isinstance(address, str) or not _is_address(address):
            raise SpoolcronImproperlyConfigured(
                f"{where}['address'] must be 'host:port' or a unix socket path, not {address!r}."
            )
        spooler = options.get("spooler")
        if spooler is not None and (not isinstance(spooler, str) or not spooler):
            raise SpoolcronImproperlyConfigured(
                f"{where}['spooler'] must be the remote spool directory, not {spooler!r}."
            )
        timeout = options.get("timeout", 5.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise SpoolcronImproperlyConfigured(
                f"{where}['timeout'] must be a number of seconds > 0, not {timeout!r}."
            )
        return Queue(name, address=address, spooler=spooler, timeout=float(timeout))
    processes = options.get("processes", 1)
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise SpoolcronImproperlyConfigured(
            f"{where}['processes'] must be a whole number >= 1, not {processes!r}."
        )
    if name == DEFAULT_QUEUE:
        return Queue(name, default.spool_dir, processes)
    spool_dir = options.get("spool_dir")
    if not isinstance(spool_dir, str | Path) or not str(spool_dir):
        raise SpoolcronImproperlyConfigured(
            f"{where} needs 'spool_dir' (its own uWSGI --spooler directory) or 'address' "
            f"(a remote uWSGI instance), not {dict(options)!r}."
        )
    spool = Path(spool_dir)
    if default.spool_dir is not None and spool == default.spool_dir:
        raise SpoolcronImproperlyConfigured(
            f"{where}['spool_dir'] is SPOOL_DIR, the default queue's: give each queue its own."
        )
    return Queue(name, spool_dir=spool, processes=processes)


def _is_address(address: str) -> bool:
    if address.startswith("/"):
        return True
    host, colon, port = address.rpartition(":")
    return bool(colon and host and port.isdigit() and 0 < int(port) < 65536)


def _secrets(raw: Mapping[str, Any], key: str) -> tuple[bytes, ...]:
    values = raw[key]
    if (
        isinstance(values, str | bytes)
        or not isinstance(values, list | tuple)
        or not all(isinstance(v, str | bytes) and len(v) >= 16 for v in values)
    ):
        raise SpoolcronImproperlyConfigured(
            f"SPOOLCRON[{key!r}] must be a list of secrets of at least 16 characters (the "
            "first signs, every one is accepted), not "
            f"{_redacted(values)}."
        )
    return tuple(v.encode() if isinstance(v, str) else v for v in values)


def _redacted(values: Any) -> str:
    # Never print a secret in an error message.
    if isinstance(values, str | bytes):
        return f"a single {type(values).__name__} of {len(values)} characters"
    if isinstance(values, list | tuple):
        return f"a {type(values).__name__} of {len(values)} items, not all such secrets"
    return f"a {type(values).__name__}"


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    # override_settings() and test fixtures change settings at run time.
    if setting == "SPOOLCRON":
        get_settings.cache_clear()
