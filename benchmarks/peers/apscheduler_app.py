"""The APScheduler peer: ``python -m benchmarks.peers.apscheduler_app RESULTS_DIR cron|interval``.

A ``BlockingScheduler`` (APScheduler 3, its default thread pool executor, UTC) with one job
firing every second: ``CronTrigger(second="*")`` (at each wall-clock second) or
``IntervalTrigger(seconds=1)`` (every second from when the job was added). The job appends
its start time to ``RESULTS_DIR/stamps.jsonl``; a listener appends the fire time APScheduler
submitted each run for to ``RESULTS_DIR/submitted.jsonl`` (the job cannot see it), so the
k-th run pairs with the k-th submission (one job, ``max_instances=1``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str]) -> int:
    from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    results, kind = Path(argv[0]), argv[1]
    stamps = results / "stamps.jsonl"

    def stamp() -> None:
        started = time.time()  # first thing: the start the lateness is measured at
        with open(stamps, "a") as out:
            out.write(json.dumps({"label": kind, "time": started, "pid": os.getpid()}) + "\n")

    scheduler = BlockingScheduler(timezone="UTC")
    trigger = (
        CronTrigger(second="*", timezone="UTC") if kind == "cron" else IntervalTrigger(seconds=1)
    )
    scheduler.add_job(stamp, trigger, max_instances=1, coalesce=True, misfire_grace_time=30)

    def submitted(event: JobSubmissionEvent) -> None:
        fires = [t.timestamp() for t in event.scheduled_run_times]
        with open(results / "submitted.jsonl", "a") as out:
            out.write(json.dumps({"job": event.job_id, "fires": fires}) + "\n")

    scheduler.add_listener(submitted, EVENT_JOB_SUBMITTED)  # type: ignore[arg-type]
    scheduler.start()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
