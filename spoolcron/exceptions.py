"""The exceptions spoolcron raises: one root, ``SpoolcronError``; each is also the builtin
(``ValueError``, ``LookupError``, ``OSError``, ``ImproperlyConfigured``) that says what it is.

A base module: every layer may import it, it imports nothing of spoolcron."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "BadWhen",
    "InvalidArguments",
    "InvalidEntry",
    "JobNotFound",
    "JobNotSucceeded",
    "JobRunning",
    "JobTimeout",
    "PayloadError",
    "RemoteSpoolError",
    "SpoolFileError",
    "SpoolWriteError",
    "SpoolcronError",
    "SpoolcronImproperlyConfigured",
    "UnknownEntry",
    "UnknownTask",
]


class SpoolcronError(Exception):
    """Base class of every spoolcron error."""


class _NotFound(SpoolcronError, LookupError):
    def __str__(self) -> str:
        # KeyError-style quoting would wrap the sentence in quotes; show it as written.
        return str(self.args[0])


class UnknownTask(_NotFound):
    """A task name that no ``@spoolcron.task`` registered."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"Unknown task {name!r}: no function is registered under that name with "
            "@spoolcron.task (is its module imported, e.g. from an app's tasks.py?)."
        )


class UnknownEntry(_NotFound):
    """No usable periodic entry has that name."""


class JobNotFound(_NotFound):
    """No job with that id where the operation looked for it."""


class BadWhen(SpoolcronError, ValueError):
    """A ``WHEN`` that is neither an ISO date-time nor a relative phrase."""


class InvalidArguments(SpoolcronError, ValueError):
    """Arguments or options a job cannot be enqueued with."""


class InvalidEntry(InvalidArguments):
    """A database entry that cannot be saved: ``field`` names the value at fault (None: the
    entry as a whole), the message says why in one sentence."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class SpoolFileError(SpoolcronError, ValueError):
    """A spool file is corrupt or cannot be decoded."""


class PayloadError(SpoolcronError, ValueError):
    """A spool file marked as ours whose body is not a payload we can run."""


class JobNotSucceeded(SpoolcronError, ValueError):
    """``Job.return_value`` of a job that has not succeeded (yet): pending, running, failed or
    missing."""


class JobRunning(SpoolcronError):
    """The job is being run by a spooler right now, so it cannot be cancelled."""


class JobTimeout(SpoolcronError):
    """A task ran past its ``timeout``: raised inside it when the time limit passes.

    Not a ``TimeoutError``: libraries that catch ``OSError`` around their I/O (and turn a
    socket timeout into their own error) must not swallow or rename it.
    """

    def __init__(self, task: str, seconds: float) -> None:
        self.task = task
        self.seconds = seconds
        super().__init__(f"Task {task!r} timed out after {seconds:g} s.")

    def __reduce__(self) -> tuple[type[JobTimeout], tuple[str, float]]:
        return (type(self), (self.task, self.seconds))


class SpoolcronImproperlyConfigured(SpoolcronError, ImproperlyConfigured):
    """A ``SPOOLCRON`` setting is missing or has a bad value."""


class SpoolWriteError(SpoolcronError, OSError):
    """A spool file could not be written: the disk is full, read-only or not writable.

    An ``OSError`` too, with the ``errno`` of the failure, so ``except OSError`` still works;
    nothing half-written is left behind (see ``spoolfile.write``).
    """

    def __init__(self, message: str, errno_: int | None, path: str) -> None:
        super().__init__(errno_, message, path)
        self.message = message

    def __str__(self) -> str:
        return self.message


class RemoteSpoolError(SpoolcronError, ConnectionError):
    """A remote queue's uWSGI instance could not take a job: unreachable, too slow, or it
    refused it. The job was not enqueued; ``address`` names the instance."""

    def __init__(self, message: str, address: str) -> None:
        super().__init__(message)
        self.message = message
        self.address = address

    def __str__(self) -> str:
        return self.message
