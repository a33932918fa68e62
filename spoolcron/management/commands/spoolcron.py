"""``manage.py spoolcron SUBCOMMAND``: thin over spoolcron.upcoming and spoolcron.operations.

Each subcommand parses its arguments (declared in ``spoolcron.management.arguments``), calls
one library function and prints the answer with ``spoolcron.management.formatting`` (a table,
or JSON with ``--json``). Bad arguments are one line on stderr and exit status 2.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.management.color import no_style

from spoolcron import operations
from spoolcron.core.times import now as current_time
from spoolcron.exceptions import BadWhen, JobNotFound, JobRunning, UnknownEntry, UnknownTask
from spoolcron.jobs import publisher
from spoolcron.management.arguments import EXAMPLES, HelpFormatter, Parser, add_subcommands
from spoolcron.management.formatting import Output
from spoolcron.operations import parse_when, upcoming
from spoolcron.runtime.dispatch import Outcome
from spoolcron.runtime.runner import run_due
from spoolcron.storage.recorder import DatabaseRecorder

FAILED_OUTCOMES = {Outcome.FAILED, Outcome.RETRYING, Outcome.QUARANTINED}


def _when(text: str | None, option: str, now: datetime) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_when(text, now=now, option=option)
    except BadWhen as exc:
        raise CommandError(str(exc), returncode=2) from None


class Command(BaseCommand):
    help = (
        "What spoolcron will run next, and the operations on its entries and jobs.\n"
        "Works without uWSGI: it reads the schedules modules, the spool directory and\n"
        "the ledger in the database."
    )
    # The subcommands report entry problems themselves (`entries` lists them); a system
    # check error must not stop `health` or `jobs` from answering.
    requires_system_checks: list[str] = []
    out: Output

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("epilog", EXAMPLES)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django builds a CommandParser; ours differs only in error(), so swap the class
        # rather than copy create_parser().
        parser.__class__ = Parser
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        add_subcommands(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if not options.get("force_color") and not self.stdout.isatty():
            self.style = no_style()  # colour only on a terminal, whatever sys.stdout is
        self.out = Output(self.stdout, self.stderr, self.style)
        action = options["action"]
        handler = getattr(self, "_" + action.replace("-", "_"))
        try:
            handler(options)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc

    # --- subcommands ----------------------------------------------------------------------

    def _upcoming(self, options: dict[str, Any]) -> None:
        now = current_time()
        until = _when(options["until"], "--until", now)
        try:
            result, problems = upcoming(
                count=options["count"], until=until, entry=options["entry"], now=now
            )
        except UnknownEntry as exc:
            raise CommandError(str(exc), returncode=2) from None
        self.out.upcoming(result, problems, as_json=options["json"], count=options["count"])

    def _entries(self, options: dict[str, Any]) -> None:
        now = current_time()
        report = operations.list_entries(now=now)
        self.out.entries(report, as_json=options["json"], now=now)
        if report.problems:
            count = len(report.problems)
            raise CommandError(
                f"{count} problem{'s' if count > 1 else ''} with the entries; "
                "`manage.py check` reports them too."
            )

    def _jobs(self, options: dict[str, Any]) -> None:
        if options["failed"]:
            self.out.failed_jobs(operations.failed_jobs(), as_json=options["json"])
        else:
            jobs = operations.pending()
            self.out.jobs(jobs, as_json=options["json"], now=current_time())

    def _cancel(self, options: dict[str, Any]) -> None:
        try:
            job = operations.cancel_job(options["job_id"])
        except (JobNotFound, JobRunning) as exc:
            raise CommandError(str(exc)) from None
        self.out.success(
            f"Cancelled job {job.id!r} (task {job.task}, due {self.out.local(job.run_after)})."
        )

    def _retry(self, options: dict[str, Any]) -> None:
        try:
            job = operations.retry_job(options["job_id"])
        except (JobNotFound, UnknownTask) as exc:
            raise CommandError(str(exc)) from None
        self.out.success(
            f"Job {job.id!r} (task {job.task}) is back in the spool directory, due now."
        )

    def _run(self, options: dict[str, Any]) -> None:
        try:
            job = operations.run_entry(options["entry"])
        except UnknownEntry as exc:
            raise CommandError(str(exc), returncode=2) from None
        self.out.success(
            f"Enqueued job {job.id!r} running entry {options['entry']!r} (task {job.task}) now."
        )

    def _run_due(self, options: dict[str, Any]) -> None:
        until = _when(options["until"], "--until", current_time())
        results = run_due(
            DatabaseRecorder(), publisher(), until=None if until is None else until.timestamp()
        )
        self.out.run_due(results, as_json=options["json"])
        failed = [r for r in results if r.outcome in FAILED_OUTCOMES]
        if failed:
            raise CommandError(f"{len(failed)} of {len(results)} job(s) failed.")

    def _health(self, options: dict[str, Any]) -> None:
        report = operations.health_report(max_overdue=options["max_overdue"])
        self.out.health(report, as_json=options["json"], max_overdue=options["max_overdue"])
        if not report.healthy:
            raise CommandError("Unhealthy: " + " ".join(report.reasons))

    def _uwsgi_config(self, options: dict[str, Any]) -> None:
        self.stdout.write(
            operations.uwsgi_config(
                http=options["http"], socket=options["socket"], processes=options["processes"]
            ),
            ending="",
        )
