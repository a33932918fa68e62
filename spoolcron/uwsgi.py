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


MAX_STARTS = 3
"""How often a spooler may start one spool file and die before it returns (kill -9, a reload,
``--spooler-harakiri``); at the next start the file is quarantined instead of run again."""


def _is_uwsgidecorators(callable_: Any) -> bool:
    return getattr(callable_, "__module__", None) == "uwsgidecorators"


def _foreign(path: Path, env: Mapping[Any, Any], args: Mapping[bytes, bytes], body: bytes) -> int:
    """A file spoolcron did not write: the previous callable's, unless that would be unsafe."""
    from . import spoolfile
    from .conf import get_settings

    if _previous_spooler is not None:
        # uwsgidecorators unpickles a file's arguments before it looks up the function the
        # file names: hand it only files naming a function registered with its @spool.
        import uwsgidecorators

        function = _text(env.get(b"ud_spool_func", b""))
        if function and function in uwsgidecorators.spooler_functions:
            return int(_previous_spooler(env))
        reason = (
            f"Spool file {str(path)!r} is not a spoolcron file and names no function "
            f"registered with uwsgidecorators' @spool (ud_spool_func={function!r}), so it "
            "was not unpickled."
        )
    else:
        reason = (
            f"Spool file {str(path)!r} is not a spoolcron file and no other spooler "
            "callable is installed."
        )
    with spoolfile.hold(path, args, body):
        spoolfile.quarantine(path, get_settings().failed_dir, reason)
    logger.error("spool file quarantined path=%s reason=%s", path, reason)
    return int(uwsgi.SPOOL_RETRY)


def spooler(env: Mapping[Any, Any]) -> int:
    """uWSGI's spooler callable: run spoolcron files, hand anything else to the previous one."""
    from . import spoolfile

    if (
        spoolfile.MARKER not in env
        and _previous_spooler is not None
        and not _is_uwsgidecorators(_previous_spooler)
    ):
        return int(_previous_spooler(env))
    _setup_django()
    from .conf import get_settings
    from .dispatch import Outcome, give_up, run_spool_file
    from .payload import MAX_BODY_SIZE

    # A bare file name, relative to the spooler's working directory: its spool dir.
    path = Path(_text(env["spooler_task_name"])).absolute()
    args = {key: value for key, value in env.items() if isinstance(key, bytes)}
    body = env.get("body") or b""
    if spoolfile.MARKER not in env:
        return _foreign(path, env, args, body)
    failed_dir = get_settings().failed_dir
    # hold(): the spooler's POSIX lock on this file dies if this process opens and closes
    # the file again, so everything below reads it from what uWSGI passed in.
    with spoolfile.hold(path, args, body) as file:
        if len(body) > MAX_BODY_SIZE:
            reason = (
                f"Spool file {str(path)!r} is too large: its body is {len(body)} bytes, "
                f"over the {MAX_BODY_SIZE}-byte limit, so it was not read."
            )
            spoolfile.quarantine(path, failed_dir, reason)
            logger.error("spool file quarantined path=%s reason=%s", path, reason)
            return int(uwsgi.SPOOL_RETRY)
        try:
            starts = spoolfile.record_start(path)
        except OSError:
            # A full or read-only disk must not stop jobs: run it, uncounted.
            logger.exception("could not count the start of spool file path=%s", path)
            starts = 0
        if starts >= MAX_STARTS:
            reason = (
                f"Spool file {str(path)!r} was started {starts} times and the spooler died "
                "each time before its task returned (killed, a reload, or "
                "--spooler-harakiri); it is not run again."
            )
            give_up(file, reason)
            spoolfile.clear_starts(path)
            return int(uwsgi.SPOOL_RETRY)
        if starts:
            logger.warning(
                "spool file runs again after its spooler died path=%s starts=%d",
                path,
                starts + 1,
            )
        try:
            result = run_spool_file(file)
        finally:
            spoolfile.clear_starts(path)
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


