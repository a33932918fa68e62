"""spoolcron in the stock Django admin: entries (declared and stored in the database), pending
and failed jobs, runs, job results.

Importing the package (Django's admin autodiscovery does) registers every page with
``django.contrib.admin.site``.
"""

from .history import RunAdmin
from .pages import FailedJobAdmin, PendingJobAdmin, PeriodicEntryAdmin
from .results import JobResultAdmin
from .stored import DatabaseEntryAdmin

__all__ = [
    "DatabaseEntryAdmin",
    "FailedJobAdmin",
    "JobResultAdmin",
    "PendingJobAdmin",
    "PeriodicEntryAdmin",
    "RunAdmin",
]
