import schedules
from spoolcron import Entry, periodic

ENTRIES = [
    Entry("every-5s", "tests.testapp.tasks.record", "every 5 seconds", args=["5s"]),
    Entry(
        "sunday-report",
        "tests.testapp.tasks.record",
        "Sunday 17:03",
        kwargs={"label": "report"},
        zone="Europe/Rome",
        misfire="skip",
    ),
    Entry("cron-line", "tests.testapp.tasks.record", "*/15 * * * *", args=["cron"]),
    Entry("object", "tests.testapp.tasks.record", schedules.Interval(seconds=90), args=["o"]),
]


@periodic("every minute", name="decorated")
def decorated() -> None:
    """Declared with the decorator form."""
