"""The command line of ``manage.py spoolcron``: its subcommands, their options and help texts.

Bad arguments are one line on stderr and exit status 2, not argparse's usage block.
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Any, NoReturn

from django.core.management.base import CommandError, CommandParser, DjangoHelpFormatter

from .entry_arguments import add_entry_subcommands

__all__ = ["EXAMPLES", "HelpFormatter", "Parser", "add_subcommands"]

EXAMPLES = """\
examples:
  %(prog)s upcoming                       the next 20 runs, periodic and one-off
  %(prog)s upcoming --until tomorrow --count 100
  %(prog)s entries                        every entry, its last and next fire
  %(prog)s jobs --failed                  jobs that failed their last attempt
  %(prog)s retry JOB_ID                   put a failed job back, due now
  %(prog)s purge --failed --older-than 7d delete failed files older than a week
  %(prog)s pause nightly --note "INC-42" stop an entry's fires on every host
  %(prog)s resume nightly --catch-up      resume it, running missed fires by its policy
  %(prog)s backfill nightly --from 2026-03-01 --to 2026-03-07T23:59
  %(prog)s entry-add sync --task myapp.tasks.sync --schedule "every 10 minutes"
  %(prog)s health --max-overdue 120       exit status 1 when unhealthy
  %(prog)s uwsgi-config > uwsgi.ini       the uWSGI options this project needs
  %(prog)s worker                         run the beat and the jobs here, without uWSGI

Every subcommand has --help.
"""

WHEN_HELP = (
    "an ISO date-time (2026-12-24T18:00, in TIME_ZONE unless it has an offset) or "
    "+90s, +15m, +2h, +3d, +1w, now, today (the coming midnight), tomorrow"
)


class HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, and descriptions and examples printed as written."""


class Parser(CommandParser):
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


def _accept_base_options(parser: argparse.ArgumentParser) -> None:
    # `manage.py spoolcron upcoming --no-color` should work, not only
    # `manage.py spoolcron --no-color upcoming`: accept Django's options after the
    # subcommand too, hidden from its help, without overriding the values given before.
    hidden: dict[str, Any] = {"default": argparse.SUPPRESS, "help": argparse.SUPPRESS}
    parser.add_argument("-v", "--verbosity", type=int, choices=[0, 1, 2, 3], **hidden)
    parser.add_argument("--settings", **hidden)
    parser.add_argument("--pythonpath", **hidden)
    for flag in ("--traceback", "--no-color", "--force-color"):
        parser.add_argument(flag, action="store_true", **hidden)


