"""The Celery peer's application, for ``celery -A benchmarks.peers.celery_app worker|beat``.

Configured from the environment the benchmark sets: ``BENCH_CELERY_BROKER`` (the private
Redis), ``BENCH_CELERY_RESULTS`` (where ``stamp`` appends its start times) and
``BENCH_CELERY_BEAT`` (declares the ``every second`` beat entry: ``schedule: 1.0``, Celery's
way to say it). Beat notes when it publishes each message (``sent.jsonl``), because Celery's
own idea of when an interval entry is due is "the last send + 1 s".
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from celery import Celery, Task
from celery.signals import before_task_publish

__all__ = ["TASK", "app", "make_app"]

RESULTS = os.environ.get("BENCH_CELERY_RESULTS", "")
TASK = "bench.stamp"


def make_app(broker: str, *, beat: bool = False) -> Celery:
    """The application on *broker*: the ``stamp`` task, and with *beat* the every-second entry."""
    app = Celery("spoolcron_bench", broker=broker, set_as_current=False)
    app.conf.update(
        task_ignore_result=True,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        timezone="UTC",
        beat_schedule=(
            {"every-second": {"task": TASK, "schedule": 1.0, "args": ("beat",)}} if beat else {}
        ),
    )
    app.task(bind=True, name=TASK)(_stamp)
    return app


def _append(name: str, record: dict[str, object]) -> None:
    if RESULTS:
        with open(os.path.join(RESULTS, name), "a") as out:
            out.write(json.dumps(record) + "\n")


def _stamp(self: Task, label: str) -> None:  # type: ignore[type-arg]
    """Note the start time, the task id and the ETA Celery was given."""
    started = time.time()  # first thing: the start the lateness is measured at
    eta = self.request.eta
    _append(
        "stamps.jsonl",
        {
            "label": label,
            "time": started,
            "id": self.request.id,
            "eta": str(eta) if eta else None,
            "pid": os.getpid(),
        },
    )


@before_task_publish.connect
def _note_send(sender: str | None = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
    if os.environ.get("BENCH_CELERY_ROLE") == "beat" and headers:
        _append("sent.jsonl", {"time": time.time(), "id": headers.get("id")})


# What ``celery -A benchmarks.peers.celery_app`` runs.
app = make_app(
    os.environ.get("BENCH_CELERY_BROKER", "memory://"),
    beat=bool(os.environ.get("BENCH_CELERY_BEAT")),
)
