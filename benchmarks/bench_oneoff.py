"""Delayed one-off jobs: spoolcron vs Celery ``apply_async(countdown=)`` vs ``uwsgi.spool(at=)``.

``oneoff_enqueue``: jobs/s of one caller enqueueing a small job due in an hour, each system
in turn, round robin, median of the repeats: ``spoolcron.schedule()`` from this process into a
temp spool dir on the temp dir's filesystem (``FSYNC`` off, the default, and on) and on
tmpfs -- a job due in an hour waits in the files pending store beside the spool dir; one row
enqueues jobs due in 2 s instead, which go straight into the spool dir --; Celery's
``apply_async(countdown=3600)`` to the private Redis; ``uwsgi.spool(at=...)`` inside a uWSGI
worker (the benchmark asks the worker over HTTP to make N calls and reports the time the
calls took in the worker, so HTTP is not counted), on the same two filesystems.

A remote queue's row sends each job as a signed spool request (modifier1 17) over loopback
to another uWSGI instance, which writes it into its spool directory on disk and answers.

``oneoff_lateness``: the systems all run at once (spoolcron twice: a local job, and one sent
to a remote queue, another uWSGI instance on loopback). Every 0.5 s one step of a fixed plan (320
steps: about 100 due now; quick: 30): a job due in 1-5 s (random, fractional; 65 %) or due
now (35 %), enqueued into each system in
turn, 0.15 s apart, so their due times do not coincide; before it, each system runs a few
jobs due now that are not counted (``_warm``: a process's first jobs pay for imports and
connections, as in the periodic scenario's warm-up). Lateness = the job's first
``time.time()`` - its due time: spoolcron's ``run_after``; Celery's ETA (``countdown``
becomes ``eta`` = now + countdown in the caller; a job due now is sent without one and
measured from just before ``apply_async``); for the bare spooler, uWSGI's ``at`` is in
whole seconds, so the job is due at the whole second after the planned instant (``at``) and
measured against that; a bare job due now is measured from just before the HTTP call that
spools it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import spread
from benchmarks.peers import NotRun
from benchmarks.peers.celery_beat import celery_stack
from benchmarks.peers.raw_uwsgi import raw_uwsgi
from benchmarks.project.server import serve, setup_django
from tests.integration.harness import free_port

__all__ = ["DESCRIPTIONS", "run"]

ENQUEUE_BUDGET = 10_000  # jobs/s
LATENESS_BUDGET_MS = 5.0  # p99, issue 13
SPACING = 0.5  # seconds between two steps of the plan
STAGGER = 0.15  # seconds between two systems within a step
DUE_NOW_SHARE = 0.35
STEPS, QUICK_STEPS = 320, 30  # 102 of the 320 are due now
TAIL_WAIT = 35.0  # past uWSGI's default 30 s scan
WARM_RUNS = 3  # jobs due now each system runs before the plan, not counted
WARM_DEADLINE = 60.0

DESCRIPTIONS = {
    "oneoff_enqueue": (
        "One caller enqueueing a small job due in an hour, jobs/s (median, min, max of the "
        "repeats; the systems take turns, round robin, so a drifting disk speed hits all "
        "alike). spoolcron and the bare spooler write to the temp dir's filesystem (see the "
        "machine table) or tmpfs (/dev/shm); spoolcron's job due in an hour waits in the files "
        "pending store beside the spool dir, its job due in 2 s is a spool file at once; the "
        "remote row sends each job as a signed spool request over loopback to another uWSGI "
        "instance (its spool dir on disk), which answers once it wrote it; Celery sends to a "
        "local redis-server without persistence. The bare spooler's rate is timed inside the "
        "uWSGI worker around the `uwsgi.spool()` calls. `vs_spoolcron_default`: this rate / "
        "spoolcron's default (disk, FSYNC off); above 1, faster than spoolcron. Budget "
        "(spoolcron's): >= 10,000 jobs/s."
    ),
    "oneoff_lateness": (
        "All systems at once, the same plan: every 0.5 s a job due in 1-5 s (fractional) or due "
        "now, enqueued into each system 0.15 s apart (spoolcron's remote queue: sent over the "
        "uwsgi protocol to another uWSGI instance on loopback). Lateness = the job's first "
        "`time.time()` - its due time (spoolcron: `run_after`; Celery: the ETA, or for a job "
        "due now the moment before `apply_async`; bare uWSGI: `at`, a whole second, or for a "
        "job due now the moment before the HTTP call that spooled it). About a third of the "
        "jobs are due now. The enqueuing process is the benchmark's, not a uWSGI worker. "
        f"Before the plan each system runs {WARM_RUNS} jobs due now, not counted (a process's "
        "first jobs pay for imports and connections). "
        "`missing`: never ran within 35 s of the last due time. Budget (spoolcron's, issue 13): "
        "p99 <= 5 ms, due now and due in 1-5 s."
    ),
}


def _plan(count: int) -> list[tuple[str, float]]:
    rng = random.Random(2026)
    return [
        (f"job-{i}", 0.0 if rng.random() < DUE_NOW_SHARE else rng.uniform(1.0, 5.0))
        for i in range(count)
    ]


# --- the systems, as enqueuers ------------------------------------------------------------


@dataclass
class Target:
    """One system: enqueue(label, delay) -> due time; starts() -> label -> [start times]."""

    name: str
    enqueue: Callable[[str, float], float]
    starts: Callable[[], dict[str, list[float]]]
    due: dict[str, float] = field(default_factory=dict)


def _by_label(stamps: list[dict[str, object]]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for s in stamps:
        found.setdefault(str(s["label"]), []).append(float(s["time"]))  # type: ignore[arg-type]
    return found


def _spoolcron_target(workdir: Path, stack: contextlib.ExitStack) -> Target:
    from django.test import override_settings

    import spoolcron
    from benchmarks.project.tasks import stamp

    server = stack.enter_context(serve(workdir, start_timeout=90))
    stack.enter_context(override_settings(SPOOLCRON={"SPOOL_DIR": str(server.spool_dir)}))

    def enqueue(label: str, delay: float) -> float:
        return spoolcron.schedule(stamp, [label], run_after=delay).run_after.timestamp()

    return Target("spoolcron schedule(run_after=)", enqueue, lambda: _by_label(server.stamps()))


def _remote_target(workdir: Path, stack: contextlib.ExitStack) -> Target:
    """spoolcron's remote queue: this process sends each job over the uwsgi protocol to
    another uWSGI instance's spooler (loopback), which runs it."""
    from django.conf import settings
    from django.test import override_settings

    import spoolcron
    from benchmarks.project.settings import REMOTE_KEY
    from benchmarks.project.tasks import stamp_remote

    address = f"127.0.0.1:{free_port()}"
    server = stack.enter_context(serve(workdir, start_timeout=90, socket=address))
    conf = {
        **settings.SPOOLCRON,
        "QUEUES": {"remote": {"address": address}},
        "REMOTE_KEYS": [REMOTE_KEY],
    }
    stack.enter_context(override_settings(SPOOLCRON=conf))

    def enqueue(label: str, delay: float) -> float:
        job = spoolcron.schedule(stamp_remote, [label], run_after=delay, queue="remote")
        return job.run_after.timestamp()

    return Target(REMOTE_NAME, enqueue, lambda: _by_label(server.stamps()))


