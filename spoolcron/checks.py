"""Django system checks, gathered in one place, with stable ids (listed in README.rst).

Entries (``collect()``):

=================  ===========================================================
spoolcron.E001     two entries share a name
spoolcron.E002     an entry's expression (or zone) is invalid
spoolcron.E003     an entry names a task that is not registered
spoolcron.E004     an entry has a bad option (misfire, overlap, grace, args…)
spoolcron.E005     a schedules module raises when imported
=================  ===========================================================

Settings and the server:

=================  ===========================================================
spoolcron.E010     the SPOOLCRON setting is missing or invalid
spoolcron.E011     the spool directory is not a writable directory
spoolcron.W011     the spool directory does not exist yet (it will be created)
spoolcron.E012     uWSGI's --spooler is not SPOOLCRON["SPOOL_DIR"]
spoolcron.E013     uWSGI runs without a spooler
spoolcron.W014     no spoolcron mule, and --spooler-frequency is coarser than an entry
spoolcron.W015     USE_TZ is off
=================  ===========================================================

The server checks look at uWSGI's options only inside a uWSGI process; ``manage.py check``
elsewhere runs the others. The spoolcron mule runs all of them when it starts and stops
uWSGI on an error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .conf import get_settings
from .entries import collect

__all__ = ["ServerOptions", "check_entries", "check_server", "check_settings"]


@dataclass(frozen=True)
class ServerOptions:
    """What the checks need to know of the running uWSGI."""

    spooler_dirs: tuple[Path, ...]
    spooler_frequency: int
    has_spoolcron_mule: bool


def server_options() -> ServerOptions | None:
    """uWSGI's options when running inside uWSGI, else None."""
    try:
        from . import uwsgi as hooks
    except ImportError:
        return None
    options: ServerOptions = hooks.server_options()
    return options


@register("spoolcron")
def check_entries(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    _, problems = collect()
    return [Error(str(problem), id=problem.id) for problem in problems]


@register("spoolcron")
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not settings.USE_TZ:
        messages.append(
            Warning(
                "USE_TZ is off: spoolcron then reads naive run_after datetimes in TIME_ZONE "
                "and cannot tell the two passes of a repeated hour apart.",
                hint="Set USE_TZ = True.",
                id="spoolcron.W015",
            )
        )
    try:
        conf = get_settings()
    except ImproperlyConfigured as exc:
        return [*messages, Error(str(exc), id="spoolcron.E010")]
    spool = conf.spool_dir
    if not spool.exists():
        messages.append(
            Warning(
                f"The spool directory {str(spool)!r} does not exist yet; uWSGI's --spooler or "
                "the first job enqueued creates it.",
                id="spoolcron.W011",
            )
        )
    elif not spool.is_dir() or not os.access(spool, os.W_OK | os.X_OK):
        messages.append(
            Error(
                f"The spool directory {str(spool)!r} is not a directory this process can write to.",
                hint="Fix SPOOLCRON['SPOOL_DIR'] or the directory's owner and mode.",
                id="spoolcron.E011",
            )
        )
    return messages


def _smallest_period(entries: Sequence[Any]) -> float | None:
    periods = [e.schedule.seconds for e in entries if hasattr(e.schedule, "seconds")]
    if any(e.schedule.hourly_or_faster and not hasattr(e.schedule, "seconds") for e in entries):
        periods.append(60.0)
    return min(periods) if periods else None


@register("spoolcron")
def check_server(
    app_configs: Sequence[AppConfig] | None = None,
    *,
    server: ServerOptions | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    server = server or server_options()
    if server is None:
        return []
    if not server.spooler_dirs:
        return [
            Error(
                "uWSGI runs without a spooler, so no spoolcron job will ever run.",
                hint="Add `spooler = <SPOOLCRON['SPOOL_DIR']>` to the uWSGI config "
                "(manage.py spoolcron uwsgi-config prints it).",
                id="spoolcron.E013",
            )
        ]
    messages: list[CheckMessage] = []
    try:
        spool = get_settings().spool_dir.resolve()
    except ImproperlyConfigured:
        return []  # reported as E010
    dirs = [d.resolve() for d in server.spooler_dirs]
    if spool not in dirs:
        messages.append(
            Error(
                f"SPOOLCRON['SPOOL_DIR'] is {str(spool)!r} but uWSGI's spooler uses "
                f"{', '.join(repr(str(d)) for d in dirs)}: jobs would be written where no "
                "spooler looks.",
                id="spoolcron.E012",
            )
        )
    if not server.has_spoolcron_mule:
        entries, _ = collect()
        smallest = _smallest_period(entries)
        if smallest is not None and server.spooler_frequency > smallest:
            messages.append(
                Warning(
                    f"Without the spoolcron mule the beat does not run and the spooler looks "
                    f"only every {server.spooler_frequency} s, coarser than an entry that "
                    f"fires every {smallest:g} s.",
                    hint="Add the mule line of `manage.py spoolcron uwsgi-config`.",
                    id="spoolcron.W014",
                )
            )
    return messages
