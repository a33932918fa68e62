"""One fire every wall-clock second, to see fires neither lost nor doubled across a fault."""

from spoolcron import Entry

ENTRIES = [
    Entry("every-second", "tests.testapp.tasks.record", "every second", args=["every-second"]),
]