REMOTE_NAME = "spoolcron schedule(queue=remote), uwsgi protocol"


def _celery_target(workdir: Path, stack: contextlib.ExitStack) -> Target:
    celery = stack.enter_context(celery_stack(workdir))
    task = celery.task

    def enqueue(label: str, delay: float) -> float:
        if delay <= 0:  # countdown=0 sets no ETA: measured from just before the call
            sent = time.time()
            task.apply_async((label,))
            return sent
        task.apply_async((label,), countdown=delay)
        return math.nan  # the ETA Celery computed is read back from the task's stamp

    target = Target("Celery apply_async(countdown=)", enqueue, lambda: {})

    def starts() -> dict[str, list[float]]:
        stamps = celery.stamps()
        for s in stamps:
            if s.get("eta"):
                target.due[str(s["label"])] = datetime.fromisoformat(str(s["eta"])).timestamp()
        return _by_label(stamps)

    target.starts = starts
    return target


def _raw_target(frequency: int | None) -> Callable[[Path, contextlib.ExitStack], Target]:
    def start(workdir: Path, stack: contextlib.ExitStack) -> Target:
        server = stack.enter_context(raw_uwsgi(workdir, frequency=frequency))

        def enqueue(label: str, delay: float) -> float:
            if delay <= 0:
                sent = time.time()
                server.spool(label)
                return sent
            at = math.ceil(time.time() + delay)
            server.spool(label, at)
            return float(at)

        label = "default (30 s)" if frequency is None else f"{frequency} s"
        return Target(
            f"bare uwsgi.spool(at=), --spooler-frequency {label}",
            enqueue,
            lambda: _by_label(server.stamps()),
        )

    return start


TARGETS: list[tuple[str, Callable[[Path, contextlib.ExitStack], Target]]] = [
    ("spoolcron schedule(run_after=)", _spoolcron_target),
    (REMOTE_NAME, _remote_target),
    ("Celery apply_async(countdown=)", _celery_target),
    ("bare uwsgi.spool(at=), --spooler-frequency default (30 s)", _raw_target(None)),
    ("bare uwsgi.spool(at=), --spooler-frequency 1 s", _raw_target(1)),
]


