"""What operators do, as functions: ``manage.py spoolcron`` and the admin format them.

Entries with their last fire, next fires and last outcome (``entries``); pending jobs and
cancelling them (``jobs``); failed jobs, retrying, deleting or purging them (``failed``);
what runs next
(``upcoming``); pausing, resuming and backfilling entries
(``control``); entries stored in the database, added, edited and deleted (``stored``); a
health verdict for monitoring probes (``health``); the hourly prune of old
history and failed files (``retention``); the uWSGI options the project needs (``config``);
reading a ``WHEN`` (``when``).

An adapter layer: may import everything below it (core, spool, storage, runtime).
"""

from .config import uwsgi_config
from .control import BackfillReport, backfill, pause_entry, resume_entry
from .entries import EntriesReport, EntryInfo, list_entries, paused_entries, run_entry
from .failed import (
    FailedJob,
    delete_failed,
    delete_job,
    failed_jobs,
    failed_reason,
    purge_failed,
    reason_line,
    retry_failed,
    retry_job,
)
from .health import HealthReport, health, health_report
from .jobs import PendingJob, PendingList, cancel_job, pending
from .retention import prune
from .stored import (
    add_entry,
    all_entries,
    delete_entry,
    edit_entry,
    next_fires,
    save_stored,
    validate_entry,
)
from .upcoming import upcoming
from .when import parse_age, parse_duration, parse_when, relative

__all__ = [
    "BackfillReport",
    "EntriesReport",
    "EntryInfo",
    "FailedJob",
    "HealthReport",
    "PendingJob",
    "PendingList",
    "add_entry",
    "all_entries",
    "backfill",
    "cancel_job",
    "delete_entry",
    "delete_failed",
    "delete_job",
    "edit_entry",
    "failed_jobs",
    "failed_reason",
    "health",
    "health_report",
    "list_entries",
    "next_fires",
    "parse_age",
    "parse_duration",
    "parse_when",
    "pause_entry",
    "paused_entries",
    "pending",
    "prune",
    "purge_failed",
    "reason_line",
    "relative",
    "resume_entry",
    "retry_failed",
    "retry_job",
    "run_entry",
    "save_stored",
    "upcoming",
    "uwsgi_config",
    "validate_entry",
]
