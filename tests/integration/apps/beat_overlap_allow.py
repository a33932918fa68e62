"""The same long entry with overlap="allow": runs may overlap when spoolers are free."""

from spoolcron import Entry

ENTRIES = [
    Entry(
        "overlap-allow",
        "tests.testapp.tasks.sleepy",
        "every second",
        args=["overlap-allow", 2.5],
        overlap="allow",
    ),
]
