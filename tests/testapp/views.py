from django.http import HttpRequest, JsonResponse

from . import tasks


def enqueue(request: HttpRequest) -> JsonResponse:
    """Enqueues a job from inside a uWSGI worker (the integration tests call it)."""
    delay = float(request.GET.get("delay", "0"))
    job = tasks.record.schedule([request.GET["label"]], {"source": "worker"}, run_after=delay)
    return JsonResponse({"id": job.id, "run_after": job.run_after.timestamp()})
