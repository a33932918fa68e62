"""One entry per misfire policy on one schedule, for the 10-minute downtime test."""

from spoolcron import Entry

EVERY = "every 30 seconds"
TASK = "tests.testapp.tasks.record"
ENTRIES = [
    Entry("down-coalesce", TASK, EVERY, args=["down-coalesce"]),
    Entry("down-all-5", TASK, EVERY, args=["down-all-5"], misfire="all", misfire_limit=5),
    Entry("down-all-30", TASK, EVERY, args=["down-all-30"], misfire="all", misfire_limit=30),
    Entry("down-skip", TASK, EVERY, args=["down-skip"], misfire="skip"),
    Entry(
        "down-all-grace",
        TASK,
        EVERY,
        args=["down-all-grace"],
        misfire="all",
        misfire_limit=30,
        grace=100,
    ),
    Entry("down-coalesce-grace", TASK, EVERY, args=["down-coalesce-grace"], grace=100),
]
