"""The demo's periodic entries, discovered by spoolcron like an app's ``admin.py``."""

from spoolcron import Entry

ENTRIES = [
    Entry("tick", "example.tasks.tick", "every 5 seconds"),
    Entry("stand-up", "example.tasks.say", "weekdays at 09:30", args=["time for the stand-up"]),
    Entry("report", "example.tasks.report", "*/2 * * * *"),
]
