"""The periodic entry of the beat benchmark, declared only when that benchmark runs."""

import os

from spoolcron import Entry

BEAT_ENTRY = "bench-every-second"

ENTRIES = (
    [Entry(BEAT_ENTRY, "benchmarks.project.tasks.stamp", "every second", args=["beat"])]
    if os.environ.get("SPOOLCRON_BENCH_BEAT")
    else []
)
