"""Signals sent as a ``@spoolcron.task`` job runs: started, succeeded, retrying, failed, expired.

Django signals (``django.dispatch``; ``from spoolcron import job_failed``), sent by the
dispatcher (``runtime/dispatch.py``) in the process that runs the job (uWSGI's spooler,
``spoolcron worker``, ``run-due``), with ``sender`` the :class:`~spoolcron.Task` and these
keyword arguments:

============== ============================================================================
signal         keyword arguments (besides ``sender`` and ``signal``)
============== ============================================================================
job_started    ``job_id``, ``payload``, ``attempt`` -- the task is about to be called
job_succeeded  ``job_id``, ``payload``, ``attempt``, ``value`` (what the task returned),
               ``duration`` (seconds)
job_retrying   ``job_id``, ``payload``, ``attempt``, ``exception``, ``retry_at`` (Unix
               time the next attempt is due), ``delay`` (seconds until then)
job_failed     ``job_id``, ``payload``, ``attempt``, ``exception``, ``reason`` (what the
               failed directory's ``.reason.txt`` says)
job_expired    ``job_id``, ``payload``, ``attempt``, ``expires`` (Unix time), ``reason``
============== ============================================================================

Each is sent after the job's history and result are recorded, so a receiver that looks the
job up sees the new state. Receivers are called robustly: one that raises is logged on the
``spoolcron.dispatch`` logger (with its traceback) and changes nothing about the job.

Django's ``@task`` functions run on the ``SpoolerBackend`` send the Tasks framework's own
``task_started``/``task_finished`` instead.

The beat (``core/beat.py``) sends these in the process that runs it (the spoolcron mule,
``spoolcron worker``), with ``sender`` the :class:`~spoolcron.core.beat.Beat` class, ``entry``
the entry's name and times in Unix time:

============== ============================================================================
signal         keyword arguments (besides ``sender`` and ``signal``)
============== ============================================================================
fire_enqueued  ``entry``, ``fire_time`` (the schedule's instant, the ledger's key), ``due``
               (when it runs: ``fire_time`` plus the entry's jitter), ``job_id``, ``late``
               (seconds past ``due`` when it was written, 0.0 when on time) -- sent by the
               host whose claim won, once per fire across hosts
fires_missed   ``entry``, ``policy`` (``coalesce``, ``all``, ``skip``), ``first_missed``,
               ``enqueued`` (how many of the missed fires the policy runs), ``dropped``
               (how many it does not run; None when more than 10,000) -- a misfire, on every
               host that notices it
fire_paused    ``entry``, ``fire_time`` -- a fire not enqueued because the entry is paused
fire_failed    ``entry``, ``fire_time``, ``exception`` -- enqueueing failed (database or disk);
               the beat tries again
============== ============================================================================

A receiver that raises is logged on the ``spoolcron.beat`` logger and changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

__all__ = [
    "fire_enqueued",
    "fire_failed",
    "fire_paused",
    "fires_missed",
    "job_expired",
    "job_failed",
    "job_retrying",
    "job_started",
    "job_succeeded",
    "send",
    "send_beat",
]

logger = logging.getLogger("spoolcron.dispatch")

job_started = Signal()
job_succeeded = Signal()
job_retrying = Signal()
job_failed = Signal()
job_expired = Signal()

fire_enqueued = Signal()
fires_missed = Signal()
fire_paused = Signal()
fire_failed = Signal()

beat_logger = logging.getLogger("spoolcron.beat")


def send(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send ``signal``; a receiver that raises is logged, never propagated."""
    for receiver, outcome in signal.send_robust(sender=sender, **kwargs):
        if isinstance(outcome, Exception):
            logger.error(
                "signal receiver %r raised for job=%s",
                receiver,
                kwargs.get("job_id", ""),
                exc_info=(type(outcome), outcome, outcome.__traceback__),
            )


def send_beat(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send one of the beat's signals; a receiver that raises is logged, never propagated."""
    if not signal.has_listeners(sender):
        return
    for receiver, outcome in signal.send_robust(sender=sender, **kwargs):
        if isinstance(outcome, Exception):
            beat_logger.error(
                "signal receiver %r raised for entry=%s",
                receiver,
                kwargs.get("entry", ""),
                exc_info=(type(outcome), outcome, outcome.__traceback__),
            )
