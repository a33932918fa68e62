"""The command line of the database entries' subcommands: ``entry-add``, ``entry-edit``,
``entry-delete`` (declared beside the others by ``arguments.add_subcommands``).

Values are only parsed here (JSON, numbers, ``none``); whether they make a valid entry is
decided by ``operations.validate_entry``, with the system checks' messages.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

__all__ = ["add_entry_subcommands"]

NONE = "none"


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"expected JSON, not {text!r}: {exc}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}") from None


def _number_or_none(text: str) -> float | None:
    return None if text.strip().lower() == NONE else _number(text)


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None


def _whole_or_none(text: str) -> int | None:
    return None if text.strip().lower() == NONE else _whole(text)


def _options(sub: argparse.ArgumentParser, *, adding: bool) -> None:
    """The entry's values; ``adding``: --task and --schedule are required and the others
    default to an Entry's defaults; editing: each given option changes that value only."""
    default: dict[str, Any] = {} if adding else {"default": argparse.SUPPRESS}
    sub.add_argument(
        "--task",
        required=adding,
        metavar="TASK",
        help="a registered task's name, e.g. myapp.tasks.cleanup",
        **default,
    )
    sub.add_argument(
        "--schedule",
        required=adding,
        metavar="EXPR",
        help='the schedule: "every 5 minutes", "Sunday 17:03", "30 2 * * *", ...',
        **default,
    )
    sub.add_argument(
        "--zone", metavar="ZONE", help="an IANA time zone (default: TIME_ZONE)", **default
    )
    sub.add_argument(
        # dest: Django's command passes its own "args" to execute().
        "--args",
        dest="task_args",
        type=_json,
        metavar="JSON",
        help="the task's arguments, a JSON list",
        **default,
    )
    sub.add_argument(
        "--kwargs",
        dest="task_kwargs",
        type=_json,
        metavar="JSON",
        help="the task's keyword arguments, a JSON object",
        **default,
    )
    sub.add_argument(
        "--misfire",
        metavar="POLICY",
        help="coalesce (default), all or skip: what runs of the fires missed while down",
        **default,
    )
    sub.add_argument(
        "--misfire-limit",
        type=_whole,
        metavar="N",
        help="misfire=all runs at most this many (default: 10)",
        **default,
    )
    sub.add_argument(
        "--grace",
        type=_number_or_none,
        metavar="SECONDS",
        help="missed fires older than this are dropped (none: no limit, the default)",
        **default,
    )
    sub.add_argument(
        "--overlap",
        metavar="POLICY",
        help="skip (default: no fire while the previous run still runs) or allow",
        **default,
    )
    sub.add_argument(
        "--jitter",
        type=_number,
        metavar="SECONDS",
        help="delay each fire by a deterministic offset in [0, SECONDS) (default: 0)",
        **default,
    )
    sub.add_argument(
        "--alert-after",
        type=_number_or_none,
        metavar="SECONDS",
        help="health is unhealthy when no run succeeded for this long (none: never)",
        **default,
    )
    sub.add_argument(
        "--pause-after-failures",
        type=_whole_or_none,
        metavar="N",
        help="pause the entry after N of its fires in a row failed (none: never)",
        **default,
    )


def add_entry_subcommands(add: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Declare ``entry-add``, ``entry-edit`` and ``entry-delete`` with ``add`` (name,
    summary, description) -> the subcommand's parser."""
    sub = add(
        "entry-add",
        "store a periodic entry in the database; running beats pick it up",
        "Store a periodic entry in the database, as an operator would in the admin. Every "
        "running beat (uWSGI's mule, `spoolcron worker`) runs it within a few seconds, "
        "without a restart. The name may not be one a schedules module declares; the values "
        "are checked as `manage.py check` checks declared entries.",
    )
    sub.add_argument("entry", metavar="NAME", help="the entry's name, unique")
    _options(sub, adding=True)
    sub.add_argument(
        "--disabled", action="store_true", help="store it disabled: no fire until enabled"
    )

    sub = add(
        "entry-edit",
        "change a periodic entry stored in the database",
        "Change the values given of a periodic entry stored in the database; the others "
        "stay. A new schedule gives new fires only: no fire before now runs for it. Running "
        "beats pick the change up within a few seconds.",
    )
    sub.add_argument("entry", metavar="NAME", help="the entry's name (see `entries`)")
    sub.add_argument("--name", dest="new_name", metavar="NEW", help="rename it")
    _options(sub, adding=False)
    enabled = sub.add_mutually_exclusive_group()
    enabled.add_argument("--enable", dest="enabled", action="store_true", default=None)
    enabled.add_argument("--disable", dest="enabled", action="store_false", default=None)

    sub = add(
        "entry-delete",
        "delete a periodic entry stored in the database",
        "Delete a periodic entry stored in the database: running beats stop its fires "
        "within a few seconds (a fire already in a spool directory still runs). Its run "
        "history stays.",
    )
    sub.add_argument("entry", metavar="NAME", help="the entry's name (see `entries`)")