def _make_beat(waker: Any) -> Any:
    """The beat, not started yet; None (and uWSGI stopping) if a system check fails."""
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
    return Beat(entries, DatabaseLedger(), conf.spool_dir, notify=waker.notify, fsync=conf.fsync)


def _reset_db_connections() -> None:
    from django.db import connections

    for connection in connections.all():
        connection.close_if_unusable_or_obsolete()


class _Throttled:
    """Log a recurring failure with its traceback once, then one line every ``every`` s."""

    def __init__(self, what: str, every: float = 30.0) -> None:
        self.what = what
        self.every = every
        self.failures = 0
        self.last = 0.0

    def failed(self, exc: BaseException, now: float) -> None:
        self.failures += 1
        if self.failures == 1:
            logger.error("%s, retrying", self.what, exc_info=exc)
            self.last = now
        elif now - self.last >= self.every:
            logger.warning("%s, still failing failed_attempts=%d", self.what, self.failures)
            self.last = now

    def succeeded(self) -> None:
        if self.failures:
            logger.warning("%s: works again after failed_attempts=%d", self.what, self.failures)
        self.failures = 0


def _make_private(directory: Path) -> None:
    from . import spoolfile

    try:
        old = spoolfile.make_private(directory)
    except FileNotFoundError:
        return
    if old is not None:
        logger.warning(
            "directory made private path=%s mode=%s was=%s",
            directory,
            oct(0o700 & old),
            oct(old),
        )


def mule() -> None:
    """The spoolcron mule: runs the beat, wakes the spooler when jobs fall due, heartbeats."""
    _setup_django()
    from django.db import connections

    from . import heartbeat, spoolfile
    from .conf import get_settings
    from .payload import MAX_BODY_SIZE
    from .waker import Waker

    # Inherited from the master across fork: never share them.
    for connection in connections.all():
        connection.close()
    conf = get_settings()
    spoolfile.ensure_dir(conf.spool_dir)
    # uWSGI creates its --spooler directory mode 0750: job arguments are nobody else's.
    _make_private(conf.spool_dir)
    _make_private(conf.failed_dir)
    frequency = uwsgi.opt.get("spooler-frequency") or uwsgi.opt.get(b"spooler-frequency")
    waker = Waker(
        conf.spool_dir, _wake_spoolers, failed_dir=conf.failed_dir, max_body=MAX_BODY_SIZE
    )
    beat = _make_beat(waker)
    if beat is None:
        return
    ledger = beat.ledger
    starting = _Throttled("beat could not read the ledger")
    beating = _Throttled("could not write the heartbeat")
    started = False
    next_start = next_heartbeat = next_prune = 0.0
    while True:
        now = time.time()
        if not started and now >= next_start:
            # Without the database the beat waits; the waker goes on waking the spooler.
            try:
                beat.start()
            except Exception as exc:
                starting.failed(exc, now)
                _reset_db_connections()
                next_start = now + 1.0
            else:
                started = True
                starting.succeeded()
                logger.info(
                    "spoolcron mule started pid=%d spool_dir=%s", os.getpid(), conf.spool_dir
                )
        beat_delay = beat.tick() if started else max(0.0, next_start - now)
        if beat_delay > 0:
            _reset_db_connections()
        delay = min(beat_delay, waker.step())
        now = time.time()
        if now >= next_heartbeat:
            next_heartbeat = now + 1.0
            try:
                heartbeat.write(
                    conf.spool_dir,
                    spooler_pids=_spooler_pids(),
                    frequency=int(_text(frequency)) if frequency else None,
                )
            except OSError as exc:
                beating.failed(exc, now)
            else:
                beating.succeeded()
        if started and now >= next_prune:
            next_prune = now + 3600.0
            try:
                ledger.prune(keep=conf.history_retention)
            except Exception:
                logger.exception("could not prune the run history")
        time.sleep(delay)


uwsgi.spooler = spooler
