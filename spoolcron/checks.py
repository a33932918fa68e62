"""Django system checks: every problem with the declared entries, with stable ids.

=================  ===========================================================
spoolcron.E001     two entries share a name
spoolcron.E002     an entry's expression (or zone) is invalid
spoolcron.E003     an entry names a task that is not registered
spoolcron.E004     an entry has a bad option (misfire, overlap, grace, args…)
spoolcron.E005     a schedules module raises when imported
=================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, register

from .entries import collect

__all__ = ["check_entries"]


@register("spoolcron")
def check_entries(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    _, problems = collect()
    return [Error(str(problem), id=problem.id) for problem in problems]
