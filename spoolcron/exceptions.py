"""The exceptions spoolcron raises: one small hierarchy, ValueError/LookupError where apt."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "InvalidArguments",
    "JobRunning",
    "SpoolcronError",
    "SpoolcronImproperlyConfigured",
    "UnknownTask",
]


class SpoolcronError(Exception):
    """Base class of every spoolcron error."""


class UnknownTask(SpoolcronError, LookupError):
    """A task name that no ``@spoolcron.task`` registered."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"Unknown task {name!r}: no function is registered under that name with "
            "@spoolcron.task (is its module imported, e.g. from an app's tasks.py?)."
        )

    def __str__(self) -> str:
        # LookupError's str() would add quotes around the message.
        return str(self.args[0])


class InvalidArguments(SpoolcronError, ValueError):
    """Arguments or options a job cannot be enqueued with."""


class JobRunning(SpoolcronError):
    """The job is being run by a spooler right now, so it cannot be cancelled."""


class SpoolcronImproperlyConfigured(SpoolcronError, ImproperlyConfigured):
    """A ``SPOOLCRON`` setting is missing or has a bad value."""
