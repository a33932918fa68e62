"""A schedules module for the beat integration tests: one fire every wall-clock second."""

from spoolcron import Entry

ENTRIES = [
    Entry("every-second", "tests.testapp.tasks.record", "every second", args=["every-second"]),
]
