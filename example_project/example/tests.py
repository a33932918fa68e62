# ruff: noqa: PT009  (a django.test.TestCase: its assert methods are the style here)
"""The demo's own tests, written with spoolcron.testing (``django.test.TestCase``, no uWSGI).

Run them with ``python example_project/manage.py test example``.
"""

from datetime import UTC, datetime

from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

import spoolcron.testing
from spoolcron.testing import FrozenClock

from .tasks import say


class EnqueueFormTests(TestCase):
    def setUp(self) -> None:
        self.jobs = self.enterContext(spoolcron.testing.recording())

    def test_the_form_enqueues_a_say_job(self) -> None:
        with FrozenClock("2026-06-05T12:00:00"):
            response = self.client.post(reverse("home"), {"text": "hi there", "seconds": 30})
        self.assertEqual(response.status_code, 302)
        [job] = self.jobs.all(task=say)
        self.assertEqual(job.args, ["hi there"])
        self.assertEqual(timezone.localtime(job.run_after).strftime("%H:%M:%S"), "12:00:30")
        with self.assertLogs("example.tasks") as logs:
            [ran] = spoolcron.testing.run_enqueued()
        self.assertEqual(ran.outcome.value, "succeeded")
        self.assertIn("say: 'hi there'", logs.output[0])
        self.assertEqual(self.jobs.all(), [])

    def test_a_bad_form_enqueues_nothing(self) -> None:
        self.client.post(reverse("home"), {"text": "", "seconds": -1})
        self.assertEqual(spoolcron.testing.enqueued_jobs(), [])


def _local(timestamp: float) -> str:
    return timezone.localtime(datetime.fromtimestamp(timestamp, UTC)).strftime("%a %Y-%m-%d %H:%M")


class ScheduleTests(TestCase):
    def test_the_stand_up_fires_once_each_weekday(self) -> None:
        fired = []
        # From Friday 5 June 2026, noon in Rome (TIME_ZONE), day by day for a week.
        with FrozenClock("2026-06-05T12:00:00") as clock, spoolcron.testing.recording():
            spoolcron.testing.run_due(entries=["stand-up"])  # the beat starts
            for _ in range(7):
                clock.advance(days=1)
                with self.assertNoLogs("spoolcron.beat", "WARNING"):  # nothing missed
                    ran = spoolcron.testing.run_due(entries=["stand-up"])
                fired += [_local(r.payload.run_after) for r in ran if r.payload]
        self.assertEqual(
            fired,
            [
                "Mon 2026-06-08 09:30",
                "Tue 2026-06-09 09:30",
                "Wed 2026-06-10 09:30",
                "Thu 2026-06-11 09:30",
                "Fri 2026-06-12 09:30",
            ],
        )

    def test_report_and_tick_run_on_a_frozen_clock(self) -> None:
        with FrozenClock("2026-06-05T12:00:00") as clock, spoolcron.testing.recording():
            spoolcron.testing.run_due(entries=["tick", "report"])
            clock.advance(minutes=2)
            ran = spoolcron.testing.run_due(entries=["tick", "report"])
        entries = [r.payload.entry for r in ran if r.payload]
        self.assertEqual(entries.count("tick"), 24)  # every 5 seconds
        self.assertEqual(entries.count("report"), 1)  # */2 * * * *
