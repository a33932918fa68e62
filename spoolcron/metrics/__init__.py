"""Prometheus metrics: job events counted as they happen, the backlog computed at scrape time.

Needs the ``metrics`` extra (``pip install "spoolcron[metrics]"``, i.e. ``prometheus-client``)
and ``SPOOLCRON["METRICS"] = True``: the app config then calls :func:`connect`, which connects
receivers to spoolcron's job signals (``core/signals.py``, sent by dispatch in the process that
runs the job: uWSGI's spooler, ``spoolcron worker``, ``run-due``). ``spoolcron.metrics.urls``
(or :func:`metrics_view`) serves them all in Prometheus' text format.

uWSGI runs jobs in the spooler, fires in the mule and serves the scrape in a worker: three
processes. prometheus-client's multiprocess mode adds them up: set ``PROMETHEUS_MULTIPROC_DIR``
in the environment of every uWSGI process (``env = PROMETHEUS_MULTIPROC_DIR=...`` in the ini,
read by prometheus-client when it is imported) and empty that directory when uWSGI starts.

What is a state (pending jobs, the oldest overdue, each entry's last success) is not pushed:
:class:`StateCollector` computes it when scraped, from ``spoolcron.health()`` and the run
history, so every process agrees and a restart loses nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from django.dispatch import Signal

try:
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client.core import GaugeMetricFamily, Metric
    from prometheus_client.multiprocess import MultiProcessCollector
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - the extra is installed in the test venvs
    raise ImportError(
        "spoolcron.metrics needs prometheus-client: pip install 'spoolcron[metrics]'."
    ) from exc

from django.db.models.signals import post_save
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ..core import signals
from ..core.payload import Payload
from ..core.registry import Task
from ..core.times import from_db_datetime
from ..operations.health import health
from ..operations.stored import all_entries

__all__ = [
    "CONTENT_TYPE",
    "MULTIPROC_ENV",
    "StateCollector",
    "connect",
    "disconnect",
    "events",
    "exposition",
    "metrics_view",
    "registry",
]

logger = logging.getLogger("spoolcron.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

events = CollectorRegistry(auto_describe=True)
"""The counters and histograms of this process (in multiprocess mode, the scrape reads every
process's from ``PROMETHEUS_MULTIPROC_DIR`` instead)."""

# entry: the periodic entry the job belongs to ("" for a one-off job); task: its name.
JOB = ("entry", "task")

jobs_started = Counter(
    "spoolcron_jobs_started", "Jobs started (every attempt).", JOB, registry=events
)
job_outcomes = Counter(
    "spoolcron_job_outcomes",
    "Jobs ended, by outcome: succeeded, retrying (failed, a retry is due), failed (its last "
    "attempt), expired (dropped before it started), skipped (overlap: its previous run was "
    "still running).",
    (*JOB, "outcome"),
    registry=events,
)
job_retries = Counter(
    "spoolcron_job_retries", "Failed attempts followed by a retry.", JOB, registry=events
)
job_failures = Counter(
    "spoolcron_job_failures",
    "Jobs that failed their last attempt (moved to the failed directory).",
    JOB,
    registry=events,
)
skipped_overlap = Counter(
    "spoolcron_skipped_overlap",
    "Fires skipped because the entry's previous run was still running (overlap='skip').",
    ("entry",),
    registry=events,
)
job_lateness = Histogram(
    "spoolcron_job_lateness_seconds",
    "How late a job started after its due time.",
    JOB,
    buckets=LATENESS_BUCKETS,
    registry=events,
)
job_duration = Histogram(
    "spoolcron_job_duration_seconds",
    "How long a job's attempt ran (succeeded or failed).",
    JOB,
    buckets=DURATION_BUCKETS,
    registry=events,
)


# The beat's, counted in the process that runs it (the spoolcron mule, ``spoolcron worker``).
entry_fires = Counter(
    "spoolcron_entry_fires",
    "Fires enqueued (by the host whose claim won: once per fire across hosts).",
    ("entry",),
    registry=events,
)
fire_lateness = Histogram(
    "spoolcron_fire_lateness_seconds",
    "How late past its due time a fire was enqueued (0 when on time).",
    ("entry",),
    buckets=LATENESS_BUCKETS,
    registry=events,
)
misfires = Counter(
    "spoolcron_misfires",
    "Misfires noticed (fires missed while no beat ran), by the entry's misfire policy; every "
    "host that notices one counts it.",
    ("entry", "policy"),
    registry=events,
)
missed_fires = Counter(
    "spoolcron_missed_fires",
    "Missed fires by fate: enqueued (run late; one for a coalesced misfire) or dropped "
    "(coalesced into that one, or skipped).",
    ("entry", "policy", "fate"),
    registry=events,
)
fires_paused = Counter(
    "spoolcron_fires_paused",
    "Fires not enqueued because the entry is paused.",
    ("entry",),
    registry=events,
)
fire_failures = Counter(
    "spoolcron_fire_failures",
    "Fires whose enqueueing failed (database or disk); the beat tries again.",
    ("entry",),
    registry=events,
)

# fires_missed reports no count of the dropped fires beyond this many.
MAX_DROPPED_COUNTED = 10_000


def _labels(payload: Payload) -> tuple[str, str]:
    return payload.history_entry, payload.task


# When each attempt running in this process started (the failure signals carry no duration).
_started: dict[tuple[str, int], float] = {}
_started_lock = threading.Lock()


def _on_started(sender: Task[..., object], *, payload: Payload, **kwargs: Any) -> None:
    now = time.time()
    labels = _labels(payload)
    jobs_started.labels(*labels).inc()
    job_lateness.labels(*labels).observe(max(0.0, now - payload.run_after))
    with _started_lock:
        if len(_started) > 10_000:  # an attempt whose end was never signalled
            _started.clear()
        _started[(payload.job_id, payload.attempt)] = time.monotonic()


def _ran(payload: Payload) -> float | None:
    with _started_lock:
        started = _started.pop((payload.job_id, payload.attempt), None)
    return None if started is None else time.monotonic() - started


def _on_succeeded(
    sender: Task[..., object], *, payload: Payload, duration: float, **kwargs: Any
) -> None:
    _ran(payload)
    labels = _labels(payload)
    job_outcomes.labels(*labels, "succeeded").inc()
    job_duration.labels(*labels).observe(duration)


def _on_retrying(sender: Task[..., object], *, payload: Payload, **kwargs: Any) -> None:
    labels = _labels(payload)
    job_outcomes.labels(*labels, "retrying").inc()
    job_retries.labels(*labels).inc()
    duration = _ran(payload)
    if duration is not None:
        job_duration.labels(*labels).observe(duration)


def _on_failed(sender: Task[..., object], *, payload: Payload, **kwargs: Any) -> None:
    labels = _labels(payload)
    job_outcomes.labels(*labels, "failed").inc()
    job_failures.labels(*labels).inc()
    duration = _ran(payload)
    if duration is not None:
        job_duration.labels(*labels).observe(duration)


def _on_expired(sender: Task[..., object], *, payload: Payload, **kwargs: Any) -> None:
    job_outcomes.labels(*_labels(payload), "expired").inc()


# Dispatch sends no signal for an overlap skip: it records a skipped run (an expired job is
# recorded as skipped too, but its signal counts it). Its message is dispatch's.
_OVERLAP_SKIP = "skipped its fire: its previous run"


def _on_run_saved(sender: Any, *, instance: Any, created: bool, **kwargs: Any) -> None:
    if created and instance.outcome == "skipped" and _OVERLAP_SKIP in instance.error:
        skipped_overlap.labels(instance.entry).inc()
        job_outcomes.labels(instance.entry, instance.task, "skipped").inc()


def _on_fire_enqueued(sender: Any, *, entry: str, late: float = 0.0, **kwargs: Any) -> None:
    entry_fires.labels(entry).inc()
    fire_lateness.labels(entry).observe(max(0.0, late))


def _on_fires_missed(
    sender: Any, *, entry: str, policy: str, enqueued: int, dropped: int | None, **kwargs: Any
) -> None:
    misfires.labels(entry, policy).inc()
    if enqueued:
        missed_fires.labels(entry, policy, "enqueued").inc(enqueued)
    dropped = MAX_DROPPED_COUNTED if dropped is None else dropped
    if dropped:
        missed_fires.labels(entry, policy, "dropped").inc(dropped)


def _on_fire_paused(sender: Any, *, entry: str, **kwargs: Any) -> None:
    fires_paused.labels(entry).inc()


def _on_fire_failed(sender: Any, *, entry: str, **kwargs: Any) -> None:
    fire_failures.labels(entry).inc()


_RECEIVERS: list[tuple[Signal, Callable[..., None]]] = [
    (signals.job_started, _on_started),
    (signals.job_succeeded, _on_succeeded),
    (signals.job_retrying, _on_retrying),
    (signals.job_failed, _on_failed),
    (signals.job_expired, _on_expired),
]
# The beat's signals, where this spoolcron has them.
for _name, _receiver in (
    ("fire_enqueued", _on_fire_enqueued),
    ("fires_missed", _on_fires_missed),
    ("fire_paused", _on_fire_paused),
    ("fire_failed", _on_fire_failed),
):
    _signal = getattr(signals, _name, None)
    if isinstance(_signal, Signal):
        _RECEIVERS.append((_signal, _receiver))
_UID = "spoolcron.metrics"


def connect() -> None:
    """Count job events in this process from now on (the app config calls it when
    ``SPOOLCRON["METRICS"]`` is true); connecting twice counts once."""
    from ..storage.models import Run

    for signal, receiver in _RECEIVERS:
        signal.connect(receiver, dispatch_uid=_UID)
    post_save.connect(_on_run_saved, sender=Run, dispatch_uid=_UID)
    if "uwsgi" in sys.modules and not os.environ.get(MULTIPROC_ENV):
        logger.warning(
            "metrics counted per process env=%s is not set: a scrape sees only the counts of "
            "the worker that serves it, never the spooler's or the mule's (set it in the "
            "uWSGI ini, see the README's Metrics section)",
            MULTIPROC_ENV,
        )


def disconnect() -> None:
    """Stop counting job events in this process."""
    from ..storage.models import Run

    for signal, _ in _RECEIVERS:
        signal.disconnect(dispatch_uid=_UID)
    post_save.disconnect(sender=Run, dispatch_uid=_UID)


class StateCollector(Collector):
    """The gauges computed when scraped: the backlog (``spoolcron.health()``) and, per
    declared entry, its last success (the run history) and its period."""

    def __init__(self, *, overdue_after: float = 5.0) -> None:
        self.overdue_after = overdue_after

    def collect(self) -> Iterator[Metric]:
        try:
            metrics = [*self._backlog(), *self._entries()]
        except Exception:  # a database that is away: the events still get scraped
            logger.exception("metrics state not collected")
            metrics = []
        up = GaugeMetricFamily(
            "spoolcron_state_up", "1 if the state gauges below were computed for this scrape."
        )
        up.add_metric([], 1.0 if metrics else 0.0)
        yield up
        yield from metrics

    def _backlog(self) -> list[Metric]:
        numbers = health(overdue_after=self.overdue_after)
        pending = GaugeMetricFamily(
            "spoolcron_pending_jobs",
            "Jobs waiting to run: in the spool directory (due within the horizon) or in the "
            "pending store (due later).",
            labels=["place"],
        )
        pending.add_metric(["spool"], numbers["pending_spool"])
        pending.add_metric(["store"], numbers["pending_store"])
        overdue = GaugeMetricFamily(
            "spoolcron_overdue_jobs",
            f"Jobs still waiting more than {self.overdue_after:g} s after their due time.",
            labels=["place"],
        )
        overdue.add_metric(["spool"], numbers["overdue"])
        overdue.add_metric(["store"], numbers["overdue_in_store"])
        oldest = GaugeMetricFamily(
            "spoolcron_oldest_overdue_seconds",
            "How long past its due time the most overdue job in the spool directory waits "
            "(0 when none is overdue).",
        )
        oldest.add_metric([], numbers["oldest_overdue_seconds"] or 0.0)
        failed = GaugeMetricFamily(
            "spoolcron_failed_jobs", "Jobs in the failed directory (quarantined)."
        )
        failed.add_metric([], numbers["failed"])
        attached = GaugeMetricFamily(
            "spoolcron_spooler_attached",
            "1 if the spoolcron mule's heartbeat is fresh (a spooler is attached).",
        )
        attached.add_metric([], 1.0 if numbers["spooler_attached"] else 0.0)
        return [pending, overdue, oldest, failed, attached]

    def _entries(self) -> list[Metric]:
        from ..storage.models import Run

        entries, _ = all_entries()
        success = GaugeMetricFamily(
            "spoolcron_entry_last_success_timestamp_seconds",
            "When the entry's last successful run finished (Unix time; absent when the run "
            "history holds none).",
            labels=["entry"],
        )
        period = GaugeMetricFamily(
            "spoolcron_entry_period_seconds",
            "The time between the entry's next two fires.",
            labels=["entry"],
        )
        alert_after = GaugeMetricFamily(
            "spoolcron_entry_alert_after_seconds",
            "The entry's alert_after: how long without a success is alarming (absent when "
            "not set).",
            labels=["entry"],
        )
        now = datetime.now(UTC)
        for entry in entries:
            if entry.alert_after is not None:
                alert_after.add_metric([entry.name], entry.alert_after)
            # The index (entry, -started) finds the newest success without a scan.
            finished = (
                Run.objects.filter(entry=entry.name, outcome=Run.Outcome.SUCCEEDED)
                .order_by("-started")
                .values_list("finished", flat=True)
                .first()
            )
            if finished is not None:
                success.add_metric([entry.name], from_db_datetime(finished))
            first = entry.schedule.next_after(now)
            second = None if first is None else entry.schedule.next_after(first)
            if first is not None and second is not None:
                period.add_metric([entry.name], (second - first).total_seconds())
        return [success, period, alert_after]


def registry() -> CollectorRegistry:
    """What a scrape reads: every process's events in multiprocess mode (else this
    process's), and the state gauges."""
    scraped = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(scraped)  # type: ignore[no-untyped-call]
    else:
        scraped.register(events)
    scraped.register(StateCollector())
    return scraped


def exposition() -> bytes:
    """The metrics in Prometheus' text format (version 0.0.4)."""
    return generate_latest(registry())


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus endpoint: ``path("metrics/", spoolcron.metrics.metrics_view)``."""
    return HttpResponse(exposition(), content_type=CONTENT_TYPE)
