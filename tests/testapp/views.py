"""Views the integration tests call inside uWSGI workers, which share the spooler's database."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from . import framework_tasks, tasks


def enqueue(request: HttpRequest) -> JsonResponse:
    """Enqueues a job from inside a uWSGI worker (the integration tests call it)."""
    delay = float(request.GET.get("delay", "0"))
    job = tasks.record.schedule([request.GET["label"]], {"source": "worker"}, run_after=delay)
    return JsonResponse({"id": job.id, "run_after": job.run_after.timestamp()})


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value.timestamp())


def _describe(result: Any) -> JsonResponse:
    return JsonResponse(
        {
            "id": result.id,
            "status": str(result.status),
            "return_value": result.return_value if str(result.status) == "SUCCESSFUL" else None,
            "errors": [
                {"exception_class_path": e.exception_class_path, "traceback": e.traceback}
                for e in result.errors
            ],
            "attempts": result.attempts,
            "worker_ids": result.worker_ids,
            "enqueued_at": _seconds(result.enqueued_at),
            "started_at": _seconds(result.started_at),
            "finished_at": _seconds(result.finished_at),
            "run_after": _seconds(result.task.run_after),
        }
    )


def task_enqueue(request: HttpRequest) -> JsonResponse:
    """``my_task.enqueue(*args)``, or ``my_task.using(run_after=now + delay).enqueue(*args)``."""
    task = getattr(framework_tasks, request.GET["task"])
    if "delay" in request.GET:
        when = timezone.now() + timedelta(seconds=float(request.GET["delay"]))
        task = task.using(run_after=when)
    return _describe(task.enqueue(*json.loads(request.GET.get("args", "[]"))))


def task_result(request: HttpRequest) -> JsonResponse:
    """``get_result(id)``, then ``refresh()`` until it finished or ``wait`` seconds passed."""
    result = framework_tasks.add.get_backend().get_result(request.GET["id"])
    deadline = time.monotonic() + float(request.GET.get("wait", "0"))
    while not result.is_finished and time.monotonic() < deadline:
        time.sleep(0.05)
        result.refresh()
    return _describe(result)
