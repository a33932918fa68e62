"""The admin pages of things that are not rows: periodic entries, pending jobs, failed jobs.

Entries are declared in Python and jobs are files in the spool and failed directories, so
each page belongs to a placeholder model without a table (``spoolcron.models``): the admin
lists it, and its permissions say who sees the page and who may act on it. A page is the
model's changelist URL, rendered from ``spoolcron.operations``; its buttons post back to the
same URL (CSRF-protected by ``admin_view``), and every outcome, good or bad, is an admin
message carrying the operation's own sentence.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone

from .. import operations
from ..conf import get_settings
from ..core.payload import META_MANUAL_RUN, job_file_prefix
from ..core.times import now as current_time
from ..exceptions import SpoolcronError
from ..operations.when import relative
from ..storage.models import FailedJob, PendingJob, PeriodicEntry

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = admin.ModelAdmin

__all__ = ["FailedJobAdmin", "PendingJobAdmin", "PeriodicEntryAdmin", "preview"]

logger = logging.getLogger("spoolcron.admin")

PAGE_SIZE = 100
NEXT_FIRES = 3
PREVIEW_LENGTH = 80


def preview(args: Sequence[Any], kwargs: dict[str, Any], limit: int = PREVIEW_LENGTH) -> str:
    """A job's arguments as a call would read them, cut to ``limit`` characters."""

    def dump(value: Any) -> str:
        return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)

    text = ", ".join([dump(a) for a in args] + [f"{k}={dump(v)}" for k, v in kwargs.items()])
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class When:
    """A time and how far it is from now, as the pages show it."""

    at: datetime
    relative: str

    @classmethod
    def of(cls, at: datetime | None, now: datetime) -> When | None:
        if at is None:
            return None
        # In the project's time zone: templates convert aware times only with USE_TZ on.
        return cls(timezone.localtime(at), relative((at - now).total_seconds()))


def _matches(query: str, *fields: str | None) -> bool:
    return not query or any(query in (f or "").lower() for f in fields)


class _PageAdmin(_ModelAdmin):
    """One page at the model's changelist URL; POSTed ``action`` values need a permission."""

    change_list_template: ClassVar[str]
    actions_permissions: dict[str, str] = {}
    """Each ``action`` the page posts, and the codename of the permission it needs."""
    search_help = ""

    def get_urls(self) -> list[URLPattern]:
        # Only the page: the stock add/change/delete views would query a table that is not there.
        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.changelist_view), name=name)]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def may(self, request: HttpRequest, action: str) -> bool:
        codename = self.actions_permissions[action]
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            action = self.posted_action(request)
            if action not in self.actions_permissions:
                self.message_user(
                    request, f"Unknown action {action!r}: use the page's buttons.", messages.ERROR
                )
            elif not self.may(request, action):
                raise PermissionDenied
            else:
                answer = self.act(request, action)
                if answer is not None:
                    return answer
            # Back to the same page (query and page number kept), as a GET: reloading it
            # must not repeat the action.
            return HttpResponseRedirect(request.get_full_path())
        query = request.GET.get("q", "").strip()
        context = self.admin_context(
            request,
            query=query,
            search_help=self.search_help,
            may={action: self.may(request, action) for action in self.actions_permissions},
            **self.page_context(request, query.lower(), current_time()),
            **(extra_context or {}),
        )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.change_list_template, context)

    def posted_action(self, request: HttpRequest) -> str:
        return request.POST.get("action", "")

    def page_context(self, request: HttpRequest, query: str, now: datetime) -> dict[str, Any]:
        raise NotImplementedError

    def act(self, request: HttpRequest, action: str) -> HttpResponse | None:
        """Do ``action``; None redirects back to the page, a response is shown instead."""
        raise NotImplementedError

    def admin_context(self, request: HttpRequest, **values: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            # change_list.html's breadcrumbs and body class read cl.opts.
            "cl": SimpleNamespace(opts=self.opts),
            "title": str(self.opts.verbose_name_plural).capitalize(),
            **values,
        }

    def log_action(self, request: HttpRequest, action: str, items: Sequence[str]) -> None:
        user = request.user.get_username()
        logger.info("admin action=%s user=%s items=%s", action, user, ",".join(items))

    def paginate(self, request: HttpRequest, items: Sequence[Any]) -> dict[str, Any]:
        paginator = Paginator(items, PAGE_SIZE)
        page = paginator.get_page(request.GET.get("p"))

        def link(number: int) -> str:
            params = {"p": number, **({"q": request.GET["q"]} if request.GET.get("q") else {})}
            return "?" + urlencode(params)

        return {
            "page": page,
            "count": paginator.count,
            "previous_url": link(page.previous_page_number()) if page.has_previous() else None,
            "next_url": link(page.next_page_number()) if page.has_next() else None,
        }

    def selected(self, request: HttpRequest, what: str) -> list[str]:
        chosen = list(dict.fromkeys(request.POST.getlist("selected")))
        if not chosen:
            self.message_user(
                request, f"No {what} was selected: tick at least one first.", messages.WARNING
            )
        return chosen

    def report(self, request: HttpRequest, done: list[str], what: str) -> None:
        if len(done) == 1:
            self.message_user(request, done[0], messages.SUCCESS)
        elif done:
            self.message_user(request, f"{len(done)} {what}.", messages.SUCCESS)


