"""Where Django finds spoolcron's models; they live in spoolcron.storage.models."""

from .storage.models import (
    DatabaseEntry,
    EntryState,
    FailedJob,
    FireClaim,
    JobResult,
    PendingJob,
    PeriodicEntry,
    Run,
    WaitingJob,
)

__all__ = [
    "DatabaseEntry",
    "EntryState",
    "FailedJob",
    "FireClaim",
    "JobResult",
    "PendingJob",
    "PeriodicEntry",
    "Run",
    "WaitingJob",
]
