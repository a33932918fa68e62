"""The database entries' subcommands of ``manage.py spoolcron``: ``entry-add``, ``entry-edit``
and ``entry-delete`` (a mixin of the command; arguments in ``entry_arguments``).

Each prints what the entry now is, in plain English with its next five fires, so the
operator sees at once whether the schedule says what they meant.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import CommandError

from spoolcron import operations
from spoolcron.core.entries import ResolvedEntry
from spoolcron.exceptions import InvalidEntry, UnknownEntry
from spoolcron.management.formatting import Output

__all__ = ["EntryCommands", "operator"]

VALUES = {
    "task": "task",
    "schedule": "schedule",
    "zone": "zone",
    "task_args": "args",
    "task_kwargs": "kwargs",
    "misfire": "misfire",
    "misfire_limit": "misfire_limit",
    "grace": "grace",
    "overlap": "overlap",
    "jitter": "jitter",
    "alert_after": "alert_after",
    "pause_after_failures": "pause_after_failures",
}
"""The options both subcommands take (their dest) and the names ``add_entry`` takes."""


def operator() -> str:
    """Who made a change, for ``changed_by``: the login name, the command."""
    try:
        return f"{os.getlogin()} (command)"
    except OSError:
        return "command"


def _refused(exc: InvalidEntry | UnknownEntry) -> CommandError:
    field = getattr(exc, "field", None)
    where = ""
    if field is not None and field != "name":
        where = f" (--{field.replace('_', '-')})"
    return CommandError(f"{exc}{where}", returncode=2)


class EntryCommands:
    """``_entry_add``, ``_entry_edit``, ``_entry_delete`` for the spoolcron command."""

    out: Output

    def _entry_add(self, options: dict[str, Any]) -> None:
        values = {VALUES[k]: options[k] for k in VALUES if options.get(k) is not None}
        values["enabled"] = not options["disabled"]
        try:
            _, entry = operations.add_entry(options["entry"], by=operator(), **values)
        except InvalidEntry as exc:
            raise _refused(exc) from None
        self._described("Added", entry)

    def _entry_edit(self, options: dict[str, Any]) -> None:
        changes = {VALUES[k]: options[k] for k in VALUES if k in options}
        if options.get("new_name") is not None:
            changes["name"] = options["new_name"]
        if options.get("enabled") is not None:
            changes["enabled"] = options["enabled"]
        if "zone" in changes and not changes["zone"]:
            changes["zone"] = ""
        try:
            _, entry = operations.edit_entry(options["entry"], by=operator(), **changes)
        except (InvalidEntry, UnknownEntry) as exc:
            raise _refused(exc) from None
        self._described("Changed", entry)

    def _entry_delete(self, options: dict[str, Any]) -> None:
        try:
            operations.delete_entry(options["entry"], by=operator())
        except UnknownEntry as exc:
            raise _refused(exc) from None
        self.out.success(
            f"Deleted database entry {options['entry']!r}: no beat enqueues its fires any more."
        )

    def _described(self, verb: str, entry: ResolvedEntry) -> None:
        state = "" if entry.enabled else " (disabled: it does not fire)"
        self.out.success(
            f"{verb} database entry {entry.name!r}: {entry.task.name} "
            f"{entry.schedule.describe()}{state}."
        )
        fires = operations.next_fires(entry, 5) if entry.enabled else []
        if entry.enabled and not fires:
            # What the check W006 says of a declared entry: valid, but it never fires.
            self.out.stdout.write(
                "Its schedule has no fire time after now (a one-shot in the past): it never fires.",
                self.out.style.WARNING,
            )
        if fires:
            self.out.stdout.write("Next fires:")
        for fire in fires:
            self.out.stdout.write(f"  {self.out.local(fire)}")
