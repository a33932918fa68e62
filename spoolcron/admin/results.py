"""Job results in the admin: read-only, one row per job, filtered by status and task.

The detail page shows what the list cannot: the arguments, the return value and every failed
attempt's traceback, plus a link to the job's attempts in the run history.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.serializers.json import DjangoJSONEncoder
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..storage.models import JobResult
from .history import ReadOnlyAdmin, to_the_second

__all__ = ["JobResultAdmin"]


def _json(value: Any) -> SafeString:
    text = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
    return format_html("<pre>{}</pre>", text)


@admin.register(JobResult)
class JobResultAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "task",
        "entry",
        "status",
        "attempts",
        "enqueued",
        "started",
        "finished",
    )
    list_filter = ("status", "task", ("finished_at", admin.DateFieldListFilter))
    search_fields = ("id", "task", "entry")
    search_help_text = "Search by job id, task or entry."
    fields = (
        "id",
        "task",
        "entry",
        "status",
        "attempts",
        "enqueued_at",
        "run_after",
        "started_at",
        "last_attempted_at",
        "finished_at",
        "backend",
        "queue_name",
        "worker_ids",
        "arguments",
        "returned",
        "tracebacks",
        "runs",
    )
    readonly_fields = ("arguments", "returned", "tracebacks", "runs")

    @admin.display(description="enqueued at", ordering="enqueued_at")
    def enqueued(self, result: JobResult) -> str:
        return to_the_second(result.enqueued_at)

    @admin.display(description="started at", ordering="started_at")
    def started(self, result: JobResult) -> str:
        return to_the_second(result.started_at)

    @admin.display(description="finished at", ordering="finished_at")
    def finished(self, result: JobResult) -> str:
        return to_the_second(result.finished_at)

    @admin.display(description="arguments")
    def arguments(self, result: JobResult) -> SafeString:
        return _json({"args": result.args, "kwargs": result.kwargs})

    @admin.display(description="return value")
    def returned(self, result: JobResult) -> SafeString | str:
        if result.status != JobResult.Status.SUCCESSFUL:
            return "-"
        return _json(result.return_value)

    @admin.display(description="errors")
    def tracebacks(self, result: JobResult) -> SafeString | str:
        errors = [e for e in result.errors if isinstance(e, dict)]
        if not errors:
            return "-"
        return format_html_join(
            "",
            "<p><strong>{}</strong></p><pre>{}</pre>",
            ((e.get("exception_class_path", "?"), e.get("traceback", "").rstrip()) for e in errors),
        )

    @admin.display(description="attempts in the run history")
    def runs(self, result: JobResult) -> SafeString | str:
        try:
            url = reverse("admin:spoolcron_run_changelist")
        except NoReverseMatch:  # the project's admin site left the run history out
            return "-"
        return format_html(
            '<a href="{}?{}">the runs of this job</a>', url, urlencode({"q": result.id})
        )
