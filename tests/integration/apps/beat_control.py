"""A schedules module for tests/integration/test_control_uwsgi.py: an entry every second to
pause and resume, 100 entries sharing a fire spread by jitter, and a disabled entry to
backfill."""

from spoolcron import Entry

JITTER = 6.0
TENANTS = 100

ENTRIES = [
    Entry("every-second", "tests.testapp.tasks.record", "every second", args=["every-second"]),
    Entry(
        "backfilled",
        "tests.testapp.tasks.record",
        "every second",
        args=["backfilled"],
        enabled=False,
    ),
    *[
        Entry(
            f"tenant-{n:03d}",
            "tests.testapp.tasks.record",
            "every 15 seconds",
            args=[f"tenant-{n:03d}"],
            jitter=JITTER,
        )
        for n in range(TENANTS)
    ],
]
