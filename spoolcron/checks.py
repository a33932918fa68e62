"""Django system checks, gathered in one place, with stable ids (listed in README.rst).

Entries (``collect()``):

=================  ===========================================================
spoolcron.E001     two entries share a name
spoolcron.E002     an entry's expression (or zone) is invalid
spoolcron.E003     an entry names a task that is not registered
spoolcron.E004     an entry has a bad option (misfire, overlap, grace, args…)
spoolcron.E005     a schedules module raises when imported
spoolcron.W006     an enabled entry never fires again (a one-shot in the past)
spoolcron.W007     an entry stored in the database cannot run (``check --database``)
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
spoolcron.E016     jobs wait in the pending store the PENDING_STORE setting does not use
=================  ===========================================================

The Tasks framework backend (run by ``SpoolerBackend.check()``, so also without spoolcron in
``INSTALLED_APPS``):

=================  ===========================================================
spoolcron.E020     a SpoolerBackend is configured but spoolcron is not installed
spoolcron.E021     the backend cannot enqueue: bad settings or spool directory
spoolcron.E022     the backend writes where no uWSGI spooler looks
=================  ===========================================================

The server checks look at uWSGI's options only inside a uWSGI process; ``manage.py check``
elsewhere runs the others. E016 reads the database's table of waiting jobs only inside uWSGI
or when asked to look at databases (``manage.py check --database default``, ``migrate``).
The entries stored in the database are checked (W007, naming the entry's problem and its
E00x id) only when asked to look at databases: the beat reports them itself while it runs.
The spoolcron mule runs all of them when it starts: it runs the beat without invalid entries
and stops uWSGI on any other error.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, router, transaction

from .conf import get_settings
from .core.entries import collect
from .core.times import now
from .spool.pending import FilePendingStore

__all__ = [
    "ENTRY_CHECKS",
    "ServerOptions",
    "check_backend",
    "check_entries",
    "check_never_firing",
    "check_pending_store",
    "check_server",
    "check_settings",
    "running_spooler_dirs",
    "server_options",
    "unwritable",
]


ENTRY_CHECKS = frozenset(f"spoolcron.E00{n}" for n in range(1, 6))
"""The ids of problems with periodic entries: under uWSGI the beat runs without those entries
(the web keeps serving); every other error stops uWSGI at start."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class ServerOptions:
    """What the checks need to know of the running uWSGI."""

    spooler_dirs: tuple[Path, ...]
    """One per --spooler option: a directory given N times has N spooler processes."""
    spooler_frequency: int
    has_spoolcron_mule: bool
    spooler_processes: int = 1
    """--spooler-processes: each --spooler option after it starts that many."""

    @classmethod
    def from_options(cls, opt: Mapping[Any, Any]) -> ServerOptions:
        """From ``uwsgi.opt`` (keys and values str or bytes, repeated options as lists)."""

        def values(name: str) -> list[str]:
            value = opt.get(name, opt.get(name.encode()))
            if value is None:
                return []
            listed = value if isinstance(value, list) else [value]
            return [_text(v) for v in listed if v is not True]

        frequency = values("spooler-frequency")
        processes = values("spooler-processes")
        return cls(
            spooler_dirs=tuple(Path(d) for d in values("spooler")),
            spooler_frequency=int(frequency[-1]) if frequency else 30,
            has_spoolcron_mule=any("spoolcron" in m and "mule" in m for m in values("mule")),
            spooler_processes=max(1, int(processes[-1])) if processes else 1,
        )

    def processes_of(self, spool_dir: Path) -> int:
        """How many spooler processes uWSGI runs for ``spool_dir``."""
        wanted = os.path.realpath(spool_dir)
        listed = sum(1 for d in self.spooler_dirs if os.path.realpath(d) == wanted)
        return listed * self.spooler_processes


def server_options() -> ServerOptions | None:
    """uWSGI's options when running inside uWSGI, else None.

    uWSGI puts its ``uwsgi`` module in every process it runs Python in; looking it up (not
    importing it, nor spoolcron.uwsgi with its spooler callable) is how to tell.
    """
    server = sys.modules.get("uwsgi")
    opt = getattr(server, "opt", None)
    if opt is None:
        return None
    options = ServerOptions.from_options(opt)
    # uwsgi.opt keeps only the last of repeated --spooler options; each spooler process
    # works in its own directory, which the kernel tells.
    running = running_spooler_dirs(server)
    if running:
        options = replace(options, spooler_dirs=tuple(running.values()), spooler_processes=1)
    return options


def running_spooler_dirs(server: Any, *, wait: float = 2.0) -> dict[int, Path]:
    """Each spooler process's directory, by pid, from ``/proc/<pid>/cwd`` (a spooler changes
    into its directory as it starts: waited for up to ``wait`` seconds); {} where the kernel
    does not tell (not Linux, no spooler pids)."""
    pids = [int(pid) for pid in getattr(server, "spooler_pids", list)() if pid]
    deadline = time.monotonic() + wait
    own = os.getcwd()
    while True:
        found: dict[int, Path] = {}
        for pid in pids:
            try:
                found[pid] = Path(os.readlink(f"/proc/{pid}/cwd"))
            except OSError:
                return {}
        if all(str(d) != own for d in found.values()) or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def unwritable(spool: Path) -> bool:
    """An existing spool path that is not a directory this process can write to."""
    return spool.exists() and (not spool.is_dir() or not os.access(spool, os.W_OK | os.X_OK))


def _unspooled(spool: Path, server: ServerOptions) -> bool:
    """Whether no spooler of this uWSGI looks at ``spool``."""
    return spool.resolve() not in [d.resolve() for d in server.spooler_dirs]


