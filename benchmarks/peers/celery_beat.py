"""The Celery peer: a private Redis, ``celery worker --pool=solo`` and, for periodic runs,
``celery beat``, each its own process, all stopped by their pids when the block ends.

The worker runs one task at a time in its main process (``--pool=solo``; a periodic job that
does nothing needs no pool), without gossip and mingle (a single worker has nobody to talk
to, and they only slow its start). Beat uses its default ``PersistentScheduler`` with the
schedule file in the temp dir.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.peers import NotRun, read_jsonl, require, spawn, wait_for
from benchmarks.peers.redis_server import find_redis_server, redis_server
from benchmarks.project.server import REPO

__all__ = ["CeleryStack", "celery_stack", "celery_version"]

START_TIMEOUT = 90.0


def celery_version() -> str:
    try:
        require("celery", "Celery")
    except NotRun as reason:
        return str(reason)
    import celery
    import kombu

    return f"Celery {celery.__version__}, kombu {kombu.__version__}"


@dataclass
class CeleryStack:
    app: Any  # celery.Celery: a producer on the same broker as the worker
    results_dir: Path
    worker_pid: int
    beat_pid: int | None

    def stamps(self) -> list[dict[str, object]]:
        return read_jsonl(self.results_dir / "stamps.jsonl")

    def sends(self) -> list[dict[str, object]]:
        """When beat published each message: ``{"time", "id"}``."""
        return read_jsonl(self.results_dir / "sent.jsonl")

    @property
    def task(self) -> Any:
        from benchmarks.peers.celery_app import TASK

        return self.app.tasks[TASK]


@contextlib.contextmanager
def celery_stack(workdir: Path, *, beat: bool = False) -> Iterator[CeleryStack]:
    """Redis, a worker and (``beat=True``) beat; yields once the worker has run a task."""
    require("celery", "Celery")
    require("redis", "the redis client")
    find_redis_server()
    from benchmarks.peers.celery_app import make_app

    results = workdir / "results"
    results.mkdir(parents=True, exist_ok=True)
    celery = ["python", "-m", "celery", "-A", "benchmarks.peers.celery_app"]
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(redis_server(workdir / "redis"))
        env = {
            "BENCH_CELERY_BROKER": url,
            "BENCH_CELERY_RESULTS": str(results),
            "BENCH_CELERY_BEAT": "1" if beat else "",
        }
        worker = stack.enter_context(
            spawn(
                [*celery, "worker", "--pool=solo", "--without-gossip", "--without-mingle",
                 "--loglevel=WARNING"],
                log_path=workdir / "worker.log", env=env, cwd=REPO,
            )
        )  # fmt: skip
        app = make_app(url)
        stack.callback(app.close)
        app.tasks["bench.stamp"].apply_async(("ready",))

        def ready() -> bool:
            worker.check("The Celery worker")
            return any(s["label"] == "ready" for s in read_jsonl(results / "stamps.jsonl"))

        wait_for(ready, START_TIMEOUT, "the Celery worker to run a task")
        beat_pid = None
        if beat:
            schedule = workdir / "celerybeat-schedule"
            beat_process = stack.enter_context(
                spawn(
                    [*celery, "beat", f"--schedule={schedule}", "--loglevel=WARNING"],
                    log_path=workdir / "beat.log", env={**env, "BENCH_CELERY_ROLE": "beat"},
                    cwd=REPO,
                )
            )  # fmt: skip
            beat_pid = beat_process.pid
        yield CeleryStack(app=app, results_dir=results, worker_pid=worker.pid, beat_pid=beat_pid)
