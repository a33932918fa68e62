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
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

__all__ = ["job_expired", "job_failed", "job_retrying", "job_started", "job_succeeded", "send"]

logger = logging.getLogger("spoolcron.dispatch")

job_started = Signal()
job_succeeded = Signal()
job_retrying = Signal()
job_failed = Signal()
job_expired = Signal()


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
