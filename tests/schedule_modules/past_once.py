from spoolcron import Entry

ENTRIES = [
    Entry("launch", "tests.testapp.tasks.record", "once at 2020-01-01 09:00", args=["launch"]),
    Entry(
        "old-but-off",
        "tests.testapp.tasks.record",
        "once at 2020-01-01 09:00",
        args=["off"],
        enabled=False,
    ),
    Entry("future", "tests.testapp.tasks.record", "once at 2999-01-01 09:00", args=["later"]),
]
