"""The task every benchmark job runs: it notes when it started, and nothing else."""

from __future__ import annotations

import json
import os
import time

import spoolcron

__all__ = ["stamp", "stamp_remote"]


@spoolcron.task
def stamp(label: str) -> None:
    """Append ``{"label", "time", "pid"}`` to ``$SPOOLCRON_BENCH_RESULTS/stamps.jsonl``."""
    started = time.time()  # first thing: this is the start time the lateness is measured at
    directory = os.environ.get("SPOOLCRON_BENCH_RESULTS")
    if not directory:
        return
    line = json.dumps({"label": label, "time": started, "pid": os.getpid()})
    # One short append per run: O_APPEND keeps concurrent lines whole.
    with open(os.path.join(directory, "stamps.jsonl"), "a") as out:
        out.write(line + "\n")


@spoolcron.task(remote=True)
def stamp_remote(label: str) -> None:
    """``stamp``, for jobs other processes send over the uwsgi protocol (a remote queue)."""
    stamp(label)
