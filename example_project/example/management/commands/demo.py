"""``manage.py demo``, what ``make demo`` runs: for now, the next runs of a few schedules."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

import schedules

SAMPLES = [
    "every 5 seconds",
    "every 15 minutes",
    "weekdays at 09:30",
    "Sunday 17:03",
    "on the last day of the month at 23:00",
    "0 */2 * * mon-fri",
    "once at 2026-12-24 18:00",
]


class Command(BaseCommand):
    help = "Show the next runs of a few sample schedules in the project's time zone."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--count", type=int, default=3, help="runs to show per schedule")

    def handle(self, *args: Any, count: int, **options: Any) -> None:
        now = timezone.now()
        local = now.astimezone(ZoneInfo(settings.TIME_ZONE))
        self.stdout.write(f"Now: {local:%a %Y-%m-%d %H:%M:%S %Z}\n")
        for text in SAMPLES:
            schedule = schedules.parse(text, tz=settings.TIME_ZONE)
            self.stdout.write(self.style.MIGRATE_HEADING(f"{text!r}: {schedule.describe()}"))
            when: datetime | None = now
            for _ in range(count):
                when = schedule.next_after(when) if when else None
                if when is None:
                    self.stdout.write("    (no more runs)")
                    break
                self.stdout.write(f"    {when:%a %Y-%m-%d %H:%M:%S %Z}")
