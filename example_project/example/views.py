"""The demo's pages: ``/`` (the form and the live tables) and ``/runs/`` (the live tables).

The tables sit in an ``<iframe>`` that reloads itself every 5 seconds, so the form around it
keeps what you type: no JavaScript needed.
"""

from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

import spoolcron
from spoolcron.models import Run
from spoolcron.operations import list_entries, relative, upcoming

from .forms import EnqueueForm
from .tasks import say

UPCOMING_COUNT = 8
RECENT_COUNT = 15


def home(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = EnqueueForm(request.POST)
        if form.is_valid():
            text, seconds = form.cleaned_data["text"], form.cleaned_data["seconds"]
            job = spoolcron.schedule(say, args=[text], run_after=timedelta(seconds=seconds))
            due = timezone.localtime(job.run_after)
            messages.success(
                request, f"Enqueued job {job.id}: say({text!r}), due at {due:%H:%M:%S}."
            )
            # The job's id in the address: the tables highlight its rows.
            return redirect(f"{reverse('home')}?job={job.id}")
    else:
        form = EnqueueForm()
    highlight = request.GET.get("job", "")
    runs_url = reverse("runs") + (f"?{urlencode({'job': highlight})}" if highlight else "")
    return render(request, "example/home.html", {"form": form, "runs_url": runs_url})


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:,.1f}"


def _local(moment: datetime | None) -> datetime | None:
    return None if moment is None else timezone.localtime(moment)


def runs(request: HttpRequest) -> HttpResponse:
    """The entries, the upcoming runs (periodic fires and spooled jobs) and the run history."""
    now = timezone.now()
    report = list_entries(now=now)
    entries = [
        {
            "name": entry.name,
            "task": entry.task,
            "schedule": entry.description,
            "next": _local(entry.next_fire),
            "next_in": relative((entry.next_fire - now).total_seconds()) if entry.next_fire else "",
            "last": _local(entry.last_run),
            "outcome": entry.last_outcome or "",
        }
        for entry in report.entries
    ]
    found, _ = upcoming(count=UPCOMING_COUNT, now=now)
    highlight = request.GET.get("job", "")
    upcoming_rows = [
        {
            "when": timezone.localtime(run.when),
            "due": relative((run.when - now).total_seconds()),
            "name": run.name,
            "task": run.task,
            "schedule": run.schedule,
            "source": run.source,
            "highlight": bool(highlight) and highlight in (run.name, run.job_id),
        }
        for run in found.runs
    ]
    recent: list[dict[str, Any]] = [
        {
            "started": timezone.localtime(run.started),
            "name": run.entry or "one-off",
            "job_id": run.job_id,
            "task": run.task,
            "attempt": run.attempt,
            "outcome": run.outcome,
            "late_ms": _ms(run.lateness),
            "duration_ms": _ms(run.duration),
            "error": run.error.strip().splitlines()[-1] if run.error.strip() else "",
            "highlight": run.job_id == highlight,
        }
        for run in Run.objects.order_by("-started", "-pk")[:RECENT_COUNT]
    ]
    context = {
        "now": timezone.localtime(now),
        "entries": entries,
        "upcoming": upcoming_rows,
        "more": found.more,
        "problems": [*report.problems, *filter(None, [report.ledger_error])],
        "recent": recent,
        "health": spoolcron.health(),
    }
    return render(request, "example/runs.html", context)
