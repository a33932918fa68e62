"""``manage.py spoolcron SUBCOMMAND``: thin over spoolcron.upcoming and spoolcron.operations.

Each subcommand parses its arguments, calls one library function and formats the answer (a
table, or JSON with ``--json``). Bad arguments are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    DjangoHelpFormatter,
)
from django.core.management.color import no_style
from django.utils import timezone

from spoolcron import operations
from spoolcron.core.entries import Problem
from spoolcron.core.times import now as current_time
from spoolcron.exceptions import BadWhen, JobNotFound, JobRunning, UnknownEntry, UnknownTask
from spoolcron.jobs import publisher
from spoolcron.operations import parse_when, relative, upcoming
from spoolcron.runtime.dispatch import Outcome, Result
from spoolcron.runtime.runner import run_due
from spoolcron.storage.recorder import DatabaseRecorder

Style = Callable[[str], str]

EXAMPLES = """\
examples:
  %(prog)s upcoming                       the next 20 runs, periodic and one-off
  %(prog)s upcoming --until tomorrow --count 100
  %(prog)s entries                        every entry, its last and next fire
  %(prog)s jobs --failed                  jobs that failed their last attempt
  %(prog)s retry JOB_ID                   put a failed job back, due now
  %(prog)s health --max-overdue 120       exit status 1 when unhealthy
  %(prog)s uwsgi-config > uwsgi.ini       the uWSGI options this project needs

Every subcommand has --help.
"""

WHEN_HELP = (
    "an ISO date-time (2026-12-24T18:00, in TIME_ZONE unless it has an offset) or "
    "+90s, +15m, +2h, +3d, +1w, now, today (the coming midnight), tomorrow"
)
FAILED_OUTCOMES = {Outcome.FAILED, Outcome.RETRYING, Outcome.QUARANTINED}


class _Formatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, and descriptions and examples printed as written."""


