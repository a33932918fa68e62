"""The only module that imports ``uwsgi``: the spooler callable and the spoolcron mule.

Add to the uWSGI config (``manage.py spoolcron uwsgi-config`` prints it)::

    spooler = /path/to/SPOOL_DIR
    shared-import = spoolcron.uwsgi
    mule = /path/to/site-packages/spoolcron/mule.py

``shared-import`` imports this module in the master before anything forks, so the spooler
has the callable also under ``lazy-apps``; the mule is a script for the same reason (see
spoolcron/mule.py).

Why a mule and not ``@timer``/``@cron``: timers registered in workers are duplicated under
``lazy-apps``, have one-second resolution and start their period at registration, and the
spooler may not register signals. A single programmed mule exists once per uWSGI instance
whatever the number of workers or ``lazy-apps``, is respawned by the master if it dies, and can
sleep until the exact instant something is due.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import uwsgi

# uwsgidecorators replaces uwsgi.spooler when imported: let it do so first, then chain to it.
with contextlib.suppress(ImportError):
    import uwsgidecorators  # noqa: F401

__all__ = ["mule", "spooler"]

logger = logging.getLogger("spoolcron.uwsgi")

_previous_spooler = getattr(uwsgi, "spooler", None)


def _setup_django() -> None:
    # Under lazy-apps the spooler and mules fork before any app is loaded.
    from django.apps import apps

    if not apps.ready:
        import django

        django.setup()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def spooler(env: Mapping[Any, Any]) -> int:
    """uWSGI's spooler callable: run spoolcron files, hand anything else to the previous one."""
    from . import spoolfile

    if spoolfile.MARKER not in env and _previous_spooler is not None:
        return int(_previous_spooler(env))
    _setup_django()
    from .conf import get_settings
    from .dispatch import Outcome, run_spool_file

    # A bare file name, relative to the spooler's working directory: its spool dir.
    path = Path(_text(env["spooler_task_name"])).absolute()
    args = {key: value for key, value in env.items() if isinstance(key, bytes)}
    body = env.get("body") or b""
    # hold(): the spooler's POSIX lock on this file dies if this process opens and closes
    # the file again, so everything below reads it from what uWSGI passed in.
    with spoolfile.hold(path, args, body) as file:
        if not file.is_ours:
            reason = (
                f"Spool file {str(path)!r} is not a spoolcron file and no other spooler "
                "callable is installed."
            )
            spoolfile.quarantine(path, get_settings().failed_dir, reason)
            return int(uwsgi.SPOOL_RETRY)
        result = run_spool_file(file)
    # A moved (quarantined) file must not be reported done: uWSGI would unlink the name,
    # fail, and kill the spooler. "Retry" finds the name gone on the next scan.
    if result.outcome in (Outcome.NOT_DUE, Outcome.QUARANTINED, Outcome.FAILED):
        return int(uwsgi.SPOOL_RETRY)
    return int(uwsgi.SPOOL_OK)


def _option_values(name: str) -> list[str]:
    value = uwsgi.opt.get(name, uwsgi.opt.get(name.encode()))
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [_text(v) for v in values if v is not True]


def server_options() -> Any:
    """uWSGI's options that spoolcron's system checks look at."""
    from .checks import ServerOptions

    frequency = _option_values("spooler-frequency")
    return ServerOptions(
        spooler_dirs=tuple(Path(d) for d in _option_values("spooler")),
        spooler_frequency=int(frequency[-1]) if frequency else 30,
        has_spoolcron_mule=any("spoolcron" in m and "mule" in m for m in _option_values("mule")),
    )


def _spooler_pids() -> list[int]:
    return [int(pid) for pid in uwsgi.spooler_pids() if pid]


def _wake_spoolers() -> None:
    for pid in _spooler_pids():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)


def _start_beat(waker: Any) -> Any:
    from django.core.checks import ERROR, run_checks

    from .beat import Beat
    from .conf import get_settings
    from .entries import collect
    from .ledger import DatabaseLedger

    messages = run_checks(tags=["spoolcron"])
    for message in messages:
        log = logger.critical if message.level >= ERROR else logger.warning
        log("%s (%s)", message.msg, message.id)
    if any(message.level >= ERROR for message in messages):
        logger.critical("spoolcron: system check errors, stopping uWSGI")
        # Refuse to run with a broken schedule or setup, as manage.py would.
        os.kill(uwsgi.masterpid(), signal.SIGINT)
        return None
    entries, _ = collect()
    conf = get_settings()
    beat = Beat(entries, DatabaseLedger(), conf.spool_dir, notify=waker.notify, fsync=conf.fsync)
    while True:
        try:
            beat.start()
            return beat
        except Exception:
            logger.exception("beat could not read the ledger, retrying in 1 s")
            _reset_db_connections()
            time.sleep(1.0)


def _reset_db_connections() -> None:
    from django.db import connections

    for connection in connections.all():
        connection.close_if_unusable_or_obsolete()


def mule() -> None:
    """The spoolcron mule: runs the beat, wakes the spooler when jobs fall due, heartbeats."""
    _setup_django()
    from django.db import connections

    from . import heartbeat, spoolfile
    from .conf import get_settings
    from .waker import Waker

    # Inherited from the master across fork: never share them.
    for connection in connections.all():
        connection.close()
    conf = get_settings()
    spoolfile.ensure_dir(conf.spool_dir)
    frequency = uwsgi.opt.get("spooler-frequency") or uwsgi.opt.get(b"spooler-frequency")
    waker = Waker(conf.spool_dir, _wake_spoolers)
    beat = _start_beat(waker)
    if beat is None:
        return
    logger.info("spoolcron mule started pid=%d spool_dir=%s", os.getpid(), conf.spool_dir)
    ledger = beat.ledger
    next_heartbeat = next_prune = 0.0
    while True:
        beat_delay = beat.tick()
        if beat_delay > 0:
            _reset_db_connections()
        delay = min(beat_delay, waker.step())
        now = time.time()
        if now >= next_heartbeat:
            heartbeat.write(
                conf.spool_dir,
                spooler_pids=_spooler_pids(),
                frequency=int(_text(frequency)) if frequency else None,
            )
            next_heartbeat = now + 1.0
        if now >= next_prune:
            next_prune = now + 3600.0
            try:
                ledger.prune(keep=conf.history_retention)
            except Exception:
                logger.exception("could not prune the run history")
        time.sleep(delay)


uwsgi.spooler = spooler
