"""What ``manage.py spoolcron`` prints: tables, colours, local and relative times, text reports.

The JSON of a listing is its report's own ``as_dict()``; only the dispatcher's ``Result``
gets its dict here (:func:`result_dict`). Colours come from the command's style, which is
plain when stdout is not a terminal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.management.base import OutputWrapper
from django.core.management.color import Style
from django.utils import timezone

from spoolcron.core.entries import Problem
from spoolcron.core.protocols import EntryPause
from spoolcron.core.times import utc
from spoolcron.core.upcoming import Upcoming
from spoolcron.operations import (
    BackfillReport,
    EntriesReport,
    FailedJob,
    HealthReport,
    PendingJob,
    reason_line,
    relative,
)
from spoolcron.runtime.dispatch import Outcome, Result

__all__ = ["Output", "result_dict"]

Paint = Callable[[str], str]


def result_dict(result: Result) -> dict[str, Any]:
    """One job run by ``run-due``, JSON-ready."""
    payload = result.payload
    return {
        "outcome": result.outcome.value,
        "job_id": payload.job_id if payload else None,
        "task": payload.task if payload else None,
        "entry": payload.entry if payload else None,
        "attempt": payload.attempt if payload else None,
        "reason": result.reason,
    }


def _without_zone(description: str, zone: str | None) -> str:
    # The table has a zone column: "every minute (UTC)" there reads "every minute".
    suffix = f" ({zone})"
    return description.removesuffix(suffix) if zone else description


class Output:
    """The command's stdout and stderr, and how each answer is written to them."""

    def __init__(self, stdout: OutputWrapper, stderr: OutputWrapper, style: Style) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.style = style

    # --- building blocks ------------------------------------------------------------------

    def json(self, document: Any) -> None:
        self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))

    def success(self, message: str) -> None:
        self.stdout.write(message, self.style.SUCCESS)

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        styles: Sequence[Sequence[Paint | None]] | None = None,
    ) -> None:
        widths = [len(h) for h in headers]
        for row in rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

        def line(cells: Sequence[str], paint: Sequence[Paint | None]) -> str:
            parts = []
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
                text = cell if i == len(cells) - 1 else cell.ljust(width)
                style = paint[i]
                parts.append(style(text) if style else text)
            return "  ".join(parts).rstrip()

        self.stdout.write(line(headers, [self.style.MIGRATE_HEADING] * len(headers)))
        for index, row in enumerate(rows):
            self.stdout.write(line(row, styles[index] if styles else [None] * len(row)))

    def local(self, value: datetime | None, *, relative_to: datetime | None = None) -> str:
        """``value`` in the current time zone, e.g. ``Mon 2026-11-23 12:00:07 UTC``; ``-``
        for None; with ``relative_to``, followed by ``(in 4 min)``."""
        if value is None:
            return "-"
        text = timezone.localtime(value).strftime("%a %Y-%m-%d %H:%M:%S %Z")
        if relative_to is not None:
            text += f" ({relative((value - relative_to).total_seconds())})"
        return text

    def warn_problems(self, problems: Sequence[Problem], what: str) -> None:
        for problem in problems:
            self.stderr.write(f"{problem.id} {problem} ({what})", self.style.WARNING)

    # --- the answers ----------------------------------------------------------------------

    def upcoming(
        self, result: Upcoming, problems: Sequence[Problem], *, as_json: bool, count: int
    ) -> None:
        """The runs to come (``count`` were asked for), and the entries left out."""
        if as_json:
            self.json({**result.as_dict(), "problems": [asdict(p) for p in problems]})
            self.warn_problems(problems, "left out")
            return
        self.warn_problems(problems, "left out")
        now = result.now
        if not result.runs:
            later = f" until {self.local(result.until)}" if result.until else ""
            self.stdout.write(f"Nothing is scheduled{later}.")
            return
        rows, styles = [], []
        for run in result.runs:
            late = run.when < now
            rows.append(
                [
                    self.local(run.when),
                    relative((run.when - now).total_seconds()),
                    run.name,
                    run.task,
                    _without_zone(run.schedule, run.zone),
                    run.zone or "-",
                    run.source,
                ]
            )
            if run.stored:
                rows[-1][-1] += " (database)"
            if run.paused:
                rows[-1][-1] += f" (paused{': ' + run.note if run.note else ''})"
            row_style: list[Paint | None] = [None] * 7
            row_style[1] = self.style.WARNING if late else None
            row_style[6] = self.style.WARNING if run.paused else None
            styles.append(row_style)
        headers = ["WHEN", "DUE", "ENTRY / JOB", "TASK", "SCHEDULE", "ZONE", "SOURCE"]
        self.table(headers, rows, styles)
        if result.more:
            self.stdout.write(f"More runs follow; show them with --count {count * 5}.")

    def entries(self, report: EntriesReport, *, as_json: bool, now: datetime) -> None:
        """Every entry, then on stderr why the ledger could not be read and (in text) the
        problems."""
        if as_json:
            self.json(report.as_dict())
        else:
            self._entries_text(report, now)
        if report.ledger_error:
            self.stderr.write(report.ledger_error, self.style.WARNING)
        if not as_json:
            for problem in report.problems:
                self.stderr.write(f"{problem.id} {problem}")

    def _entries_text(self, report: EntriesReport, now: datetime) -> None:
        if not report.entries:
            self.stdout.write("No entries are declared.")
        for index, e in enumerate(report.entries):
            if index:
                self.stdout.write("")
            state = "" if e.enabled else self.style.WARNING(" (disabled)")
            if e.paused:
                state += self.style.WARNING(
                    f" (paused{': ' + e.pause_note if e.pause_note else ''})"
                )
            if e.overdue:
                state += self.style.ERROR(" (no success within alert_after)")
            self.stdout.write(self.style.MIGRATE_HEADING(e.name) + state)
            policies = f"misfire={e.misfire}"
            if e.misfire == "all":
                policies += f" (at most {e.misfire_limit})"
            if e.grace is not None:
                policies += f", grace={e.grace:g} s"
            policies += f", overlap={e.overlap}"
            if e.jitter:
                policies += f", jitter={e.jitter:g} s"
            if e.alert_after is not None:
                policies += f", alert_after={e.alert_after:g} s"
            if e.pause_after_failures is not None:
                policies += f", pause_after_failures={e.pause_after_failures}"
            outcome = e.last_outcome or "-"
            if e.last_outcome == "succeeded":
                outcome = self.style.SUCCESS(outcome)
            elif e.last_outcome in ("failed", "retrying"):
                outcome = self.style.ERROR(outcome)
            if e.last_run is not None:
                outcome += f", started {self.local(e.last_run, relative_to=now)}"
            for label, value in (
                ("task", e.task),
                ("schedule", e.expression),
                ("in English", e.description),
                ("zone", e.zone),
                ("policies", policies),
                ("enabled", "yes" if e.enabled else "no"),
                *(
                    [
                        (
                            "paused",
                            f"since {self.local(e.paused_since, relative_to=now)}"
                            + (
                                f", until {self.local(e.paused_until, relative_to=now)}"
                                if e.paused_until
                                else ""
                            )
                            + (f": {e.pause_note}" if e.pause_note else ""),
                        )
                    ]
                    if e.paused
                    else []
                ),
                ("last fire", self.local(e.last_fire, relative_to=now)),
                ("next fire", self.local(e.next_fire, relative_to=now)),
                ("last outcome", outcome),
                ("stored in", "the database")
                if e.origin == "database"
                else ("declared in", e.module),
            ):
                self.stdout.write(f"  {label:<13}{value}")

    def paused(self, name: str, state: EntryPause) -> None:
        until = "" if state.until is None else f" until {self.local(utc(state.until))}"
        note = f" ({state.note})" if state.note else ""
        self.success(
            f"Paused entry {name!r}{until}{note}: no beat enqueues its fires; "
            "`spoolcron resume` resumes it."
        )

    def resumed(self, name: str, was: EntryPause | None, *, catch_up: bool) -> None:
        if was is None:
            self.stdout.write(f"Entry {name!r} was not paused; nothing to resume.")
            return
        missed = (
            "the fires it missed run by its misfire policy"
            if catch_up
            else "the fires it missed are skipped"
        )
        self.success(f"Resumed entry {name!r}: {missed}.")

    def backfilled(
        self, report: BackfillReport, *, as_json: bool, start: datetime, end: datetime
    ) -> None:
        if as_json:
            self.json(report.as_dict())
            return
        verb = "Would enqueue" if report.dry_run else "Enqueued"
        forced = f", {report.forced} of them already claimed (--force)" if report.forced else ""
        skipped = report.claimed - report.forced
        left = f"; {skipped} already claimed, left out" if skipped else ""
        due = ""
        if report.first_due is not None:
            due = f", due from {self.local(report.first_due)} to {self.local(report.last_due)}"
        self.success(
            f"{verb} {report.enqueued} of the {report.fires} fire(s) of entry "
            f"{report.entry!r} from {self.local(start)} to {self.local(end)}{forced}{due}{left}."
        )

    def jobs(self, jobs: Sequence[PendingJob], *, as_json: bool, now: datetime) -> None:
        """The pending jobs, soonest first, with how far off they are from ``now``."""
        if as_json:
            self.json({"jobs": [job.as_dict() for job in jobs]})
            return
        if not jobs:
            self.stdout.write("No job is waiting in the spool directory or the pending store.")
            return
        self.table(
            ["ID", "TASK", "DUE", "", "STATUS", "PLACE", "ATTEMPT", "ENTRY"],
            [
                [
                    j.id,
                    j.task,
                    self.local(j.due),
                    relative((j.due - now).total_seconds()),
                    j.status,
                    j.place,
                    str(j.attempt),
                    j.entry or "-",
                ]
                for j in jobs
            ],
        )

    def failed_jobs(self, failed: Sequence[FailedJob], *, as_json: bool) -> None:
        """The failed directory's files and why, most recently failed first."""
        if as_json:
            self.json({"failed": [job.as_dict() for job in failed]})
            return
        if not failed:
            self.stdout.write("No job is in the failed directory.")
            return
        self.table(
            ["ID", "TASK", "FAILED", "ATTEMPT", "REASON"],
            [
                [
                    f.id or f.path.name,
                    f.task or "-",
                    self.local(f.failed_at),
                    "-" if f.attempt is None else str(f.attempt),
                    f.reason + (f" {f.error}" if f.error else ""),
                ]
                for f in failed
            ],
        )

    def deleted(self, key: str, paths: Sequence[Path]) -> None:
        """What ``delete`` removed from the failed directory."""
        count = len(paths)
        self.success(
            f"Deleted {count} failed file{'s' if count > 1 else ''} of {key!r} "
            f"and {'their reasons' if count > 1 else 'its reason'}: "
            + ", ".join(path.name for path in paths)
            + "."
        )

    def purged(self, paths: Sequence[Path], *, older_than: datetime | None, as_json: bool) -> None:
        """What ``purge --failed`` removed from the failed directory, oldest first."""
        if as_json:
            self.json(
                {
                    "deleted": [str(path) for path in paths],
                    "older_than": None if older_than is None else older_than.isoformat(),
                }
            )
            return
        before = "" if older_than is None else f" that failed before {self.local(older_than)}"
        if not paths:
            self.stdout.write(f"No file{before} is in the failed directory.")
            return
        count = len(paths)
        self.success(
            f"Deleted {count} failed file{'s' if count > 1 else ''}{before}, with their reasons."
        )

    def run_due(self, results: Sequence[Result], *, as_json: bool) -> None:
        """What ``run-due`` ran: one row per job, its outcome coloured."""
        if as_json:
            self.json({"results": [result_dict(r) for r in results]})
            return
        if not results:
            self.stdout.write("No job was due.")
            return
        paint = {
            Outcome.SUCCEEDED: self.style.SUCCESS,
            Outcome.SKIPPED: self.style.WARNING,
            Outcome.RETRYING: self.style.WARNING,
        }
        rows, styles = [], []
        for result in results:
            # The first line and the exception, not "Traceback (most recent call last):".
            detail = reason_line(result.reason) if result.reason.strip() else ""
            payload = result.payload
            rows.append(
                [
                    result.outcome.value,
                    payload.job_id if payload else "-",
                    payload.task if payload else "-",
                    (payload.entry or "-") if payload else "-",
                    detail,
                ]
            )
            style = paint.get(result.outcome, self.style.ERROR)
            styles.append([style, None, None, None, None])
        self.table(["OUTCOME", "JOB", "TASK", "ENTRY", "DETAIL"], rows, styles)

    def health(self, report: HealthReport, *, as_json: bool, max_overdue: float) -> None:
        """The verdict and the numbers behind it."""
        if as_json:
            self.json(report.as_dict())
            return
        numbers = report.numbers
        verdict = self.style.SUCCESS("healthy") if report.healthy else self.style.ERROR("unhealthy")
        pids = ", ".join(str(p) for p in numbers["spooler_pids"])
        spooler = f"attached (pid {pids})" if numbers["spooler_attached"] else "not attached"
        failed = str(numbers["failed"])
        if numbers["failed_since_seconds"] is not None:
            window = relative(numbers["failed_since_seconds"]).removeprefix("in ")
            failed += f" ({numbers['failed_recent']} in the last {window})"
        pending = str(numbers["pending"])
        queues = numbers.get("queues", {})
        if len(queues) > 1:
            # Where the spooled ones wait, when there is more than the default queue.
            pending += " (" + ", ".join(f"{q['pending']} in {n}" for n, q in queues.items()) + ")"
        for label, value in (
            ("status", verdict),
            ("spooler", spooler),
            ("pending", pending),
            ("overdue", f"{numbers['overdue']} (by more than {max_overdue:g} s)"),
            ("failed", failed),
            ("spool dir", numbers["spool_dir"]),
            ("failed dir", numbers["failed_dir"]),
        ):
            self.stdout.write(f"{label:<11}{value}")