@contextlib.contextmanager
def _started(root: Path) -> Iterator[tuple[list[Target], dict[str, str]]]:
    targets: list[Target] = []
    skipped: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        for i, (name, start) in enumerate(TARGETS):
            workdir = root / f"system-{i}"
            workdir.mkdir()
            try:
                targets.append(start(workdir, stack))
            except NotRun as reason:
                skipped[name] = str(reason)
        yield targets, skipped


# --- oneoff_lateness ----------------------------------------------------------------------


def _warm(targets: list[Target], deadline: float) -> None:
    """Each system runs a few jobs due now before the plan starts, as the periodic scenario
    lets each run a few fires: a process's first jobs pay for connections, imports and caches
    (spoolcron's spooler also for its priority, see SPOOLER_NICE), once per process, and
    this scenario measures the jobs after those."""
    for i in range(WARM_RUNS):
        for target in targets:
            target.enqueue(f"warm-up-{i}", 0.0)
        time.sleep(STAGGER)  # pacing, as the plan does
    labels = {f"warm-up-{i}" for i in range(WARM_RUNS)}
    while time.time() < deadline:
        if all(labels <= set(t.starts()) for t in targets):
            return
        time.sleep(0.2)
    cold = [t.name for t in targets if not labels <= set(t.starts())]
    raise AssertionError(f"No warm-up runs within {WARM_DEADLINE:g} s from: {', '.join(cold)}.")


def _lateness(quick: bool) -> list[dict[str, object]]:
    plan = _plan(QUICK_STEPS if quick else STEPS)
    rows: list[dict[str, object]] = []
    with (
        tempfile.TemporaryDirectory(prefix="spoolcron-bench-oneoff-") as tmp,
        _started(Path(tmp)) as (targets, skipped),
    ):
        _warm(targets, time.time() + WARM_DEADLINE)
        began = time.monotonic() + 1
        for i, (label, delay) in enumerate(plan):
            for k, target in enumerate(targets):
                pause = began + i * SPACING + k * STAGGER - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # pacing the plan, not waiting for a result
                target.due[label] = target.enqueue(label, delay)
        labels = {label for label, _ in plan}
        deadline = time.time() + 5 + TAIL_WAIT
        while time.time() < deadline and not all(labels <= set(t.starts()) for t in targets):
            time.sleep(0.5)
        results = [(t, t.starts()) for t in targets]

    groups = {
        "due in 1-5 s": [label for label, delay in plan if delay > 0],
        "due now": [label for label, delay in plan if delay == 0],
        "all": [label for label, _ in plan],
    }
    for target, starts in results:
        for kind, group in groups.items():
            ran = [label for label in group if label in starts]
            late = [
                (min(starts[label]) - target.due[label]) * 1000
                for label in ran
                if not math.isnan(target.due.get(label, math.nan))
            ]
            stats = spread(late)
            row: dict[str, object] = {
                "scenario": "oneoff_lateness",
                "system": target.name,
                "jobs": kind,
                "count": len(group),
                "p50_ms": stats["p50"],
                "p99_ms": stats["p99"],
                "max_ms": stats["max"],
                "min_ms": min(late) if late else math.nan,
                "missing": len(group) - len(ran),
                "doubled": sum(1 for label in ran if len(starts[label]) > 1),
            }
            if kind == "all":
                row["_lateness_ms"] = late
            if target is results[0][0] and target.name.startswith("spoolcron"):
                row["budget"] = f"p99 <= {LATENESS_BUDGET_MS:g} ms"
                row["meets_budget"] = stats["p99"] <= LATENESS_BUDGET_MS and len(ran) == len(group)
            rows.append(row)
    for name, reason in skipped.items():
        rows.append({"scenario": "oneoff_lateness", "system": name, "jobs": reason})
    return rows


# --- oneoff_enqueue -----------------------------------------------------------------------


def _spoolcron_batch(root: Path, fsync: bool, delay: float = 3600.0) -> Callable[[int], float]:
    """Seconds one ``schedule()`` loop of n jobs due in ``delay`` s takes, each loop in a
    fresh spool dir and pending dir."""
    from django.test import override_settings

    import spoolcron
    from benchmarks.project.tasks import stamp
    from spoolcron.spool import files

    loops = itertools.count()

    def batch(n: int) -> float:
        directory = files.ensure_dir(root / f"spoolcron-{fsync}-{delay:g}-{next(loops)}")
        conf = {
            "SPOOL_DIR": str(directory / "spool"),
            "PENDING_DIR": str(directory / "pending"),
            "FSYNC": fsync,
        }
        with override_settings(SPOOLCRON=conf):
            began = time.perf_counter()
            for _ in range(n):
                spoolcron.schedule(stamp, ["bench"], run_after=delay)
            return time.perf_counter() - began

    return batch


