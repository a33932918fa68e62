"""Entries for the pause/resume, backfill, jitter and dead-man tests (tests/test_control.py)."""

from spoolcron import Entry

ENTRIES = [
    Entry("nightly", "tests.testapp.tasks.record", "daily at 03:00", args=["nightly"]),
    Entry("minutely", "tests.testapp.tasks.record", "every minute", args=["m"], jitter=30),
    Entry(
        "backup",
        "tests.testapp.tasks.record",
        "every hour",
        args=["backup"],
        alert_after=2 * 3600,
    ),
]
