"""The soak run's 100 entries: mixed intervals, calendar-free cron lines and 6-field crons."""

from spoolcron import Entry

SCHEDULES = [
    "every second",
    "every 2 seconds",
    "every 5 seconds",
    "every 10 seconds",
    "every 15 seconds",
    "every 30 seconds",
    "every minute",
    "*/2 * * * *",
    "*/7 * * * * *",
    "every 90 seconds",
]
# Ten entries per schedule, but only three of the every-second ones: the runs stay at about
# ten a second, which two hosts on a loaded two-core machine keep up with.
ENTRIES = [
    # overlap="allow": the soak counts runs, so a fire must never be skipped for overlapping.
    Entry(
        f"soak-{i:03d}",
        "tests.testapp.tasks.record",
        SCHEDULES[i % 10],
        args=[f"soak-{i:03d}"],
        overlap="allow",
    )
    for i in range(130)
    if i % 10 != 0 or i < 30
][:100]
