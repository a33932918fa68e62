"""Periodic and delayed jobs for Django on the uWSGI spooler."""

from .entries import Entry, periodic
from .exceptions import (
    BadWhen,
    InvalidArguments,
    JobNotFound,
    JobRunning,
    SpoolcronError,
    SpoolcronImproperlyConfigured,
    SpoolWriteError,
    UnknownEntry,
    UnknownTask,
)
from .jobs import Job, health, schedule
from .registry import Task, task

__all__ = [
    "BadWhen",
    "Entry",
    "InvalidArguments",
    "Job",
    "JobNotFound",
    "JobRunning",
    "SpoolWriteError",
    "SpoolcronError",
    "SpoolcronImproperlyConfigured",
    "Task",
    "UnknownEntry",
    "UnknownTask",
    "health",
    "periodic",
    "schedule",
    "task",
]
