"""The guards the fault tests rely on, in a plain process: the waker moving aside files uWSGI
would skip or delete, the spooler's start counter, and the beat's behaviour while the
database or the disk refuses every fire."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from spoolcron.core.beat import Beat
from spoolcron.spool import codec, files, starts
from spoolcron.spool.payloads import SpoolFireWriter
from spoolcron.spool.waker import Waker
from tests.helpers import Clock, MemoryLedger, resolved_entry

from .test_clock import T0


def test_waker_moves_aside_what_uwsgi_would_delete_and_holds_wakes_meanwhile(
    tmp_path: Path,
) -> None:
    spool = files.ensure_dir(tmp_path / "spool")
    failed = tmp_path / "failed"
    wakes: list[float] = []
    waker = Waker(spool, lambda: wakes.append(time.time()), failed_dir=failed, max_body=100)
    good = files.write(spool, f"{codec.PREFIX}good", {b"a": b"b"}, at=time.time() - 1)
    cut = spool / f"{codec.PREFIX}cut"
    cut.write_bytes(b"\x11\x10\x00\x00ab")  # just written: it may still be being written
    waker.step()
    assert wakes == []  # the good file waits until the cut one is settled
    assert cut.exists()
    deadline = time.monotonic() + 5
    while cut.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
        waker.step()
    assert not cut.exists()
    assert [p.name for p in files.list_quarantined(failed)] == [cut.name]
    assert waker.quarantined == 1
    waker.step()
    assert len(wakes) == 1  # now the spooler is woken, for the good file
    assert good.exists()


def test_waker_gives_up_holding_wakes_for_a_file_that_stays_locked(tmp_path: Path) -> None:
    spool = files.ensure_dir(tmp_path / "spool")
    wakes: list[int] = []
    waker = Waker(
        spool, lambda: wakes.append(1), failed_dir=tmp_path / "f", max_body=100, hold_wakes=0.2
    )
    files.write(spool, f"{codec.PREFIX}good", {b"a": b"b"}, at=time.time() - 1)
    stuck = spool / f"{codec.PREFIX}stuck"
    stuck.write_bytes(b"")
    fd = os.open(stuck, os.O_RDWR)
    try:
        import fcntl

        if os.fork() == 0:  # a writer holding its lock, as uwsgi.spool() does while writing
            fcntl.lockf(os.open(stuck, os.O_RDWR), fcntl.LOCK_EX)
            time.sleep(3)
            os._exit(0)
        deadline = time.monotonic() + 5
        while not wakes and time.monotonic() < deadline:
            time.sleep(0.02)
            waker.step()
        assert wakes  # woken for the good file after hold_wakes
        assert stuck.exists()  # a locked file is never moved
    finally:
        os.close(fd)
        os.wait()


def test_spooler_start_counter(tmp_path: Path) -> None:
    path = tmp_path / f"{codec.PREFIX}x"
    assert [starts.record_start(path) for _ in range(3)] == [0, 1, 2]
    starts.clear_starts(path)
    assert starts.record_start(path) == 0
    starts.clear_starts(path)
    starts.clear_starts(path)  # nothing to clear: fine
    assert os.listdir(tmp_path / starts.STARTS_DIR) == []


def test_make_private(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    directory.mkdir(mode=0o750)
    os.chmod(directory, 0o750)
    assert files.make_private(directory) == 0o750
    assert files.make_private(directory) is None
    assert oct(directory.stat().st_mode & 0o777) == oct(0o700)


def test_beat_tries_once_a_second_whatever_the_entries_and_logs_sparingly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(T0)
    ledger = MemoryLedger()
    ledger.error = ConnectionError("could not connect to server: Connection refused")
    entries = [resolved_entry(f"e{i}", "every second") for i in range(50)]
    b = Beat(entries, ledger, SpoolFireWriter(tmp_path), clock=clock, log_every=30.0)
    b.start()
    caplog.set_level(logging.INFO, logger="spoolcron.beat")
    for step in range(1, 241):  # a minute down, ticking every quarter second
        clock.now = T0 + step * 0.25
        b.tick()
    # One attempt per retry (a second), not one per entry.
    assert ledger.attempts == 60
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    still = [r.getMessage() for r in caplog.records if "still cannot enqueue" in r.getMessage()]
    assert len(still) == 1
    assert "failed_attempts=" in still[0]
    assert still[0].endswith(
        "error=ConnectionError: could not connect to server: Connection refused"
    )
    ledger.error = None
    clock.now += 1
    b.tick()
    [back] = [r.getMessage() for r in caplog.records if "enqueues again" in r.getMessage()]
    assert back.startswith("beat enqueues again entry=")
    assert back.endswith("failed_attempts=60 outage_s=60.5")  # first failure at T0 + 0.5
    # Every entry then coalesced its missed fires into one.
    assert len(files.list_files(tmp_path)) == 50
