"""Bad input, each with the exact sentence it gets.

Covered elsewhere, with their exact messages: every malformed expression class
(tests/schedules/test_errors.py), bad entries as system checks -- invalid expression or zone,
unknown task, bad options, args JSON cannot carry, duplicate names, a module raising on
import (tests/test_entries.py), bad arguments and a naive datetime with USE_TZ
(tests/test_jobs.py), a planted file naming an unregistered function and a body that is not
JSON (tests/integration/test_jobs_uwsgi.py). Here: what a real uWSGI does with spool files
its own spooler would skip forever or delete without a word, a run_after in the past, the
enqueue-side limits, and broken schedules modules stopping a real uWSGI.
"""

from __future__ import annotations

import os
import pickle
import re
import signal
import struct
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import spoolcron
from spoolcron.core.payload import MAX_BODY_SIZE, Payload
from spoolcron.spool import codec, files
from tests.conftest import Runs
from tests.integration.conftest import RunUwsgi
from tests.integration.harness import wait_until
from tests.integration.project import Database
from tests.testapp import tasks

from .support import Dirs, env, mule_starts, options, start

pytestmark = pytest.mark.django_db(transaction=True)

PREFIX = codec.PREFIX


def raw(spool: Path, name: str, data: bytes) -> Path:
    """Plant a file the way another process could: written in place, not through spoolcron."""
    path = spool / f"{PREFIX}{name}"
    tmp = spool / f".planting-{name}"
    tmp.write_bytes(data)
    os.rename(tmp, path)
    return path


def header(size: int, modifier1: int = 17, modifier2: int = 0) -> bytes:
    return struct.pack("<BHB", modifier1, size, modifier2)


def pair(key: bytes, value: bytes) -> bytes:
    return struct.pack("<H", len(key)) + key + struct.pack("<H", len(value)) + value


class Unpickled:
    """Unpickling it creates a directory: proof that something unpickled it."""

    def __init__(self, proof: Path) -> None:
        self.proof = proof

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.proof),))


@pytest.mark.uwsgi
def test_spool_files_uwsgi_would_skip_or_delete_are_quarantined_unread(
    run_uwsgi: RunUwsgi, dirs: Dirs, runs: Runs, project_db: Database
) -> None:
    """Files planted in the spool directory: cut short, with a bad header, malformed
    arguments, a body over the limit, a pickle for uwsgidecorators naming no function of
    its. uWSGI alone would skip the first forever, delete the next ones unseen and read
    the huge one into memory; each is moved aside with its reason, nothing is imported or
    unpickled, the spooler lives on."""
    uwsgi = start(run_uwsgi, dirs, runs, project_db)
    # The test app's every-minute entry makes the spooler scan: keep clear of it.
    wait_until(lambda: 2 < time.time() % 60 < 35, 60, message="a quiet moment")
    proof = runs.directory / "unpickled"
    args = pair(b"task", b"x") + pair(b"spoolcron", b"1")
    huge = Payload(task="tests.faults.apps.canary.boom", job_id="huge", run_after=0)
    planted = {
        "short": raw(dirs.spool, "short", b"\x11\x05"),
        "cut": raw(dirs.spool, "cut", header(len(args)) + args[:9]),
        "modifier": raw(dirs.spool, "modifier", header(len(args), modifier1=99) + args),
        "empty-key": raw(dirs.spool, "empty-key", header(6) + pair(b"", b"ab")),
        "huge": files.write(
            dirs.spool,
            f"{PREFIX}huge",
            huge.spool_args(),
            b" " * (MAX_BODY_SIZE + 1),
        ),
        "pickle": files.write(
            dirs.spool,
            f"{PREFIX}pickle",
            {
                b"ud_spool_func": b"os.system",
                b"args": pickle.dumps((Unpickled(proof),)),
                b"kwargs": pickle.dumps({}),
            },
        ),
    }
    uwsgi.wait_until(
        lambda: len(dirs.quarantined()) == len(planted) or None, 20, "every file moved aside"
    )
    path = {k: str(p) for k, p in planted.items()}
    reasons = dict(zip([p.name for p in dirs.quarantined()], dirs.reasons(), strict=True))
    assert reasons == {
        f"{PREFIX}short": f"Spool file {path['short']!r} is corrupt: it is 2 bytes long, "
        "shorter than the 4-byte header.",
        f"{PREFIX}cut": f"Spool file {path['cut']!r} is corrupt: header says {len(args)} bytes "
        "of arguments but only 9 follow.",
        f"{PREFIX}modifier": f"Spool file {path['modifier']!r} is corrupt: header modifier1 is "
        "99, expected 17.",
        f"{PREFIX}empty-key": f"Spool file {path['empty-key']!r} is corrupt: the argument at "
        "offset 0 has an empty key.",
        f"{PREFIX}huge": f"Spool file {path['huge']!r} is too large: its body is "
        f"{MAX_BODY_SIZE + 1} bytes, over the {MAX_BODY_SIZE}-byte limit, so it was not read.",
        f"{PREFIX}pickle": f"Spool file {path['pickle']!r} is not a spoolcron file and names "
        "no function registered with uwsgidecorators' @spool (ud_spool_func='os.system'), "
        "so it was not unpickled.",
    }
    # The quarantined files are the very bytes planted.
    assert (dirs.failed / f"{PREFIX}short").read_bytes() == b"\x11\x05"
    assert dirs.pending() == []
    assert not proof.exists()
    assert not (runs.directory / "faults-canary-imported").exists()
    assert not (runs.directory / "faults-canary-ran").exists()
    assert "the spooler is no more" not in uwsgi.log()
    tasks.record.schedule(["after-the-bad-files"])
    uwsgi.wait_until(lambda: runs.labels() == ["after-the-bad-files"], 15, "the next job")