def _dirs(server: ServerOptions) -> str:
    return ", ".join(repr(str(d.resolve())) for d in server.spooler_dirs) or "none"


@register("spoolcron")
def check_entries(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    _, problems = collect()
    return [Error(str(problem), id=problem.id) for problem in problems]


@register("spoolcron", Tags.database)
def check_stored_entries(
    app_configs: Sequence[AppConfig] | None = None,
    *,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """The problems of the entries stored in the database, with ``check --database`` only (the
    mule's run leaves them to the beat: they change while uWSGI runs, a reload would not)."""
    from .storage.entries import database_entries
    from .storage.models import DatabaseEntry  # models: only once apps are ready

    alias = router.db_for_read(DatabaseEntry)
    # Django 6.1 passes every database to a run by tag, the mule's too: skipped there.
    if databases is None or alias not in databases or server_options() is not None:
        return []
    declared, declared_problems = collect()
    taken = [problem.entry for problem in declared_problems if problem.entry]
    try:
        with transaction.atomic(using=alias):
            _, problems = database_entries(declared, taken, using=alias)
    except DatabaseError:
        return []  # no table yet (before migrate) or no database: nothing stored
    # A warning: a deploy that removed a stored entry's task must still migrate.
    return [
        Warning(
            f"{problem} ({problem.id}): the beat runs without it.",
            hint="Fix it in the admin or with `manage.py spoolcron entry-edit`, or delete it.",
            id="spoolcron.W007",
        )
        for problem in problems
    ]


@register("spoolcron")
def check_never_firing(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W006: an enabled entry with no fire time after now, such as ``once at`` a past date,
    is valid but never fires. A warning: a one-shot that has fired must not stop a deploy."""
    entries, _ = collect()
    current = now()
    return [
        Warning(
            f"entry {entry.name!r} in {entry.module}: its schedule "
            f"{entry.schedule.describe()!r} has no fire time after now (a one-shot in the "
            "past), so it never fires; give it a future date or remove the entry.",
            id="spoolcron.W006",
        )
        for entry in entries
        if entry.enabled and entry.schedule.next_after(current) is None
    ]


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
    elif unwritable(spool):
        messages.append(
            Error(
                f"The spool directory {str(spool)!r} is not a directory this process can write to.",
                hint="Fix SPOOLCRON['SPOOL_DIR'] or the directory's owner and mode.",
                id="spoolcron.E011",
            )
        )
    return messages


# Tagged "database": a plain `manage.py check` (and Django 6.1's default run over every
# database) leaves it out; the mule's run of the spoolcron checks and `check --database` run it.
@register("spoolcron", Tags.database)
def check_pending_store(
    app_configs: Sequence[AppConfig] | None = None,
    *,
    databases: Sequence[str] | None = None,
    server: ServerOptions | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """E016: jobs left in the store that PENDING_STORE no longer names would never run."""
    try:
        conf = get_settings()
    except ImproperlyConfigured:
        return []  # reported as E010
    if conf.pending_store == "database":
        try:
            count = FilePendingStore(conf.pending_dir, conf.spool_dir).count()
        except OSError:
            return []
        place = f"the files store's directory {str(conf.pending_dir)!r}"
        other = "files"
    else:
        from .storage.models import WaitingJob  # models: only once apps are ready

        alias = router.db_for_read(WaitingJob)
        inside_uwsgi = (server or server_options()) is not None
        if not inside_uwsgi and (databases is None or alias not in databases):
            return []  # a plain `manage.py check` touches no database
        try:
            with transaction.atomic(using=alias):
                count = WaitingJob.objects.using(alias).count()
        except DatabaseError:
            return []  # no table yet (before migrate) or no database: nothing waits there
        place = f"the database table {WaitingJob._meta.db_table!r}"
        other = "database"
    if not count:
        return []
    return [
        Error(
            f"SPOOLCRON['PENDING_STORE'] is {conf.pending_store!r} but {count} job(s) still "
            f"wait in {place}, where no mule publishes them; set it back to {other!r} until "
            "they have run.",
            id="spoolcron.E016",
        )
    ]


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
    if _unspooled(spool, server):
        messages.append(
            Error(
                f"SPOOLCRON['SPOOL_DIR'] is {str(spool)!r} but uWSGI's spooler uses "
                f"{_dirs(server)}: jobs would be written where no spooler looks.",
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


def check_backend(alias: str, *, server: ServerOptions | None = None) -> list[CheckMessage]:
    """The checks of the Tasks backend ``alias`` (a SpoolerBackend): E020-E022."""
    if not apps.is_installed("spoolcron"):
        return [
            Error(
                f"Task backend {alias!r} is a SpoolerBackend but 'spoolcron' is not "
                "in INSTALLED_APPS, where its results table lives.",
                id="spoolcron.E020",
            )
        ]
    try:
        spool = get_settings().spool_dir
    except ImproperlyConfigured as exc:
        return [Error(f"Task backend {alias!r} cannot enqueue: {exc}", id="spoolcron.E021")]
    if unwritable(spool):
        return [
            Error(
                f"Task backend {alias!r} cannot enqueue: the spool directory {str(spool)!r} "
                "is not a directory this process can write to.",
                id="spoolcron.E021",
            )
        ]
    server = server or server_options()
    if server is None:
        return []  # not under uWSGI: `manage.py spoolcron health` tells whether one runs
    if _unspooled(spool, server):
        return [
            Error(
                f"Task backend {alias!r} writes its jobs to {str(spool)!r} but this uWSGI runs "
                f"no spooler there (spoolers: {_dirs(server)}): its tasks would never run.",
                id="spoolcron.E022",
            )
        ]
    return []
