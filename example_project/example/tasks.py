"""The demo's tasks. Each logs one line when it runs; the dispatcher's ``job started`` line
just before it shows how late the run started (``late_ms``, fire time to start)."""

import logging
import time
from datetime import datetime, timedelta

from django.utils import timezone

import spoolcron
from spoolcron.models import Run

logger = logging.getLogger("example.tasks")


def _clock() -> str:
    return datetime.fromtimestamp(time.time(), timezone.get_current_timezone()).strftime(
        "%H:%M:%S.%f"
    )[:-3]


@spoolcron.task
def tick() -> None:
    """Runs every 5 seconds (example/schedules.py)."""
    logger.info("tick: ran at %s", _clock())


@spoolcron.task
def say(text: str) -> None:
    """Says what it was given: the weekday stand-up entry and the home page's form."""
    logger.info("say: %r (ran at %s)", text, _clock())


@spoolcron.task
def report() -> None:
    """Runs on a cron line, every 2 minutes: counts the runs the history recorded."""
    since = timezone.now() - timedelta(minutes=2)
    runs = Run.objects.filter(started__gte=since)
    logger.info(
        "report: %d runs in the last 2 minutes, %d failed (ran at %s)",
        runs.count(),
        runs.filter(outcome=Run.Outcome.FAILED).count(),
        _clock(),
    )
