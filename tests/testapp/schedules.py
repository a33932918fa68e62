"""Entries the test app declares (autodiscovered like admin.py). Kept valid: checks must pass."""

from spoolcron import Entry

ENTRIES = [
    Entry("testapp-every-minute", "tests.testapp.tasks.noop", "every minute"),
]
