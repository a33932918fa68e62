"""Where Django finds spoolcron's models; they live in spoolcron.storage.models."""

from .storage.models import (
    FailedJob,
    FireClaim,
    JobResult,
    PendingJob,
    PeriodicEntry,
    Run,
    WaitingJob,
)

__all__ = [
    "FailedJob",
    "FireClaim",
    "JobResult",
    "PendingJob",
    "PeriodicEntry",
    "Run",
    "WaitingJob",
]