@pytest.mark.uwsgi
def test_run_after_in_the_past_runs_now(
    run_uwsgi: RunUwsgi, dirs: Dirs, runs: Runs, project_db: Database
) -> None:
    uwsgi = start(run_uwsgi, dirs, runs, project_db)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    enqueued = time.time()
    by_datetime = tasks.record.schedule(["past-datetime"], run_after=an_hour_ago)
    by_seconds = tasks.record.schedule(["past-seconds"], run_after=-3600)
    by_timedelta = tasks.record.schedule(["past-timedelta"], run_after=timedelta(days=-1))
    # --spooler-frequency is 60: a run within seconds was woken at once.
    uwsgi.wait_until(lambda: len(runs.all()) == 3, 10, "the three jobs")
    assert sorted(runs.labels()) == ["past-datetime", "past-seconds", "past-timedelta"]
    assert all(r["time"] - enqueued < 10 for r in runs.all())
    assert by_datetime.run_after == an_hour_ago.replace(microsecond=an_hour_ago.microsecond)
    assert by_seconds.run_after.timestamp() < enqueued - 3599
    assert by_timedelta.run_after.timestamp() < enqueued - 86399


BROKEN_MODULES = [
    pytest.param(
        "raises",
        "module tests.faults.apps.raises: importing it failed: RuntimeError: this schedules "
        "module is broken on purpose (spoolcron.E005)",
        id="module_raises_on_import",
    ),
    pytest.param(
        "duplicate",
        "entry 'twice' in tests.faults.apps.duplicate: the name 'twice' is already used by "
        "an entry in tests.faults.apps.duplicate. (spoolcron.E001)",
        id="duplicate_entry_names",
    ),
]


