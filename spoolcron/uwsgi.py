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
import functools
import gc
import logging
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import uwsgi

from .runtime.process import SpoolerProcess

# uwsgidecorators replaces uwsgi.spooler when imported: let it do so first, then chain to it.
with contextlib.suppress(ImportError):
    import uwsgidecorators  # noqa: F401

__all__ = ["mule", "spooler"]

logger = logging.getLogger("spoolcron.uwsgi")

_previous_spooler = getattr(uwsgi, "spooler", None)
_previous_post_fork = getattr(uwsgi, "post_fork_hook", None)


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
    from .conf import get_settings
    from .spool import files, locks

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
    with locks.hold(path, args, body):
        files.quarantine(path, get_settings().failed_dir, reason)
    logger.error("spool file quarantined path=%s reason=%s", path, reason)
    return int(uwsgi.SPOOL_RETRY)


_process = SpoolerProcess()


def spooler(env: Mapping[Any, Any]) -> int:
    """uWSGI's spooler callable: run spoolcron files, hand anything else to the previous one."""
    from .core.payload import MARKER
    from .core.remote import NGINX_TASK_ARG

    ours = MARKER in env or NGINX_TASK_ARG in env
    if not ours and _previous_spooler is not None and not _is_uwsgidecorators(_previous_spooler):
        return int(_previous_spooler(env))
    _setup_django()
    from .conf import get_settings
    from .core.payload import MAX_BODY_SIZE
    from .jobs import publisher
    from .runtime.dispatch import give_up, not_due_yet, run_spool_file
    from .spool import codec, files, locks, starts
    from .storage.recorder import DatabaseRecorder

    # A bare file name, relative to the spooler's working directory: its spool dir.
    path = Path(_text(env["spooler_task_name"])).absolute()
    args = {key: value for key, value in env.items() if isinstance(key, bytes)}
    body = env.get("body") or b""
    if not ours:
        return _foreign(path, env, args, body)
    if body and not_due_yet(args, time.time()):
        # Woken for another file: this one waits for its own wake, and costs nothing more.
        # (A body-less remote request is admitted or quarantined first, whenever it is due.)
        return int(uwsgi.SPOOL_RETRY)
    _process.prepare(get_settings().spooler_nice)
    # hold(): the spooler's POSIX lock on this file dies if this process opens and closes
    # the file again, so everything below reads it from what uWSGI passed in.
    with locks.hold(path, args, body) as file:
        too_large = codec.too_large(str(path), len(body), MAX_BODY_SIZE)
        if too_large is not None:
            files.quarantine(path, get_settings().failed_dir, too_large)
            logger.error("spool file quarantined path=%s reason=%s", path, too_large)
            return int(uwsgi.SPOOL_RETRY)
        try:
            started = starts.record_start(path)
            counted = True
        except OSError:
            # A full or read-only disk must not stop jobs: run it, uncounted.
            logger.exception("could not count the start of spool file path=%s", path)
            started, counted = 0, False
        recorder = DatabaseRecorder(restarted=started > 0 or not counted)
        if started >= MAX_STARTS:
            reason = (
                f"Spool file {str(path)!r} was started {started} times and the spooler died "
                "each time before its task returned (killed, a reload, or "
                "--spooler-harakiri); it is not run again."
            )
            give_up(file, reason, recorder, publisher=publisher())
            starts.clear_starts(path)
            return int(uwsgi.SPOOL_RETRY)
        if started:
            logger.warning(
                "spool file runs again after its spooler died path=%s starts=%d",
                path,
                started + 1,
            )
        try:
            result = run_spool_file(file, recorder, publisher=publisher())
        finally:
            starts.clear_starts(path)
    # A moved (quarantined) file must not be reported done: uWSGI would unlink the name,
    # fail, and kill the spooler. "Retry" finds the name gone on the next scan.
    if result.outcome.removes_file:
        return int(uwsgi.SPOOL_OK)
    return int(uwsgi.SPOOL_RETRY)


def server_options() -> Any:
    """uWSGI's options that spoolcron's system checks look at."""
    from .checks import ServerOptions

    return ServerOptions.from_options(uwsgi.opt)


def _spooler_pids() -> list[int]:
    return [int(pid) for pid in uwsgi.spooler_pids() if pid]


def _spooler_pids_of(spool_dir: Path) -> list[int]:
    """The pids of the spooler processes of ``spool_dir``; every spooler where that cannot be
    told (a woken spooler of another directory only scans it)."""
    from .spool.heartbeat import working_in

    pids = _spooler_pids()
    return working_in(pids, spool_dir) or pids


def _wake_spoolers_of(spool_dir: Path) -> None:
    for pid in _spooler_pids_of(spool_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)


