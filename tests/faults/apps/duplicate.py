"""Two entries with one name: the mule must refuse to start, naming both."""

from spoolcron import Entry

ENTRIES = [
    Entry("twice", "tests.testapp.tasks.record", "every minute", args=["a"]),
    Entry("twice", "tests.testapp.tasks.record", "every 2 minutes", args=["b"]),
]
