"""Where Django finds spoolcron's models; they live in spoolcron.storage.models."""

from .storage.models import (
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
    "EntryState",
    "FailedJob",
    "FireClaim",
    "JobResult",
    "PendingJob",
    "PeriodicEntry",
    "Run",
    "WaitingJob",
]
