"""spoolcron in the stock Django admin: entries, pending and failed jobs, runs, job results.

Importing the package (Django's admin autodiscovery does) registers every page with
``django.contrib.admin.site``.
"""

from .history import RunAdmin
from .pages import FailedJobAdmin, PendingJobAdmin, PeriodicEntryAdmin
from .results import JobResultAdmin

__all__ = ["FailedJobAdmin", "JobResultAdmin", "PendingJobAdmin", "PeriodicEntryAdmin", "RunAdmin"]