class _Parser(CommandParser):
    """Bad arguments: one line on stderr and exit status 2, not argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
        raise CommandError(f"Error: {message}", returncode=2)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, not {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, not {text!r}")
    return value


def _problem_dict(problem: Problem) -> dict[str, Any]:
    return {
        "id": problem.id,
        "module": problem.module,
        "entry": problem.entry,
        "message": problem.message,
    }


def _without_zone(description: str, zone: str | None) -> str:
    # The table has a zone column: "every minute (UTC)" there reads "every minute".
    suffix = f" ({zone})"
    return description.removesuffix(suffix) if zone else description


def _iso(value: datetime | None) -> str | None:
    return None if value is None else timezone.localtime(value).isoformat()


class Command(BaseCommand):
    help = (
        "What spoolcron will run next, and the operations on its entries and jobs.\n"
        "Works without uWSGI: it reads the schedules modules, the spool directory and\n"
        "the ledger in the database."
    )
    # The subcommands report entry problems themselves (`entries` lists them); a system
    # check error must not stop `health` or `jobs` from answering.
    requires_system_checks: list[str] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", _Formatter)
        kwargs.setdefault("epilog", EXAMPLES)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django builds a CommandParser; ours differs only in error(), so swap the class
        # rather than copy create_parser().
        parser.__class__ = _Parser
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(
            dest="action",
            metavar="SUBCOMMAND",
            title="subcommands",
            required=True,
            parser_class=_Parser,
        )

        def add(name: str, summary: str, description: str) -> argparse.ArgumentParser:
            sub = subparsers.add_parser(
                name,
                help=summary,
                description=textwrap.fill(description, 79),
                formatter_class=_Formatter,
            )
            self._accept_base_options(sub)
            return sub

        sub = add(
            "upcoming",
            "the next runs of the periodic entries and the one-off jobs, in time order",
            "The next runs of every enabled periodic entry, merged in time order with the "
            "one-off jobs waiting in the spool directory. Times are in TIME_ZONE.",
        )
        sub.add_argument(
            "--count",
            type=_positive_int,
            default=20,
            metavar="N",
            help="how many runs to list (default: 20)",
        )
        sub.add_argument("--until", metavar="WHEN", help=f"list nothing later: {WHEN_HELP}")
        sub.add_argument("--entry", metavar="NAME", help="only this entry's runs")
        sub.add_argument("--json", action="store_true", help="print JSON instead of a table")

        sub = add(
            "entries",
            "every declared entry with its policies, last fire, next fire and last outcome",
            "Every entry the schedules modules declare, with what the ledger knows about it. "
            "Exits with status 1 if an entry has a problem (they are listed).",
        )
        sub.add_argument("--json", action="store_true", help="print JSON instead of text")

        sub = add(
            "jobs",
            "the jobs waiting in the spool directory, or the failed ones",
            "The jobs in the spool directory (one-off jobs, retries and periodic fires not "
            "yet run), or with --failed the files in the failed directory and why.",
        )
        sub.add_argument("--failed", action="store_true", help="list the failed directory instead")
        sub.add_argument("--json", action="store_true", help="print JSON instead of a table")

        sub = add(
            "cancel",
            "remove a pending job",
            "Remove a pending job from the spool directory. Exits with status 1 when no such "
            "job is pending or a spooler is running it.",
        )
        sub.add_argument("job_id", metavar="JOB_ID", help="the job's id (see `jobs`)")

        sub = add(
            "retry",
            "put a failed job back in the spool, due now",
            "Put a job from the failed directory back in the spool directory as attempt 1, "
            "due now, and remove its failed file and reason.",
        )
        sub.add_argument("job_id", metavar="JOB_ID", help="the job's id (see `jobs --failed`)")

        sub = add(
            "run",
            "enqueue one run of an entry now",
            "Enqueue one run of an entry now, as a one-off job with the entry's task and "
            "arguments (disabled entries too). The spooler runs it.",
        )
        sub.add_argument("entry", metavar="ENTRY", help="the entry's name (see `entries`)")

        sub = add(
            "run-due",
            "run the due jobs in this process, without uWSGI",
            "Run the jobs of the spool directory that are due, in this process and oldest "
            "first, as the spooler would: for development machines, test suites and CI. "
            "Exits with status 1 if a job failed.",
        )
        sub.add_argument(
            "--until", metavar="WHEN", help=f"also run jobs due by then, now: {WHEN_HELP}"
        )
        sub.add_argument("--json", action="store_true", help="print JSON instead of a table")

        sub = add(
            "health",
            "a verdict for monitoring probes; exit status 1 when unhealthy",
            "Pending, overdue and failed jobs and whether a spooler is attached. Unhealthy, "
            "with exit status 1, when no spooler is attached (no fresh heartbeat from the "
            "spoolcron mule), a job is overdue by more than --max-overdue seconds, or jobs "
            "are in the failed directory.",
        )
        sub.add_argument(
            "--max-overdue",
            type=_seconds,
            default=60.0,
            metavar="SECONDS",
            help="how late a job may be before it counts as overdue (default: 60)",
        )
        sub.add_argument("--json", action="store_true", help="print JSON instead of text")

        sub = add(
            "uwsgi-config",
            "print the uWSGI options this project needs, as an ini file",
            "Print the uWSGI options this project needs, each with a comment saying why: "
            "the spooler directory, the spoolcron imports, the mule, the settings module.",
        )
        listen = sub.add_mutually_exclusive_group()
        listen.add_argument(
            "--http",
            metavar="ADDRESS",
            default="127.0.0.1:8000",
            help="serve HTTP here with uWSGI's router (default: 127.0.0.1:8000)",
        )
        listen.add_argument(
            "--socket", metavar="ADDRESS", help="speak the uwsgi protocol here, behind nginx"
        )
        sub.add_argument(
            "--processes",
            type=_positive_int,
            default=4,
            metavar="N",
            help="web workers (default: 4)",
        )

    def _accept_base_options(self, parser: argparse.ArgumentParser) -> None:
        # `manage.py spoolcron upcoming --no-color` should work, not only
        # `manage.py spoolcron --no-color upcoming`: accept Django's options after the
        # subcommand too, hidden from its help, without overriding the values given before.
        hidden: dict[str, Any] = {"default": argparse.SUPPRESS, "help": argparse.SUPPRESS}
        parser.add_argument("-v", "--verbosity", type=int, choices=[0, 1, 2, 3], **hidden)
        parser.add_argument("--settings", **hidden)
        parser.add_argument("--pythonpath", **hidden)
        for flag in ("--traceback", "--no-color", "--force-color"):
            parser.add_argument(flag, action="store_true", **hidden)

    # --- dispatch -------------------------------------------------------------------------

    def handle(self, *args: Any, **options: Any) -> None:
        if not options.get("force_color") and not self.stdout.isatty():
            self.style = no_style()  # colour only on a terminal, whatever sys.stdout is
        action = options["action"]
        handler = getattr(self, "_" + action.replace("-", "_"))
        try:
            handler(options)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc

    # --- output helpers -------------------------------------------------------------------

    def _json(self, document: Any) -> None:
        self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))

    def _table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        styles: Sequence[Sequence[Style | None]] | None = None,
    ) -> None:
        widths = [len(h) for h in headers]
        for row in rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

        def line(cells: Sequence[str], paint: Sequence[Style | None]) -> str:
            parts = []
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
                text = cell if i == len(cells) - 1 else cell.ljust(width)
                style = paint[i]
                parts.append(style(text) if style else text)
            return "  ".join(parts).rstrip()

        self.stdout.write(line(headers, [self.style.MIGRATE_HEADING] * len(headers)))
        for index, row in enumerate(rows):
            self.stdout.write(line(row, styles[index] if styles else [None] * len(row)))

    def _local(self, value: datetime | None, *, relative_to: datetime | None = None) -> str:
        if value is None:
            return "-"
        text = timezone.localtime(value).strftime("%a %Y-%m-%d %H:%M:%S %Z")
        if relative_to is not None:
            text += f" ({relative((value - relative_to).total_seconds())})"
        return text

    def _warn_problems(self, problems: Sequence[Problem], what: str) -> None:
        for problem in problems:
            self.stderr.write(f"{problem.id} {problem} ({what})", self.style.WARNING)

    def _when(self, text: str | None, option: str, now: datetime) -> datetime | None:
        if text is None:
            return None
        try:
            return parse_when(text, now=now, option=option)
        except BadWhen as exc:
            raise CommandError(str(exc), returncode=2) from None

    # --- subcommands ----------------------------------------------------------------------

    def _upcoming(self, options: dict[str, Any]) -> None:
        now = current_time()
        until = self._when(options["until"], "--until", now)
        try:
            result, problems = upcoming(
                count=options["count"], until=until, entry=options["entry"], now=now
            )
        except UnknownEntry as exc:
            raise CommandError(str(exc), returncode=2) from None
        if options["json"]:
            self._json(
                {
                    "now": _iso(now),
                    "until": _iso(until),
                    "runs": [
                        {
                            "when": _iso(run.when),
                            "in_seconds": round((run.when - now).total_seconds(), 3),
                            "name": run.name,
                            "task": run.task,
                            "schedule": run.schedule,
                            "expression": run.expression,
                            "zone": run.zone,
                            "source": run.source,
                            "entry": run.entry,
                            "job_id": run.job_id,
                            "attempt": run.attempt,
                        }
                        for run in result.runs
                    ],
                    "more": result.more,
                    "problems": [_problem_dict(p) for p in problems],
                }
            )
            self._warn_problems(problems, "left out")
            return
        self._warn_problems(problems, "left out")
        if not result.runs:
            later = f" until {self._local(until)}" if until else ""
            self.stdout.write(f"Nothing is scheduled{later}.")
            return
        rows, styles = [], []
        for run in result.runs:
            late = run.when < now
            rows.append(
                [
                    self._local(run.when),
                    relative((run.when - now).total_seconds()),
                    run.name,
                    run.task,
                    _without_zone(run.schedule, run.zone),
                    run.zone or "-",
                    run.source,
                ]
            )
            row_style: list[Style | None] = [None] * 7
            row_style[1] = self.style.WARNING if late else None
            styles.append(row_style)
        headers = ["WHEN", "DUE", "ENTRY / JOB", "TASK", "SCHEDULE", "ZONE", "SOURCE"]
        self._table(headers, rows, styles)
        if result.more:
            self.stdout.write(f"More runs follow; show them with --count {options['count'] * 5}.")

    def _entries(self, options: dict[str, Any]) -> None:
        now = current_time()
        report = operations.list_entries(now=now)
        if options["json"]:
            self._json(
                {
                    "entries": [
                        {
                            "name": e.name,
                            "task": e.task,
                            "expression": e.expression,
                            "description": e.description,
                            "zone": e.zone,
                            "misfire": e.misfire,
                            "misfire_limit": e.misfire_limit,
                            "grace": e.grace,
                            "overlap": e.overlap,
                            "enabled": e.enabled,
                            "module": e.module,
                            "last_fire": _iso(e.last_fire),
                            "next_fire": _iso(e.next_fire),
                            "last_outcome": e.last_outcome,
                            "last_run": _iso(e.last_run),
                        }
                        for e in report.entries
                    ],
                    "problems": [_problem_dict(p) for p in report.problems],
                    "ledger_error": report.ledger_error,
                }
            )
        else:
            self._entries_text(report, now)
        if report.ledger_error:
            self.stderr.write(report.ledger_error, self.style.WARNING)
        if report.problems:
            if not options["json"]:
                for problem in report.problems:
                    self.stderr.write(f"{problem.id} {problem}")
            count = len(report.problems)
            raise CommandError(
                f"{count} problem{'s' if count > 1 else ''} with the entries; "
                "`manage.py check` reports them too."
            )

    def _entries_text(self, report: operations.EntriesReport, now: datetime) -> None:
        if not report.entries:
            self.stdout.write("No entries are declared.")
        for index, e in enumerate(report.entries):
            if index:
                self.stdout.write("")
            state = "" if e.enabled else self.style.WARNING(" (disabled)")
            self.stdout.write(self.style.MIGRATE_HEADING(e.name) + state)
            policies = f"misfire={e.misfire}"
            if e.misfire == "all":
                policies += f" (at most {e.misfire_limit})"
            if e.grace is not None:
                policies += f", grace={e.grace:g} s"
            policies += f", overlap={e.overlap}"
            outcome = e.last_outcome or "-"
            if e.last_outcome == "succeeded":
                outcome = self.style.SUCCESS(outcome)
            elif e.last_outcome in ("failed", "retrying"):
                outcome = self.style.ERROR(outcome)
            if e.last_run is not None:
                outcome += f", started {self._local(e.last_run, relative_to=now)}"
            for label, value in (
                ("task", e.task),
                ("schedule", e.expression),
                ("in English", e.description),
                ("zone", e.zone),
                ("policies", policies),
                ("enabled", "yes" if e.enabled else "no"),
                ("last fire", self._local(e.last_fire, relative_to=now)),
                ("next fire", self._local(e.next_fire, relative_to=now)),
                ("last outcome", outcome),
                ("declared in", e.module),
            ):
                self.stdout.write(f"  {label:<13}{value}")

    def _jobs(self, options: dict[str, Any]) -> None:
        if options["failed"]:
            self._failed_jobs(options)
            return
        jobs = operations.pending()
        if options["json"]:
            self._json(
                {
                    "jobs": [
                        {
                            "id": j.id,
                            "task": j.task,
                            "due": _iso(j.due),
                            "status": j.status,
                            "attempt": j.attempt,
                            "entry": j.entry,
                            "path": str(j.path),
                        }
                        for j in jobs
                    ]
                }
            )
            return
        if not jobs:
            self.stdout.write("No job is waiting in the spool directory.")
            return
        now = current_time()
        self._table(
            ["ID", "TASK", "DUE", "", "STATUS", "ATTEMPT", "ENTRY"],
            [
                [
                    j.id,
                    j.task,
                    self._local(j.due),
                    relative((j.due - now).total_seconds()),
                    j.status,
                    str(j.attempt),
                    j.entry or "-",
                ]
                for j in jobs
            ],
        )

    def _failed_jobs(self, options: dict[str, Any]) -> None:
        failed = operations.failed_jobs()
        if options["json"]:
            self._json(
                {
                    "failed": [
                        {
                            "id": f.id,
                            "task": f.task,
                            "attempt": f.attempt,
                            "entry": f.entry,
                            "failed_at": _iso(f.failed_at),
                            "reason": f.reason,
                            "error": f.error,
                            "path": str(f.path),
                        }
                        for f in failed
                    ]
                }
            )
            return
        if not failed:
            self.stdout.write("No job is in the failed directory.")
            return
        self._table(
            ["ID", "TASK", "FAILED", "ATTEMPT", "REASON"],
            [
                [
                    f.id or f.path.name,
                    f.task or "-",
                    self._local(f.failed_at),
                    "-" if f.attempt is None else str(f.attempt),
                    f.reason + (f" {f.error}" if f.error else ""),
                ]
                for f in failed
            ],
        )

    def _cancel(self, options: dict[str, Any]) -> None:
        try:
            job = operations.cancel_job(options["job_id"])
        except (JobNotFound, JobRunning) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Cancelled job {job.id!r} (task {job.task}, due {self._local(job.run_after)}).",
            self.style.SUCCESS,
        )

    def _retry(self, options: dict[str, Any]) -> None:
        try:
            job = operations.retry_job(options["job_id"])
        except (JobNotFound, UnknownTask) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Job {job.id!r} (task {job.task}) is back in the spool directory, due now.",
            self.style.SUCCESS,
        )

    def _run(self, options: dict[str, Any]) -> None:
        try:
            job = operations.run_entry(options["entry"])
        except UnknownEntry as exc:
            raise CommandError(str(exc), returncode=2) from None
        self.stdout.write(
            f"Enqueued job {job.id!r} running entry {options['entry']!r} (task {job.task}) now.",
            self.style.SUCCESS,
        )

    def _run_due(self, options: dict[str, Any]) -> None:
        now = current_time()
        until = self._when(options["until"], "--until", now)
        results = run_due(
            DatabaseRecorder(), publisher(), until=None if until is None else until.timestamp()
        )
        failed = [r for r in results if r.outcome in FAILED_OUTCOMES]
        if options["json"]:
            self._json({"results": [self._result_dict(r) for r in results]})
        elif not results:
            self.stdout.write("No job was due.")
        else:
            self._run_due_table(results)
        if failed:
            raise CommandError(f"{len(failed)} of {len(results)} job(s) failed.")

    @staticmethod
    def _result_dict(result: Result) -> dict[str, Any]:
        payload = result.payload
        return {
            "outcome": result.outcome.value,
            "job_id": payload.job_id if payload else None,
            "task": payload.task if payload else None,
            "entry": payload.entry if payload else None,
            "attempt": payload.attempt if payload else None,
            "reason": result.reason,
        }

    def _run_due_table(self, results: Sequence[Result]) -> None:
        paint = {
            Outcome.SUCCEEDED: self.style.SUCCESS,
            Outcome.SKIPPED: self.style.WARNING,
            Outcome.RETRYING: self.style.WARNING,
        }
        rows, styles = [], []
        for result in results:
            first_line = result.reason.strip().splitlines()[0] if result.reason.strip() else ""
            payload = result.payload
            rows.append(
                [
                    result.outcome.value,
                    payload.job_id if payload else "-",
                    payload.task if payload else "-",
                    (payload.entry or "-") if payload else "-",
                    first_line,
                ]
            )
            style = paint.get(result.outcome, self.style.ERROR)
            styles.append([style, None, None, None, None])
        self._table(["OUTCOME", "JOB", "TASK", "ENTRY", "DETAIL"], rows, styles)

    def _health(self, options: dict[str, Any]) -> None:
        report = operations.health_report(max_overdue=options["max_overdue"])
        numbers = report.numbers
        if options["json"]:
            self._json(report.as_dict())
        else:
            verdict = (
                self.style.SUCCESS("healthy") if report.healthy else self.style.ERROR("unhealthy")
            )
            pids = ", ".join(str(p) for p in numbers["spooler_pids"])
            spooler = f"attached (pid {pids})" if numbers["spooler_attached"] else "not attached"
            for label, value in (
                ("status", verdict),
                ("spooler", spooler),
                ("pending", str(numbers["pending"])),
                ("overdue", f"{numbers['overdue']} (by more than {options['max_overdue']:g} s)"),
                ("failed", str(numbers["failed"])),
                ("spool dir", numbers["spool_dir"]),
                ("failed dir", numbers["failed_dir"]),
            ):
                self.stdout.write(f"{label:<11}{value}")
        if not report.healthy:
            raise CommandError("Unhealthy: " + " ".join(report.reasons))

    def _uwsgi_config(self, options: dict[str, Any]) -> None:
        self.stdout.write(
            operations.uwsgi_config(
                http=options["http"], socket=options["socket"], processes=options["processes"]
            ),
            ending="",
        )