@pytest.mark.uwsgi
@pytest.mark.parametrize(("module", "line"), BROKEN_MODULES)
def test_a_broken_schedules_module_is_named_and_never_stops_uwsgi(
    run_uwsgi: RunUwsgi,
    dirs: Dirs,
    runs: Runs,
    project_db: Database,
    module: str,
    line: str,
) -> None:
    uwsgi = run_uwsgi(*options(dirs), env=env(dirs, runs, project_db, module))
    uwsgi.wait_for_log(r"spoolcron mule started", 20)
    # The mule repeats the problem in its first step, just after it says it started.
    uwsgi.wait_for_log(re.escape(f"ERROR spoolcron.uwsgi invalid entry, not run: {line}\n"), 10)
    log = uwsgi.log()
    assert f"CRITICAL spoolcron.uwsgi {line}\n" in log, log
    assert "stopping uWSGI" not in log
    assert uwsgi.running()
    # The web and the spooler go on: a job enqueued now runs.
    tasks.record.delay("still-serving")
    uwsgi.wait_until(lambda: runs.labels() == ["still-serving"] or None, 10, "the job to run")


def test_arguments_over_the_size_limit_are_refused_at_enqueue(dirs: Dirs) -> None:
    with pytest.raises(spoolcron.InvalidArguments) as info:
        tasks.record.schedule(["x" * MAX_BODY_SIZE])
    match = re.fullmatch(
        r"Cannot schedule task 'tests\.testapp\.tasks\.record': its arguments take (\d+) bytes "
        rf"as JSON; the limit is {MAX_BODY_SIZE} bytes, so pass a reference \(a database id, "
        r"a file path\) instead\.",
        str(info.value),
    )
    assert match, str(info.value)
    assert MAX_BODY_SIZE < int(match[1]) < MAX_BODY_SIZE + 1000
    assert dirs.pending() == []


def test_unknown_task_name_at_enqueue(dirs: Dirs) -> None:
    with pytest.raises(spoolcron.UnknownTask) as info:
        spoolcron.schedule("tests.faults.apps.canary.boom")
    assert str(info.value) == (
        "Unknown task 'tests.faults.apps.canary.boom': no function is registered under that "
        "name with @spoolcron.task (is its module imported, e.g. from an app's tasks.py?)."
    )
    assert dirs.pending() == []


@pytest.mark.uwsgi
def test_a_typo_deployed_by_a_reload_keeps_the_site_up(
    run_uwsgi: RunUwsgi, dirs: Dirs, runs: Runs, project_db: Database, tmp_path: Path
) -> None:
    """The way a typo reaches production: a schedules module edited, uWSGI reloaded (SIGHUP).
    Before, the mule stopped the whole uWSGI; now the web and the spooler go on, the beat runs
    the entries that are still valid, and the log names the broken one."""
    package = tmp_path / "deployed"
    package.mkdir()
    module = package / "typo_schedules.py"
    entry = 'Entry("{name}", "tests.testapp.tasks.record", "{when}", args=["{name}"])'
    source = "from spoolcron import Entry\n\nENTRIES = [\n    {}\n]\n"
    module.write_text(source.format(entry.format(name="hourly", when="every hour")))
    uwsgi = run_uwsgi(
        *options(dirs, f"--pythonpath={tmp_path}"),
        env={
            **env(dirs, runs, project_db),
            "SPOOLCRON_TEST_MODULES": "deployed.typo_schedules",
            "PYTHONDONTWRITEBYTECODE": "1",
        },
    )
    uwsgi.wait_for_log(r"beat started entries=\d+", 20)
    assert "CRITICAL" not in uwsgi.log()

    broken = entry.format(name="typo", when="every fortnight")
    module.write_text(
        source.format(entry.format(name="hourly", when="every hour") + ",\n    " + broken)
    )
    uwsgi.kill(signal.SIGHUP)
    uwsgi.wait_until(lambda: mule_starts(uwsgi) == 2 or None, 30, "the mule to start again")
    uwsgi.wait_for_log(r"CRITICAL spoolcron\.uwsgi entry 'typo' in deployed\.typo_schedules: ", 20)
    log = uwsgi.log()
    assert "stopping uWSGI" not in log
    assert uwsgi.running()
    tasks.record.delay("after-the-reload")
    uwsgi.wait_until(
        lambda: "after-the-reload" in runs.labels() or None, 15, "the spooler to run a job"
    )
