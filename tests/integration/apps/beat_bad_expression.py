"""A schedules module with one valid entry and one whose expression does not parse."""

from spoolcron import Entry

ENTRIES = [
    Entry("fine", "tests.testapp.tasks.record", "every second", args=["fine"]),
    Entry("broken", "tests.testapp.tasks.record", "every fortnight", args=["broken"]),
]