def _check() -> list[str] | None:
    """Run every spoolcron check and log what it finds. A bad entry must not take the site
    down: the beat runs without it (returned, to be repeated in the log). Any other error is
    a broken setup: uWSGI stops, as manage.py would refuse to run (None)."""
    from django.core.checks import ERROR, run_checks

    from .checks import ENTRY_CHECKS

    messages = run_checks(tags=["spoolcron"])
    for message in messages:
        log = logger.critical if message.level >= ERROR else logger.warning
        log("%s (%s)", message.msg, message.id)
    errors = [m for m in messages if m.level >= ERROR]
    if any(m.id not in ENTRY_CHECKS for m in errors):
        logger.critical("spoolcron: system check errors, stopping uWSGI")
        os.kill(uwsgi.masterpid(), signal.SIGINT)
        return None
    if errors:
        logger.error(
            "spoolcron: the beat runs without the invalid entries and the web goes on serving; "
            "fix them and reload invalid=%d",
            len(errors),
        )
    return [f"{m.msg} ({m.id})" for m in errors]


def _reset_db_connections() -> None:
    from django.db import connections

    for connection in connections.all():
        connection.close_if_unusable_or_obsolete()


def _make_private(directory: Path) -> None:
    from .spool import files

    try:
        old = files.make_private(directory)
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
    """The spoolcron mule: wires the beat, the waker and the heartbeat into a MuleLoop."""
    _setup_django()
    from django.db import connections

    from .checks import ServerOptions
    from .conf import get_settings
    from .core.beat import Beat
    from .core.entries import collect
    from .core.payload import MAX_BODY_SIZE
    from .jobs import publisher
    from .operations.retention import prune
    from .queues import local_spool_dirs, queue_dirs
    from .runtime.mule import MuleLoop
    from .spool import files
    from .spool.payloads import SpoolFireWriter
    from .spool.waker import EVENT_DELAY, FIRE_LEAD, Waker
    from .spool.wakers import Wakers
    from .storage.entries import DatabaseEntrySource
    from .storage.ledger import DatabaseLedger

    # Inherited from the master across fork: never share them.
    for connection in connections.all():
        connection.close()
    conf = get_settings()
    spool_dirs = list(local_spool_dirs(conf).values())
    for spool_dir in spool_dirs:
        files.ensure_dir(spool_dir)
        # uWSGI creates its --spooler directory mode 0750: job arguments are nobody else's.
        _make_private(spool_dir)
    _make_private(conf.failed_dir)
    if conf.pending_store == "files":
        files.ensure_dir(conf.pending_dir)
        _make_private(conf.pending_dir)
    # Each queue's directory wakes its own spoolers (looked up on each wake: the master
    # respawns spoolers under new pids).
    waker = Wakers(
        [
            Waker(
                spool_dir,
                functools.partial(_wake_spoolers_of, spool_dir),
                failed_dir=conf.failed_dir,
                max_body=MAX_BODY_SIZE,
                event_delay=EVENT_DELAY,
            )
            for spool_dir in spool_dirs
        ]
    )
    problems = _check()
    if problems is None:
        return
    entries, invalid = collect()
    ledger = DatabaseLedger()
    beat = Beat(
        entries,
        ledger,
        SpoolFireWriter(conf.spool_dir, fsync=conf.fsync, dirs=queue_dirs(conf)),
        notify=functools.partial(waker.notify, lead=FIRE_LEAD),
        # The entries stored in the database, added and changed while uWSGI runs.
        source=DatabaseEntrySource(entries, [p.entry for p in invalid if p.entry]),
    )
    # Everything built so far lives as long as the mule: no collection should walk it in
    # the middle of a wake (see runtime/process.py).
    gc.freeze()
    MuleLoop(
        beat,
        waker,
        spool_dir=conf.spool_dir,
        spooler_pids=_spooler_pids,
        # Hourly: history past HISTORY_DAYS and failed files past FAILED_DAYS.
        prune=lambda: prune(ledger),
        store=publisher().store,
        refresh=_reset_db_connections,
        frequency=ServerOptions.from_options(uwsgi.opt).spooler_frequency,
        # Sleeps until the next step is due or a file appears in the spool directory.
        sleep=waker.wait,
        problems=problems,
    ).run()


def _post_fork() -> None:
    """uWSGI's hook in every process it forks (workers, mules, spoolers: after the fork,
    before the spooler's first scan): a spooler imports what its jobs need now, not in its
    first job (some 15 ms), and the hook chains to the one it replaced."""
    if _previous_post_fork is not None:
        _previous_post_fork()
    if not uwsgi.i_am_the_spooler():
        return
    try:
        _setup_django()
        from .jobs import publisher
        from .runtime import dispatch  # noqa: F401
        from .storage import recorder  # noqa: F401

        publisher()
        logger.info("spooler ready pid=%d", os.getpid())
    except Exception:
        # Bad settings, a broken app: the first job meets the same error, and reports it.
        logger.exception("spooler not prepared before its first job pid=%d", os.getpid())


uwsgi.spooler = spooler
uwsgi.post_fork_hook = _post_fork
