"""Periodic and delayed jobs for Django on the uWSGI spooler."""

from .entries import Entry, periodic
from .exceptions import (
    InvalidArguments,
    JobRunning,
    SpoolcronError,
    SpoolcronImproperlyConfigured,
    UnknownTask,
)
from .jobs import Job, health, schedule
from .registry import Task, task

__all__ = [
    "Entry",
    "InvalidArguments",
    "Job",
    "JobRunning",
    "SpoolcronError",
    "SpoolcronImproperlyConfigured",
    "Task",
    "UnknownTask",
    "health",
    "periodic",
    "schedule",
    "task",
]
