"""Periodic entries: declared in ``schedules`` modules, collected and validated in one place.

An app's ``schedules.py`` (or a module named in ``SPOOLCRON["MODULES"]``) declares::

    from spoolcron import Entry

    ENTRIES = [
        Entry("cleanup", "myapp.tasks.cleanup", "every 5 minutes"),
        Entry("report", send_report, "Sunday 17:03", kwargs={"to": "ops"}, misfire="skip"),
    ]

and ``@spoolcron.periodic("every 5 seconds")`` on a function is sugar for a task plus an entry.
Declaring does nothing else: ``collect()`` imports the modules, resolves tasks and expressions
and reports every problem, which the system checks turn into errors with stable ids.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import ModuleType
from typing import Any, Literal, ParamSpec, TypeVar

from django.apps import apps
from django.conf import settings
from django.utils.module_loading import module_has_submodule

import schedules

from ..conf import get_settings
from ..exceptions import InvalidArguments, UnknownTask
from .payload import first_unencodable
from .registry import Task, resolve_task, task
from .routing import check_queue_name

__all__ = [
    "DATABASE",
    "MISFIRE_POLICIES",
    "OVERLAP_POLICIES",
    "Entry",
    "Problem",
    "ResolvedEntry",
    "collect",
    "jitter_offset",
    "periodic",
    "resolve_entries",
    "resolve_entry",
]

P = ParamSpec("P")
R = TypeVar("R")

MisfirePolicy = Literal["coalesce", "all", "skip"]
OverlapPolicy = Literal["skip", "allow"]
MISFIRE_POLICIES = ("coalesce", "all", "skip")
OVERLAP_POLICIES = ("skip", "allow")
DATABASE = "database"
"""The ``module`` of an entry stored in the database (the admin, ``spoolcron entry-add``)."""


@dataclass(frozen=True)
class Entry:
    """One periodic job as declared: nothing is resolved or checked until ``collect()``.

    ``misfire`` says what happens to fires missed while no beat ran (or the clock jumped):
    ``coalesce`` runs once now, ``all`` runs each missed fire (at most ``misfire_limit``, the
    latest ones), ``skip`` runs none. Missed fires older than ``grace`` seconds are dropped
    (None: no limit). ``overlap="skip"`` does not start a fire while the previous run of the
    entry is still running.

    ``jitter`` (seconds) delays each fire by a pseudo-random offset in [0, jitter) that is a
    function of the entry's name and the fire time, so every host computes the same instant
    (the ledger still claims the undelayed fire time). ``alert_after`` (seconds) makes
    ``health`` unhealthy when the entry's last success is older than that (None: never).
    ``pause_after_failures`` pauses the entry on every host after that many of its fires in a
    row failed for good (None: never); a success starts the count again.
    ``queue`` names the local queue its fires run in (default: its task's queue).
    """

    name: str
    task: Task[..., Any] | Callable[..., Any] | str
    schedule: str | schedules.Schedule
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    zone: str | None = None
    misfire: MisfirePolicy = "coalesce"
    misfire_limit: int = 10
    grace: float | None = None
    overlap: OverlapPolicy = "skip"
    enabled: bool = True
    jitter: float = 0.0
    alert_after: float | None = None
    pause_after_failures: int | None = None
    queue: str | None = None


def jitter_offset(name: str, fire_time: float, jitter: float) -> float:
    """The delay in [0, ``jitter``) of the entry ``name``'s fire at ``fire_time`` (Unix time):
    a hash of both, so every process computes the same one."""
    if jitter <= 0:
        return 0.0
    key = f"{name}\0{round(fire_time * 1000)}".encode()
    fraction = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2.0**64
    # Whole milliseconds keep the instant exact through JSON and the spool file.
    return min(math.floor(fraction * jitter * 1000) / 1000, math.nextafter(jitter, 0))


@dataclass(frozen=True)
class ResolvedEntry:
    """An entry whose task, schedule and options passed every check."""

    name: str
    task: Task[..., Any]
    schedule: schedules.Schedule
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    misfire: MisfirePolicy
    misfire_limit: int
    grace: float | None
    overlap: OverlapPolicy
    enabled: bool
    module: str
    jitter: float = 0.0
    alert_after: float | None = None
    pause_after_failures: int | None = None
    queue: str | None = None

    @property
    def from_database(self) -> bool:
        """Stored in the database (the admin, ``spoolcron entry-add``), not declared in code."""
        return self.module == DATABASE

    def due(self, fire_time: float) -> float:
        """When the fire at ``fire_time`` runs: the fire time delayed by the entry's jitter."""
        return fire_time + jitter_offset(self.name, fire_time, self.jitter)


@dataclass(frozen=True)
class Problem:
    """Why an entry (or a whole module) cannot be used; ``id`` is the system check id."""

    id: str
    module: str
    entry: str | None
    message: str

    def __str__(self) -> str:
        where = f"entry {self.entry!r} in {self.module}" if self.entry else f"module {self.module}"
        return f"{where}: {self.message}"


_periodic: list[tuple[str, Entry]] = []


def periodic(
    schedule: str | schedules.Schedule,
    *,
    name: str | None = None,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    zone: str | None = None,
    misfire: MisfirePolicy = "coalesce",
    misfire_limit: int = 10,
    grace: float | None = None,
    overlap: OverlapPolicy = "skip",
    enabled: bool = True,
    jitter: float = 0.0,
    alert_after: float | None = None,
    pause_after_failures: int | None = None,
    retries: int = 0,
    retry_backoff: float | None = None,
    retry_on: type[Exception] | tuple[type[Exception], ...] | None = None,
    retry_jitter: float = 0.0,
    timeout: float | timedelta | None = None,
    expires: float | timedelta | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Register the function as a task and declare an entry running it on ``schedule``.

    The entry is named after the task (its dotted name) unless ``name`` is given. The task
    options (``retries`` to ``expires``) are those of :func:`spoolcron.task`; on a function
    that is a task already they are ignored (the task has its own).
    """

    def register(func: Callable[P, R]) -> Task[P, R]:
        registered = (
            func
            if isinstance(func, Task)
            else task(
                retries=retries,
                retry_backoff=retry_backoff,
                retry_on=retry_on,
                retry_jitter=retry_jitter,
                timeout=timeout,
                expires=expires,
            )(func)
        )
        entry = Entry(
            name=name or registered.name,
            task=registered,
            schedule=schedule,
            args=args,
            kwargs=dict(kwargs or {}),
            zone=zone,
            misfire=misfire,
            misfire_limit=misfire_limit,
            grace=grace,
            overlap=overlap,
            enabled=enabled,
            jitter=jitter,
            alert_after=alert_after,
            pause_after_failures=pause_after_failures,
        )
        _periodic.append((registered.func.__module__, entry))
        return registered

    return register


def _module_names() -> list[str]:
    names = [
        f"{config.name}.schedules"
        for config in apps.get_app_configs()
        if module_has_submodule(config.module, "schedules")
    ]
    return names + [m for m in get_settings().modules if m not in names]


def _option_problem(entry: Entry) -> str | None:
    if entry.misfire not in MISFIRE_POLICIES:
        return f"misfire must be one of {', '.join(MISFIRE_POLICIES)}, not {entry.misfire!r}."
    if entry.overlap not in OVERLAP_POLICIES:
        return f"overlap must be one of {', '.join(OVERLAP_POLICIES)}, not {entry.overlap!r}."
    limit = entry.misfire_limit
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        return f"misfire_limit must be a whole number >= 1, not {limit!r}."
    grace = entry.grace
    if grace is not None and (
        isinstance(grace, bool)
        or not isinstance(grace, int | float)
        or not grace > 0
        or not math.isfinite(grace)
    ):
        return f"grace must be a number of seconds > 0 or None, not {grace!r}."
    jitter = entry.jitter
    if (
        isinstance(jitter, bool)
        or not isinstance(jitter, int | float)
        or not jitter >= 0
        or not math.isfinite(jitter)
    ):
        return f"jitter must be a number of seconds >= 0, not {jitter!r}."
    alert_after = entry.alert_after
    if alert_after is not None and (
        isinstance(alert_after, bool)
        or not isinstance(alert_after, int | float)
        or not alert_after > 0
        or not math.isfinite(alert_after)
    ):
        return f"alert_after must be a number of seconds > 0 or None, not {alert_after!r}."
    failures = entry.pause_after_failures
    if failures is not None and (
        isinstance(failures, bool) or not isinstance(failures, int) or failures < 1
    ):
        return f"pause_after_failures must be a whole number >= 1 or None, not {failures!r}."
    if not isinstance(entry.enabled, bool):
        return f"enabled must be True or False, not {entry.enabled!r}."
    try:
        check_queue_name("The entry", entry.queue)
    except InvalidArguments:
        return f"queue must be a queue name or None, not {entry.queue!r}."
    if isinstance(entry.args, str | bytes) or not isinstance(entry.args, Sequence):
        return f"args must be a list, not {entry.args!r}."
    if not isinstance(entry.kwargs, Mapping):
        return f"kwargs must be a dict, not {entry.kwargs!r}."
    place = first_unencodable(list(entry.args), dict(entry.kwargs))
    if place is not None:
        return f"{place} cannot be stored as JSON."
    return None


def resolve_entry(module: str, entry: Entry) -> ResolvedEntry | Problem:
    """The entry resolved (task, schedule, options checked), or its first problem: the one
    validation of entries, for schedules modules and database entries alike."""
    if not isinstance(entry, Entry):
        return Problem("spoolcron.E004", module, None, f"ENTRIES holds {entry!r}, not an Entry.")
    if not isinstance(entry.name, str) or not entry.name.strip():
        return Problem("spoolcron.E004", module, None, f"an entry has the bad name {entry.name!r}.")
    try:
        resolved_task = resolve_task(entry.task)
    except (UnknownTask, ValueError) as exc:
        return Problem("spoolcron.E003", module, entry.name, str(exc))
    zone = entry.zone or settings.TIME_ZONE or "UTC"
    try:
        if isinstance(entry.schedule, schedules.Schedule):
            schedule = entry.schedule
        else:
            schedule = schedules.parse(entry.schedule, tz=zone)
    except schedules.ScheduleError as exc:
        return Problem("spoolcron.E002", module, entry.name, str(exc))
    if not isinstance(schedule, schedules.Schedule):
        return Problem(
            "spoolcron.E002",
            module,
            entry.name,
            f"schedule must be an expression or a schedules.Schedule, not {entry.schedule!r}.",
        )
    problem = _option_problem(entry)
    if problem:
        return Problem("spoolcron.E004", module, entry.name, problem)
    return ResolvedEntry(
        name=entry.name,
        task=resolved_task,
        schedule=schedule,
        args=tuple(entry.args),
        kwargs=dict(entry.kwargs),
        misfire=entry.misfire,
        misfire_limit=entry.misfire_limit,
        grace=None if entry.grace is None else float(entry.grace),
        overlap=entry.overlap,
        enabled=entry.enabled,
        module=module,
        jitter=float(entry.jitter),
        alert_after=None if entry.alert_after is None else float(entry.alert_after),
        pause_after_failures=entry.pause_after_failures,
        queue=entry.queue or resolved_task.routing.queue,
    )


def import_modules() -> list[tuple[str, ModuleType | Problem]]:
    """Import every schedules module; one that raises becomes a Problem, not a crash."""
    imported: list[tuple[str, ModuleType | Problem]] = []
    for name in _module_names():
        try:
            imported.append((name, importlib.import_module(name)))
        except Exception:
            last = traceback.format_exc().strip().splitlines()[-1]
            imported.append(
                (name, Problem("spoolcron.E005", name, None, f"importing it failed: {last}"))
            )
    return imported


def collect() -> tuple[list[ResolvedEntry], list[Problem]]:
    """Import every schedules module and resolve its entries; report what is wrong with them."""
    declared: list[tuple[str, Entry]] = []
    problems: list[Problem] = []
    for name, module in import_modules():
        if isinstance(module, Problem):
            problems.append(module)
            continue
        listed = getattr(module, "ENTRIES", [])
        if not isinstance(listed, list | tuple):
            problems.append(
                Problem("spoolcron.E004", name, None, f"ENTRIES must be a list, not {listed!r}.")
            )
            continue
        declared += [(name, entry) for entry in listed]
    # A module that registered @periodic entries and was unloaded since no longer declares them.
    declared += [(module, entry) for module, entry in _periodic if module in sys.modules]
    resolved, more = resolve_entries(declared)
    return resolved, problems + more


def resolve_entries(
    declared: Sequence[tuple[str, Entry]], taken: Mapping[str, str] | None = None
) -> tuple[list[ResolvedEntry], list[Problem]]:
    """Resolve ``(module, entry)`` pairs in order; a name used before (or in ``taken``, name
    -> module, such as the declared entries when resolving database entries) is E001."""
    resolved: list[ResolvedEntry] = []
    problems: list[Problem] = []
    seen: dict[str, str] = dict(taken or {})
    for module_name, entry in declared:
        result = resolve_entry(module_name, entry)
        if isinstance(result, Problem):
            problems.append(result)
            continue
        if result.name in seen:
            problems.append(
                Problem(
                    "spoolcron.E001",
                    module_name,
                    result.name,
                    f"the name {result.name!r} is already used by an entry in {seen[result.name]}.",
                )
            )
            continue
        seen[result.name] = module_name
        resolved.append(result)
    return resolved, problems
