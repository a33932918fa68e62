"""The admin's database entries: periodic entries an operator adds, edits and deletes.

A stock ModelAdmin on ``DatabaseEntry`` whose form validates with ``operations.validate_entry``
(the system checks' messages, on the field at fault), offers the registered tasks as a choice
(never an import path), refuses a name a schedules module declares, and shows the entry in
plain English with its next five fires, after each save and on the change page. Saving and
deleting go through ``spoolcron.operations`` (ledger baseline, pause state), so running beats
pick the change up within a few seconds.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone

from .. import operations
from ..core.entries import DATABASE, ResolvedEntry, resolve_entry
from ..core.registry import task_names
from ..core.times import utc
from ..exceptions import InvalidEntry, SpoolcronError
from ..operations.stored import ENTRY_FIELDS
from ..storage.entries import entry_of
from ..storage.models import DatabaseEntry

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[DatabaseEntry]
    _ModelForm = ModelForm[DatabaseEntry]
else:
    _ModelAdmin = admin.ModelAdmin
    _ModelForm = ModelForm

__all__ = ["DatabaseEntryAdmin", "DatabaseEntryForm"]

logger = logging.getLogger("spoolcron.admin")

NEXT_FIRES = 5


def _task_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in task_names()]


class DatabaseEntryForm(_ModelForm):
    """The values of an entry, checked as ``manage.py check`` checks declared ones."""

    task = forms.ChoiceField(
        choices=_task_choices, help_text="a registered task (@spoolcron.task or a Django @task)"
    )

    class Meta:
        model = DatabaseEntry
        fields = list(ENTRY_FIELDS)

    resolved: ResolvedEntry | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # An empty JSON field reads None: no arguments.
        if cleaned.get("args") is None:
            cleaned["args"] = []
        if cleaned.get("kwargs") is None:
            cleaned["kwargs"] = {}
        if self.errors:
            return cleaned  # each field's own error first (a bad choice, bad JSON, ...)
        try:
            self.resolved = operations.validate_entry({k: cleaned.get(k) for k in ENTRY_FIELDS})
        except InvalidEntry as exc:
            self.add_error(exc.field if exc.field in self.fields else None, str(exc))
        return cleaned


def _resolved(obj: DatabaseEntry | None) -> ResolvedEntry | None:
    """The row resolved for display: no name clash check, which would collect the declared
    entries once per row of the list."""
    if obj is None or not obj.name or not obj.task:
        return None
    resolved = resolve_entry(DATABASE, entry_of(obj))
    return resolved if isinstance(resolved, ResolvedEntry) else None


def _local(moment: Any) -> str:
    return str(timezone.localtime(moment).strftime("%a %Y-%m-%d %H:%M:%S %Z"))


@admin.register(DatabaseEntry)
class DatabaseEntryAdmin(_ModelAdmin):
    form = DatabaseEntryForm
    list_display = ("name", "task", "schedule", "zone", "enabled", "in_english", "next_fire")
    list_filter = ("enabled",)
    search_fields = ("name", "task", "schedule")
    readonly_fields = ("in_english", "next_fires", "changed")
    fieldsets = (
        (None, {"fields": ("name", "task", "schedule", "zone", "in_english", "next_fires")}),
        ("Arguments", {"fields": ("args", "kwargs")}),
        (
            "Policies",
            {
                "fields": (
                    "enabled",
                    "misfire",
                    "misfire_limit",
                    "grace",
                    "overlap",
                    "jitter",
                    "alert_after",
                    "pause_after_failures",
                    "changed",
                )
            },
        ),
    )

    @admin.display(description="in English")
    def in_english(self, obj: DatabaseEntry) -> str:
        entry = _resolved(obj)
        return "-" if entry is None else entry.schedule.describe()

    @admin.display(description="next fire")
    def next_fire(self, obj: DatabaseEntry) -> str:
        entry = _resolved(obj)
        fires = operations.next_fires(entry, 1) if entry is not None and entry.enabled else []
        return _local(fires[0]) if fires else "-"

    @admin.display(description=f"next {NEXT_FIRES} fires")
    def next_fires(self, obj: DatabaseEntry) -> str:
        entry = _resolved(obj)
        if entry is None:
            return "- (shown once saved)"
        if not entry.enabled:
            return "- (disabled)"
        return ", ".join(_local(f) for f in operations.next_fires(entry, NEXT_FIRES)) or "-"

    @admin.display(description="last changed")
    def changed(self, obj: DatabaseEntry) -> str:
        if not obj.pk:
            return "-"
        return f"{_local(utc(obj.changed_at))} by {obj.changed_by or '-'}"

    def save_model(self, request: HttpRequest, obj: DatabaseEntry, form: Any, change: bool) -> None:
        entry = operations.save_stored(obj, by=f"{request.user.get_username()} (admin)")
        fires = operations.next_fires(entry, NEXT_FIRES) if entry.enabled else []
        when = "; next fires: " + ", ".join(_local(f) for f in fires) if fires else ""
        if entry.enabled and not fires:
            when = "; it has no fire time after now (a one-shot in the past): it never fires"
        state = "" if entry.enabled else " (disabled: it does not fire)"
        self.message_user(
            request,
            f"Entry {entry.name!r} runs {entry.task.name} {entry.schedule.describe()}{state}"
            f"{when}. Running beats pick it up within a few seconds.",
            messages.SUCCESS,
        )

    def delete_model(self, request: HttpRequest, obj: DatabaseEntry) -> None:
        self._delete(request, obj.name)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[DatabaseEntry]) -> None:
        for name in queryset.values_list("name", flat=True):
            self._delete(request, name)

    def _delete(self, request: HttpRequest, name: str) -> None:
        try:
            operations.delete_entry(name, by=f"{request.user.get_username()} (admin)")
        except SpoolcronError as exc:
            self.message_user(request, str(exc), messages.ERROR)