def _runs_url(entry: str) -> str | None:
    try:
        return reverse("admin:spoolcron_run_changelist") + "?" + urlencode({"entry": entry})
    except NoReverseMatch:  # the project's admin site left the run history out
        return None


def _stored_url(request: HttpRequest) -> str | None:
    """The database entries' page, for a user who may change them."""
    if not request.user.has_perm("spoolcron.change_databaseentry"):
        return None
    try:
        return reverse("admin:spoolcron_databaseentry_changelist")
    except NoReverseMatch:
        return None


@admin.register(PeriodicEntry)
class PeriodicEntryAdmin(_PageAdmin):
    change_list_template = "admin/spoolcron/entries.html"
    actions_permissions = {
        "run": "run_periodicentry",
        "pause": "pause_periodicentry",
        "resume": "pause_periodicentry",
        "catch_up": "pause_periodicentry",
    }
    search_help = "name, task or expression"

    def posted_action(self, request: HttpRequest) -> str:
        # The pause and resume buttons carry the entry's name as their own field's value
        # (the form's hidden action is "run").
        for action in ("pause", "resume", "catch_up"):
            if action in request.POST:
                return action
        return super().posted_action(request)

    def page_context(self, request: HttpRequest, query: str, now: datetime) -> dict[str, Any]:
        report = operations.list_entries(now=now, fires=NEXT_FIRES)
        found = [
            e for e in report.entries if _matches(query, e.name, e.task, e.expression, e.module)
        ]
        context = self.paginate(request, found)
        page: Page[operations.EntryInfo] = context["page"]
        stored_url = _stored_url(request)
        context["rows"] = [
            {
                "entry": e,
                "next_fires": [When.of(fire, now) for fire in e.next_fires],
                "last_fire": When.of(e.last_fire, now),
                "last_run": When.of(e.last_run, now),
                "runs_url": _runs_url(e.name),
                "edit_url": (
                    f"{stored_url}?{urlencode({'q': e.name})}"
                    if stored_url and e.origin == "database"
                    else None
                ),
            }
            for e in page.object_list
        ]
        context["database_entries_url"] = stored_url
        context["problems"] = report.problems
        context["ledger_error"] = report.ledger_error
        context["declared"] = len(report.entries)
        return context

    def act(self, request: HttpRequest, action: str) -> None:
        if action != "run":
            return self._pause_or_resume(request, action)
        name = request.POST.get("entry", "")
        self.log_action(request, action, [name])
        try:
            job = operations.run_entry(name)
        except (SpoolcronError, OSError) as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(
            request,
            f"Enqueued job {job.id!r} running entry {name!r} (task {job.task}) now.",
            messages.SUCCESS,
        )

    def _pause_or_resume(self, request: HttpRequest, action: str) -> None:
        name = request.POST.get(action, "")
        self.log_action(request, action, [name])
        by = f"{request.user.get_username()} (admin)"
        try:
            if action == "pause":
                note = request.POST.get("note", "").strip()
                operations.pause_entry(name, note=note, by=by)
                message = f"Paused entry {name!r}: no beat enqueues its fires until resumed."
            else:
                catch_up = action == "catch_up"
                was = operations.resume_entry(name, catch_up=catch_up, by=by)
                if was is None:
                    message = f"Entry {name!r} was not paused; nothing to resume."
                elif catch_up:
                    message = (
                        f"Resumed entry {name!r}: the fires it missed run by its misfire policy."
                    )
                else:
                    message = f"Resumed entry {name!r}: the fires it missed are skipped."
        except (SpoolcronError, DatabaseError) as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, message, messages.SUCCESS)


