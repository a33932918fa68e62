"""A full or read-only spool directory: ``schedule()`` raises one clear sentence and leaves
nothing behind, the beat logs and retries, and no half-written spool file ever runs."""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import spoolcron
from spoolcron.core.payload import Payload
from spoolcron.exceptions import SpoolWriteError
from spoolcron.spool import files
from spoolcron.spool.payloads import write_payload
from tests.conftest import Runs
from tests.integration.conftest import RunUwsgi
from tests.integration.harness import wait_until
from tests.integration.project import Database
from tests.integration.test_beat_uwsgi import succeeded
from tests.testapp import tasks

from .disk import SmallDisk, small_disk
from .support import Dirs, assert_fires_once, start

pytestmark = pytest.mark.django_db(transaction=True)

JOB_ID = r"'[0-9a-f]{32}'"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(tmp_path / "disk") as mounted:
        yield mounted


@pytest.fixture
def disk_dirs(disk: SmallDisk, tmp_path: Path, settings: Any) -> Dirs:
    spool = files.ensure_dir(disk.path / "spool")
    failed = tmp_path / "failed"  # elsewhere: a full spool disk must not stop quarantines
    settings.SPOOLCRON = {"SPOOL_DIR": str(spool), "FAILED_DIR": str(failed)}
    return Dirs(spool, failed)


def sentence(spool: Path, reason: str) -> str:
    where = re.escape(repr(str(spool)))
    return rf"Cannot write the spool file for job {JOB_ID} in {where}: {reason}\."


def leftovers(spool: Path) -> list[str]:
    return sorted(os.listdir(spool))


def test_schedule_on_a_full_disk(disk: SmallDisk, disk_dirs: Dirs) -> None:
    disk.fill()
    with pytest.raises(SpoolWriteError) as info:
        tasks.record.schedule(["no-room"])
    assert re.fullmatch(sentence(disk_dirs.spool, "No space left on device"), str(info.value))
    assert isinstance(info.value, OSError)
    assert info.value.errno == errno.ENOSPC
    assert isinstance(info.value, spoolcron.SpoolcronError)
    assert leftovers(disk_dirs.spool) == []  # no temporary file, no spool file
    disk.free()
    job = tasks.record.schedule(["room-again"])
    assert job.status == "pending"


def test_schedule_on_a_read_only_disk(disk: SmallDisk, disk_dirs: Dirs) -> None:
    """Not writable. The tests run as root, which ignores permission bits, so a read-only
    mount stands for it; a PermissionError takes the same path (next test)."""
    disk.read_only(True)
    try:
        with pytest.raises(SpoolWriteError) as info:
            tasks.record.schedule(["read-only"])
    finally:
        disk.read_only(False)
    assert re.fullmatch(sentence(disk_dirs.spool, "Read-only file system"), str(info.value))
    assert info.value.errno == errno.EROFS
    assert leftovers(disk_dirs.spool) == []


def test_permission_denied_is_the_same_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(*args: object, **kwargs: object) -> Path:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "x"))

    monkeypatch.setattr(files, "write", denied)
    payload = Payload(task="tests.testapp.tasks.record", job_id="job-1", run_after=0)
    with pytest.raises(SpoolWriteError) as info:
        write_payload(tmp_path, payload)
    assert str(info.value) == (
        f"Cannot write the spool file for job 'job-1' in {str(tmp_path)!r}: Permission denied."
    )


@pytest.mark.uwsgi
def test_beat_on_a_full_disk_logs_retries_and_catches_up(
    disk: SmallDisk, disk_dirs: Dirs, run_uwsgi: RunUwsgi, runs: Runs, project_db: Database
) -> None:
    """The spool directory fills up under a running uWSGI: the beat logs, claims nothing it
    could not write (the claim rolls back) and retries; jobs already queued still run; once
    there is room again the missed fires are coalesced and the schedule goes on."""
    uwsgi = start(run_uwsgi, disk_dirs, runs, project_db, ["every_second"])
    uwsgi.wait_until(lambda: len(succeeded(project_db, "every-second")) >= 2, 20, "two fires")
    queued = tasks.record.schedule(["queued-before"], run_after=2)
    with disk.kept_full():
        full = time.time()
        uwsgi.wait_for_log(r"ERROR spoolcron\.beat beat could not enqueue entry=", 10)
        uwsgi.wait_until(lambda: "queued-before" in runs.labels("record"), 15, "the queued job")
        wait_until(lambda: time.time() > full + 7, 10, message="a fill past the lateness limit")
    freed = time.time()
    uwsgi.wait_for_log(r"beat enqueues again entry=\S+ failed_attempts=\d+", 15)
    uwsgi.wait_until(
        lambda: len({r.due for r in succeeded(project_db, "every-second") if r.due > freed}) >= 3,
        20,
        "three fires after the disk has room again",
    )
    uwsgi.stop()

    log = uwsgi.log()
    assert re.search(
        sentence(disk_dirs.spool, "No space left on device").replace(JOB_ID, r"'[^']+'"), log
    )
    assert re.search(r"missed fires entry=every-second .*policy=coalesce .*enqueued=1$", log, re.M)
    # A claim whose file could not be written rolled back: every fire claimed ran once.
    assert_fires_once(project_db, runs, "every-second", at_least=5)
    assert queued.status == "missing"
    assert [n for n in leftovers(disk_dirs.spool) if n.startswith(".spoolcron-tmp-")] == []
    assert disk_dirs.quarantined() == []
