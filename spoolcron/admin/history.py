"""The run history in the admin: read-only, filtered by entry, outcome and date.

Rows are written by the spooler as jobs run and pruned by ``HISTORY_DAYS``; nobody edits
them, so the admin has no add, change or delete for them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import dateformat, timezone
from django.utils.html import format_html

from ..storage.models import Run

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = admin.ModelAdmin

__all__ = ["EntryFilter", "ReadOnlyAdmin", "RunAdmin", "seconds", "to_the_second"]

ONE_OFF = "(one-off)"
"""The entry filter's value for runs of one-off jobs (their entry is blank)."""


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def to_the_second(value: datetime | None) -> str:
    """A time in the project's zone to the second (the admin's default stops at the minute,
    where 5-second runs look identical): ``2026-11-23 12:00:07 CET``."""
    if value is None:
        return "-"
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return dateformat.format(local, "Y-m-d H:i:s T")


class ReadOnlyAdmin(_ModelAdmin):
    """Rows written by spoolcron alone: shown, never added, changed or deleted by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class EntryFilter(admin.SimpleListFilter):
    """Runs of one entry, or of one-off jobs; the choices are the entries that have runs."""

    title = "entry"
    parameter_name = "entry"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = (
            Run.objects.exclude(entry="")
            .order_by("entry")
            .values_list("entry", flat=True)
            .distinct()
        )
        return [(ONE_OFF, "one-off jobs")] + [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == ONE_OFF:
            return queryset.filter(entry="")
        if value:
            return queryset.filter(entry=value)
        return queryset


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "entry_or_one_off",
        "task",
        "job_id",
        "attempt",
        "outcome",
        "late",
        "took",
        "host",
    )
    list_filter = ("outcome", EntryFilter, ("started", admin.DateFieldListFilter))
    date_hierarchy = "started"
    search_fields = ("job_id", "task", "entry")
    search_help_text = "Search by job id, task or entry."
    fields = (
        "job_id",
        "entry",
        "task",
        "attempt",
        "outcome",
        "due",
        "started",
        "finished",
        "late",
        "took",
        "host",
        "pid",
        "error_text",
    )
    readonly_fields = ("late", "took", "error_text")

    @admin.display(description="started", ordering="started")
    def started_at(self, run: Run) -> str:
        return to_the_second(run.started)

    @admin.display(description="entry", ordering="entry")
    def entry_or_one_off(self, run: Run) -> str:
        return run.entry or "-"

    @admin.display(description="late by")
    def late(self, run: Run) -> str:
        return seconds(run.lateness)

    @admin.display(description="duration")
    def took(self, run: Run) -> str:
        return seconds(run.duration)

    @admin.display(description="error")
    def error_text(self, run: Run) -> str:
        if not run.error:
            return "-"
        return format_html("<pre>{}</pre>", run.error)