@admin.register(PendingJob)
class PendingJobAdmin(_PageAdmin):
    change_list_template = "admin/spoolcron/pending_jobs.html"
    actions_permissions = {"cancel": "cancel_pendingjob"}
    search_help = "job id, task or entry"

    def page_context(self, request: HttpRequest, query: str, now: datetime) -> dict[str, Any]:
        jobs: Sequence[operations.PendingJob] = operations.PendingList()
        if query:  # searching reads every job; a plain page reads only its own
            jobs = [
                j
                for j in jobs
                if _matches(query, j.id, j.task, j.entry, str(j.meta.get(META_MANUAL_RUN) or ""))
            ]
        context = self.paginate(request, jobs)
        page: Page[operations.PendingJob] = context["page"]
        context["rows"] = [
            {
                "job": j,
                "due": When.of(j.due, now),
                "manual_run": j.meta.get(META_MANUAL_RUN),
                "arguments": preview(j.args, j.kwargs),
                "all_arguments": preview(j.args, j.kwargs, limit=2000),
            }
            for j in page.object_list
        ]
        context["spool_dir"] = get_settings().spool_dir
        context["store"] = get_settings().pending_store
        return context

    def act(self, request: HttpRequest, action: str) -> None:
        done = []
        selected = self.selected(request, "job")
        self.log_action(request, action, selected)
        for job_id in selected:
            try:
                job = operations.cancel_job(job_id)
            except (SpoolcronError, OSError) as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            done.append(f"Cancelled job {job.id!r} (task {job.task}).")
        self.report(request, done, "jobs cancelled")


@admin.register(FailedJob)
class FailedJobAdmin(_PageAdmin):
    change_list_template = "admin/spoolcron/failed_jobs.html"
    actions_permissions = {"retry": "retry_failedjob", "delete": "delete_failedjob"}
    search_help = "job id, task, entry, file name or reason"

    def page_context(self, request: HttpRequest, query: str, now: datetime) -> dict[str, Any]:
        jobs = [
            j
            for j in operations.failed_jobs()
            if _matches(query, j.id, j.task, j.entry, j.path.name, j.reason, j.error)
        ]
        context = self.paginate(request, jobs)
        page: Page[operations.FailedJob] = context["page"]
        context["rows"] = [
            {
                "job": j,
                "failed_at": When.of(j.failed_at, now),
                "full_reason": operations.failed_reason(j),
            }
            for j in page.object_list
        ]
        context["failed_dir"] = get_settings().failed_dir
        return context

    def act(self, request: HttpRequest, action: str) -> HttpResponse | None:
        names = self.selected(request, "failed job")
        if names and action == "delete" and request.POST.get("confirmed") != "yes":
            # Deleting loses the job for good: ask first, as the admin does for rows.
            context = self.admin_context(request, subtitle="Delete failed files?", names=names)
            request.current_app = self.admin_site.name
            return TemplateResponse(request, "admin/spoolcron/delete_failed.html", context)
        self.log_action(request, action, names)
        if action == "retry":
            self.report(request, list(self._retry(request, names)), "jobs put back")
        else:
            self.report(request, list(self._delete(request, names)), "failed files deleted")
        return None

    def _retry(self, request: HttpRequest, names: list[str]) -> Iterable[str]:
        retried: list[str] = []
        for name in names:
            if any(name.startswith(job_file_prefix(job_id)) for job_id in retried):
                continue  # another file of a job just retried: retrying removed it
            try:
                job = operations.retry_failed(name)
            except (SpoolcronError, OSError) as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            retried.append(job.id)
            yield f"Job {job.id!r} (task {job.task}) is back in the spool directory, due now."

    def _delete(self, request: HttpRequest, names: list[str]) -> Iterable[str]:
        for name in names:
            try:
                operations.delete_failed(name)
            except (SpoolcronError, OSError) as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            yield f"Deleted the failed file {name!r} and its reason."
