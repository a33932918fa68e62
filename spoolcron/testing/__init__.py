"""Testing helpers for projects using spoolcron: record, inspect and run jobs; run what is due.

``recording()`` (or the ``spoolcron_jobs`` fixture of the pytest plugin,
``spoolcron.testing.pytest_plugin``) makes enqueueing keep jobs in memory;
``enqueued_jobs()``, ``clear()`` and ``run_enqueued()`` act on them, and
``recording(immediate=True)`` runs each job as it is enqueued. ``run_due(now=...)`` runs the
periodic fires (through the beat and the ledger, policies included) and the jobs due by an
instant: the one freezegun or time-machine froze, or one passed explicitly. ``FrozenClock`` is
a small front for either library.

An adapter: it may import every layer, and nothing imports it.
"""

from __future__ import annotations

from .clock import FrozenClock
from .due import run_due
from .recording import (
    EnqueuedJob,
    RecordingPublisher,
    clear,
    enqueued_jobs,
    recording,
    run_enqueued,
)

__all__ = [
    "EnqueuedJob",
    "FrozenClock",
    "RecordingPublisher",
    "clear",
    "enqueued_jobs",
    "recording",
    "run_due",
    "run_enqueued",
]