def add_subcommands(parser: CommandParser) -> None:
    """Declare every subcommand on ``parser``; the chosen one is ``options["action"]``."""
    subparsers = parser.add_subparsers(
        dest="action",
        metavar="SUBCOMMAND",
        title="subcommands",
        required=True,
        parser_class=Parser,
    )

    def add(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        sub = subparsers.add_parser(
            name,
            help=summary,
            description=textwrap.fill(description, 79),
            formatter_class=HelpFormatter,
        )
        _accept_base_options(sub)
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
        "delete",
        "delete a failed job's files",
        "Delete a job's files from the failed directory, with their reasons: the job will "
        "not run again. JOB_ID may also be the name of an unreadable file as `jobs --failed` "
        "lists it. A pending job is not deleted: `cancel` removes it. Exits with status 1 "
        "when the failed directory has no such job.",
    )
    sub.add_argument("job_id", metavar="JOB_ID", help="the job's id (see `jobs --failed`)")

    sub = add(
        "purge",
        "delete the failed directory's files, or the older ones",
        "Delete the files of the failed directory, with their reasons: all of them, or with "
        "--older-than those that failed before then. The mule (and the worker) does this "
        'hourly for files older than SPOOLCRON["FAILED_DAYS"].',
    )
    sub.add_argument(
        "--failed",
        action="store_true",
        required=True,
        help="purge the failed directory (the only thing purge deletes)",
    )
    sub.add_argument(
        "--older-than",
        metavar="AGE",
        help="only files that failed before then: a duration (12h, 7d, 2w) or an ISO "
        "date-time (2026-12-24T18:00, in TIME_ZONE unless it has an offset)",
    )
    sub.add_argument("--json", action="store_true", help="print JSON instead of text")

    sub = add(
        "run",
        "enqueue one run of an entry now",
        "Enqueue one run of an entry now, as a one-off job with the entry's task and "
        "arguments (disabled entries too). The spooler runs it.",
    )
    sub.add_argument("entry", metavar="ENTRY", help="the entry's name (see `entries`)")

    sub = add(
        "pause",
        "pause an entry on every host: its fires are not enqueued",
        "Pause an entry: every beat on every host stops enqueueing its fires within a "
        "second, until `resume` (or --until). The note shows in `entries`, `upcoming` and "
        "the admin.",
    )
    sub.add_argument("entry", metavar="ENTRY", help="the entry's name (see `entries`)")
    sub.add_argument("--note", default="", metavar="TEXT", help="why it is paused")
    sub.add_argument("--until", metavar="WHEN", help=f"resume by itself then: {WHEN_HELP}")

    sub = add(
        "resume",
        "resume a paused entry, skipping or catching up the fires it missed",
        "Resume a paused entry on every host. With --from-now (the default) the fires "
        "missed while paused are skipped; with --catch-up the entry's misfire policy "
        "decides which of them run (coalesce: the latest, once).",
    )
    sub.add_argument("entry", metavar="ENTRY", help="the entry's name (see `entries`)")
    mode = sub.add_mutually_exclusive_group()
    mode.add_argument("--from-now", action="store_true", help="skip the missed fires (the default)")
    mode.add_argument(
        "--catch-up", action="store_true", help="run the missed fires by the misfire policy"
    )

    sub = add(
        "backfill",
        "enqueue an entry's past fires in a range, each once",
        "Enqueue each fire of an entry between --from and --to (both included) that the "
        "ledger has not claimed, each claimed like the beat's, so once across hosts; a "
        "second backfill of the range enqueues nothing. The jobs are due --spacing seconds "
        "apart from now, so a long range does not flood the spooler.",
    )
    sub.add_argument("entry", metavar="ENTRY", help="the entry's name (see `entries`)")
    sub.add_argument("--from", dest="start", required=True, metavar="WHEN", help=WHEN_HELP)
    sub.add_argument("--to", dest="end", required=True, metavar="WHEN", help=WHEN_HELP)
    sub.add_argument(
        "--dry-run", action="store_true", help="say what would be enqueued; enqueue nothing"
    )
    sub.add_argument(
        "--force",
        action="store_true",
        help="also re-run the fires already claimed (under a new job id)",
    )
    sub.add_argument(
        "--spacing",
        type=_seconds,
        default=0.02,
        metavar="SECONDS",
        help="seconds between two fires' due times (default: 0.02, 50 a second)",
    )
    sub.add_argument("--json", action="store_true", help="print JSON instead of text")

    add_entry_subcommands(add)

    sub = add(
        "run-due",
        "run the due jobs in this process, without uWSGI",
        "Run the jobs of the spool directory that are due, in this process and oldest "
        "first, as the spooler would: for development machines, test suites and CI. "
        "Exits with status 1 if a job failed.",
    )
    sub.add_argument("--until", metavar="WHEN", help=f"also run jobs due by then, now: {WHEN_HELP}")
    sub.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sub = add(
        "health",
        "a verdict for monitoring probes; exit status 1 when unhealthy",
        "Pending, overdue and failed jobs and whether a spooler is attached. Unhealthy, "
        "with exit status 1, when no spooler is attached (no fresh heartbeat from the "
        "spoolcron mule), a job is overdue by more than --max-overdue seconds, or jobs "
        "are in the failed directory (with --failed-since, jobs that failed that recently).",
    )
    sub.add_argument(
        "--max-overdue",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how late a job may be before it counts as overdue (default: 60)",
    )
    sub.add_argument(
        "--failed-since",
        metavar="DURATION",
        help="only jobs that failed this recently make it unhealthy: 30m, 12h, 1d or seconds "
        "(default: every job in the failed directory)",
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

    sub = add(
        "worker",
        "run the beat and the jobs in this process, without uWSGI (e.g. beside runserver)",
        "One foreground process doing what uWSGI's spooler and the spoolcron mule do: the "
        "beat (the same ledger claims, so it may run beside uWSGI hosts), the pending store, "
        "and the due jobs of the spool directory, one at a time, with the same retries and "
        "history. Ctrl-C or SIGTERM lets the running job finish, then stops; a second one "
        "aborts it (it runs again later: execution is at least once).",
    )
    sub.add_argument(
        "--once",
        action="store_true",
        help="run what is due now (the fires the beat owes included) and exit; exit status 1 "
        "if a job failed",
    )
    sub.add_argument(
        "--max-jobs",
        type=_positive_int,
        metavar="N",
        help="exit after running N jobs",
    )
    sub.add_argument(
        "--no-beat", action="store_true", help="run jobs only; leave the fires to other beats"
    )
    sub.add_argument(
        "--queue",
        default="default",
        metavar="NAME",
        help="run the jobs of this local queue (SPOOLCRON['QUEUES']; default: the default "
        "queue); start one worker per queue",
    )
    sub.add_argument(
        "--reload",
        action="store_true",
        help="restart when Python code changes (Django's autoreloader, as runserver; a "
        "restart interrupts the running job, which runs again)",
    )
