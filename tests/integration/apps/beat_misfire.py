"""Four entries on the same schedule, one per misfire policy, for the restart test."""

from spoolcron import Entry

EVERY = "every 2 seconds"
ENTRIES = [
    Entry("misfire-coalesce", "tests.testapp.tasks.record", EVERY, args=["misfire-coalesce"]),
    Entry(
        "misfire-all-2",
        "tests.testapp.tasks.record",
        EVERY,
        args=["misfire-all-2"],
        misfire="all",
        misfire_limit=2,
    ),
    Entry(
        "misfire-all-10",
        "tests.testapp.tasks.record",
        EVERY,
        args=["misfire-all-10"],
        misfire="all",
        misfire_limit=10,
    ),
    Entry(
        "misfire-skip", "tests.testapp.tasks.record", EVERY, args=["misfire-skip"], misfire="skip"
    ),
]
