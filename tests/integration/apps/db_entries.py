"""A schedules module for tests/integration/test_database_entries_uwsgi.py: one declared entry
(its name is refused for a database entry); the entries under test are added while uWSGI runs."""

from spoolcron import Entry

ENTRIES = [
    Entry("declared", "tests.testapp.tasks.noop", "every hour"),
]
