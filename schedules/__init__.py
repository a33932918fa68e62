"""Pure schedule math: parse schedule expressions and compute fire times.

No Django, no uWSGI, no I/O. ``parse(text, tz=...)`` returns an immutable Schedule whose
``next_after(dt)`` gives the first fire time strictly after an aware datetime.
"""

from schedules.base import Schedule
from schedules.calendar import Calendar, Hourly
from schedules.cron import Cron
from schedules.errors import ScheduleError
from schedules.interval import Interval
from schedules.once import Once
from schedules.parser import parse

__all__ = [
    "Calendar",
    "Cron",
    "Hourly",
    "Interval",
    "Once",
    "Schedule",
    "ScheduleError",
    "parse",
]
