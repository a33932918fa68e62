"""``manage.py spoolcron SUBCOMMAND``: thin over spoolcron.upcoming and spoolcron.operations.

Each subcommand parses its arguments (declared in ``spoolcron.management.arguments``), calls
one library function and prints the answer with ``spoolcron.management.formatting`` (a table,
or JSON with ``--json``). Bad arguments are one line on stderr and exit status 2.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.management.color import no_style
from django.db import connections
from django.utils import autoreload, timezone

from spoolcron import operations
from spoolcron.conf import get_settings
from spoolcron.core.times import now as current_time
from spoolcron.core.times import utc
from spoolcron.exceptions import (
    BadWhen,
    InvalidArguments,
    JobNotFound,
    JobRunning,
    UnknownEntry,
    UnknownTask,
)
from spoolcron.jobs import publisher
from spoolcron.management.arguments import EXAMPLES, HelpFormatter, Parser, add_subcommands
from spoolcron.management.entry_commands import EntryCommands, operator
from spoolcron.management.formatting import Output
from spoolcron.operations import parse_age, parse_duration, parse_when, upcoming
from spoolcron.runtime.dispatch import Result
from spoolcron.runtime.runner import run_due
from spoolcron.storage.recorder import DatabaseRecorder


def _when(text: str | None, option: str, now: datetime) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_when(text, now=now, option=option)
    except BadWhen as exc:
        raise CommandError(str(exc), returncode=2) from None


def _past(text: str, option: str, now: datetime) -> datetime:
    """A backfill bound: a duration ago (7d), an ISO date-time, or a WHEN (now, +1h)."""
    if not text.strip().startswith("+"):
        try:
            return parse_age(text, now=now, option=option)
        except BadWhen:
            pass
    try:
        return parse_when(text, now=now, option=option)
    except BadWhen:
        raise CommandError(
            f"Cannot understand {option} {text!r}: use a duration ago like 12h or 7d, an ISO "
            "date-time like 2026-03-01T00:00, or now.",
            returncode=2,
        ) from None


class Command(EntryCommands, BaseCommand):
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

    def _delete(self, options: dict[str, Any]) -> None:
        try:
            paths = operations.delete_job(options["job_id"])
        except JobNotFound as exc:
            raise CommandError(str(exc)) from None
        self.out.deleted(options["job_id"], paths)

    def _purge(self, options: dict[str, Any]) -> None:
        older_than = None
        if options["older_than"] is not None:
            try:
                older_than = parse_age(options["older_than"], now=current_time())
            except BadWhen as exc:
                raise CommandError(str(exc), returncode=2) from None
        paths = operations.purge_failed(older_than=older_than)
        self.out.purged(paths, older_than=older_than, as_json=options["json"])

    def _run(self, options: dict[str, Any]) -> None:
        try:
            job = operations.run_entry(options["entry"])
        except UnknownEntry as exc:
            raise CommandError(str(exc), returncode=2) from None
        self.out.success(
            f"Enqueued job {job.id!r} running entry {options['entry']!r} (task {job.task}) now."
        )

    def _pause(self, options: dict[str, Any]) -> None:
        now = current_time()
        until = _when(options["until"], "--until", now)
        try:
            state = operations.pause_entry(
                options["entry"], note=options["note"], until=until, by=operator()
            )
        except UnknownEntry as exc:
            raise CommandError(str(exc), returncode=2) from None
        except InvalidArguments as exc:
            raise CommandError(str(exc), returncode=2) from None
        self.out.paused(options["entry"], state)

    def _resume(self, options: dict[str, Any]) -> None:
        try:
            was = operations.resume_entry(
                options["entry"], catch_up=options["catch_up"], by=operator()
            )
        except UnknownEntry as exc:
            raise CommandError(str(exc), returncode=2) from None
        self.out.resumed(options["entry"], was, catch_up=options["catch_up"])

    def _backfill(self, options: dict[str, Any]) -> None:
        now = current_time()
        start = _past(options["start"], "--from", now)
        end = _past(options["end"], "--to", now)
        try:
            report = operations.backfill(
                options["entry"],
                start,
                end,
                dry_run=options["dry_run"],
                force=options["force"],
                spacing=options["spacing"],
                now=now.timestamp(),
            )
        except UnknownEntry as exc:
            raise CommandError(str(exc), returncode=2) from None
        except InvalidArguments as exc:
            raise CommandError(str(exc), returncode=2) from None
        self.out.backfilled(report, as_json=options["json"], start=start, end=end)

    def _run_due(self, options: dict[str, Any]) -> None:
        until = _when(options["until"], "--until", current_time())
        results = run_due(
            DatabaseRecorder(), publisher(), until=None if until is None else until.timestamp()
        )
        self.out.run_due(results, as_json=options["json"])
        failed = [r for r in results if r.outcome.is_failure]
        if failed:
            raise CommandError(f"{len(failed)} of {len(results)} job(s) failed.")

    def _health(self, options: dict[str, Any]) -> None:
        failed_since = None
        if options["failed_since"] is not None:
            try:
                failed_since = parse_duration(options["failed_since"], option="--failed-since")
            except BadWhen as exc:
                raise CommandError(str(exc), returncode=2) from None
        report = operations.health_report(
            max_overdue=options["max_overdue"], failed_since=failed_since
        )
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

    def _worker(self, options: dict[str, Any]) -> None:
        from spoolcron.runtime.worker import stop_on_signals

        stop = threading.Event()
        with stop_on_signals(stop.set, notice=self.stderr.write):
            try:
                if options["reload"]:
                    autoreload.run_with_reloader(self._reloaded_worker, options, stop)
                else:
                    self._run_worker(options, stop)
            except KeyboardInterrupt:
                raise CommandError(
                    "Aborted: the running job was interrupted; it runs again later.",
                    returncode=130,
                ) from None

    def _reloaded_worker(self, options: dict[str, Any], stop: threading.Event) -> None:
        # Runs in the autoreloader's thread; its main thread never returns by itself.
        code = 0
        try:
            self._run_worker(options, stop)
        except CommandError as exc:
            self.stderr.write(f"CommandError: {exc}")
            code = exc.returncode
        finally:
            self.stdout.flush()
            self.stderr.flush()
            os._exit(code)

    def _run_worker(self, options: dict[str, Any], stop: threading.Event) -> None:
        from spoolcron.core.entries import collect
        from spoolcron.core.payload import MAX_BODY_SIZE
        from spoolcron.queues import queue_dirs
        from spoolcron.runtime.worker import Worker
        from spoolcron.spool import files
        from spoolcron.spool.payloads import SpoolFireWriter
        from spoolcron.storage.entries import DatabaseEntrySource
        from spoolcron.storage.ledger import DatabaseLedger

        conf = get_settings()
        queue = conf.queues.get(options["queue"])
        if queue is None or queue.spool_dir is None:
            local = [q.name for q in conf.local_queues]
            raise CommandError(
                f"Unknown local queue {options['queue']!r}; SPOOLCRON['QUEUES'] has "
                f"{', '.join(map(repr, local))} here."
            )
        spool_dir = queue.spool_dir
        files.ensure_dir(spool_dir)
        self.check(tags=["spoolcron"])
        entries, invalid = collect()
        ledger = DatabaseLedger()
        worker = Worker(
            entries,
            ledger,
            SpoolFireWriter(conf.spool_dir, fsync=conf.fsync, dirs=queue_dirs(conf)),
            DatabaseRecorder(),
            publisher(),
            spool_dir=spool_dir,
            failed_dir=conf.failed_dir,
            max_body=MAX_BODY_SIZE,
            beat=not options["no_beat"],
            max_jobs=options["max_jobs"],
            on_result=self._worker_result,
            prune=lambda: operations.prune(ledger),
            refresh=_close_unusable_connections,
            stop_event=stop,
            source=DatabaseEntrySource(entries, [p.entry for p in invalid if p.entry]),
        )
        if options["once"]:
            report = worker.run_once()
        else:
            self.stdout.write(
                f"spoolcron worker pid {os.getpid()}: queue {queue.name!r}, spool dir "
                f"{spool_dir}, "
                f"beat {'off' if options['no_beat'] else 'on'} ({len(worker.entries)} entries). "
                "Ctrl-C stops it after the running job."
            )
            report = worker.run()
        self.stdout.write(f"Ran {len(report.results)} job(s); stopped: {report.stopped_by}.")
        if options["once"] and report.failed:
            raise CommandError(f"{len(report.failed)} of {len(report.results)} job(s) failed.")

    def _worker_result(self, result: Result) -> None:
        payload = result.payload
        if payload is None:
            what = result.reason.splitlines()[0] if result.reason else ""
        else:
            due = timezone.localtime(utc(payload.run_after)).strftime("%H:%M:%S.%f")[:-3]
            entry = f" entry={payload.entry}" if payload.entry else ""
            what = f"{payload.task} job={payload.job_id}{entry} due={due}"
        self.stdout.write(
            f"{result.outcome.value} {what}",
            self.style.ERROR if result.outcome.is_failure else None,
        )


def _close_unusable_connections() -> None:
    for connection in connections.all():
        connection.close_if_unusable_or_obsolete()
