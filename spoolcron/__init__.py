"""Periodic and delayed jobs for Django on the uWSGI spooler."""

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
    "InvalidArguments",
    "Job",
    "JobRunning",
    "SpoolcronError",
    "SpoolcronImproperlyConfigured",
    "Task",
    "UnknownTask",
    "health",
    "schedule",
    "task",
]
