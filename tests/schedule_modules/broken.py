from spoolcron import Entry

ENTRIES = [
    Entry("typo", "tests.testapp.tasks.record", "every 5 secnds"),
    Entry("ghost", "tests.testapp.tasks.nope", "every minute"),
    Entry("bad-zone", "tests.testapp.tasks.record", "daily at 03:00", zone="Europe/Rom"),
    Entry("bad-policy", "tests.testapp.tasks.record", "every minute", misfire="later"),  # type: ignore[arg-type]
    Entry("bad-args", "tests.testapp.tasks.record", "every minute", args=[object()]),
    Entry("every-5s", "tests.testapp.tasks.record", "every 10 seconds"),
]
