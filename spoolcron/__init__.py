"""Periodic and delayed jobs for Django on the uWSGI spooler."""

from .core.entries import Entry, periodic
from .core.registry import Task, task
from .core.signals import job_expired, job_failed, job_retrying, job_started, job_succeeded
from .exceptions import (
    BadWhen,
    InvalidArguments,
    JobNotFound,
    JobNotSucceeded,
    JobRunning,
    JobTimeout,
    PayloadError,
    RemoteSpoolError,
    SpoolcronError,
    SpoolcronImproperlyConfigured,
    SpoolFileError,
    SpoolWriteError,
    UnknownEntry,
    UnknownTask,
)
from .jobs import Job, get_job, schedule, schedule_many
from .operations.health import health

__all__ = [
    "BadWhen",
    "Entry",
    "InvalidArguments",
    "Job",
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
    "Task",
    "UnknownEntry",
    "UnknownTask",
    "get_job",
    "health",
    "job_expired",
    "job_failed",
    "job_retrying",
    "job_started",
    "job_succeeded",
    "periodic",
    "schedule",
    "schedule_many",
    "task",
]
