"""A schedules module with a non-positive pause_after_failures: spoolcron.E004."""

from spoolcron import Entry

ENTRIES = [
    Entry("flaky", "tests.testapp.tasks.record", "every minute", pause_after_failures=0),
]