def _remote_batch(root: Path, stack: contextlib.ExitStack) -> Callable[[int], float]:
    """Seconds one ``schedule(queue="remote")`` loop of n jobs due in an hour takes: each a
    signed request over loopback to another uWSGI instance, which writes it and answers."""
    from django.test import override_settings

    import spoolcron
    from benchmarks.project.settings import REMOTE_KEY
    from benchmarks.project.tasks import stamp_remote

    address = f"127.0.0.1:{free_port()}"
    stack.enter_context(serve(files_dir(root / "remote"), start_timeout=90, socket=address))
    conf = {
        "SPOOL_DIR": str(root / "remote-sender" / "spool"),
        "QUEUES": {"remote": {"address": address}},
        "REMOTE_KEYS": [REMOTE_KEY],
    }

    def batch(n: int) -> float:
        with override_settings(SPOOLCRON=conf):
            began = time.perf_counter()
            for _ in range(n):
                spoolcron.schedule(stamp_remote, ["bench"], run_after=3600, queue="remote")
            return time.perf_counter() - began

    return batch


def files_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _celery_batch(task: Any) -> Callable[[int], float]:
    def batch(n: int) -> float:
        began = time.perf_counter()
        for _ in range(n):
            task.apply_async(("bench",), countdown=3600)
        return time.perf_counter() - began

    return batch


@contextlib.contextmanager
def _enqueuers(root: Path) -> Iterator[list[tuple[str, Callable[[int], float] | str]]]:
    """Every enqueuer, started: (name, batch(n) -> seconds), or (name, why it cannot run)."""
    tmpfs = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with contextlib.ExitStack() as stack:
        found: list[tuple[str, Callable[[int], float] | str]] = [
            ("spoolcron schedule(), disk, FSYNC off (default)", _spoolcron_batch(root, False)),
            (
                "spoolcron schedule(), due in 2 s (spool dir), disk",
                _spoolcron_batch(root, False, delay=2.0),
            ),
            ("spoolcron schedule(), disk, FSYNC on", _spoolcron_batch(root, True)),
        ]
        if tmpfs:
            shm = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=tmpfs)))
            found.append(("spoolcron schedule(), tmpfs", _spoolcron_batch(shm, False)))
        found.append(
            (
                "spoolcron schedule(queue=remote), uwsgi protocol, loopback, disk",
                _remote_batch(root, stack),
            )
        )
        try:
            celery = stack.enter_context(celery_stack(root / "celery"))
            found.append(("Celery apply_async(countdown=), Redis", _celery_batch(celery.task)))
        except NotRun as reason:
            found.append(("Celery apply_async(countdown=), Redis", str(reason)))
        raw = stack.enter_context(raw_uwsgi(root / "raw"))
        found.append(("bare uwsgi.spool(at=) in a worker, disk", lambda n: raw.burst(n)[0]))
        if tmpfs:
            shm_raw = stack.enter_context(raw_uwsgi(shm / "raw"))
            found.append(
                ("bare uwsgi.spool(at=) in a worker, tmpfs", lambda n: shm_raw.burst(n)[0])
            )
        yield found


def _enqueue(quick: bool) -> list[dict[str, object]]:
    count, repeats = (500, 3) if quick else (2000, 7)
    rates: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="spoolcron-bench-oneoff-enqueue-") as tmp,
        _enqueuers(Path(tmp)) as enqueuers,
    ):
        runnable = [(name, batch) for name, batch in enqueuers if not isinstance(batch, str)]
        for _, batch in runnable:
            batch(200)  # warm-up: connections, imports, caches
        # Round robin: this disk's speed drifts by several times within minutes, so every
        # system gets a turn in each stretch of it.
        for _ in range(repeats):
            for name, batch in runnable:
                rates.setdefault(name, []).append(count / batch(count))

    reference = statistics.median(rates[runnable[0][0]])
    rows: list[dict[str, object]] = []
    for name, batch in enqueuers:
        if isinstance(batch, str):
            rows.append({"scenario": "oneoff_enqueue", "system": name, "jobs_per_s_median": batch})
            continue
        values = rates[name]
        median = statistics.median(values)
        first = not rows
        rows.append(
            {
                "scenario": "oneoff_enqueue",
                "system": name,
                "jobs_per_s_median": round(median),
                "jobs_per_s_min": round(min(values)),
                "jobs_per_s_max": round(max(values)),
                "us_per_job": 1e6 / median,
                "vs_spoolcron_default": median / reference,
                "budget": f">= {ENQUEUE_BUDGET:,} jobs/s" if first else "",
                "meets_budget": median >= ENQUEUE_BUDGET if first else None,
                "jobs": count,
                "repeats": repeats,
            }
        )
    return rows


def run(quick: bool = False) -> list[dict[str, object]]:
    """Enqueue rates one system at a time, then lateness of all systems at once."""
    setup_django()
    return _enqueue(quick) + _lateness(quick)
