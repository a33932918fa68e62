"""The waker with an injected clock: it signals when a file falls due, not before."""

from __future__ import annotations

import os
from pathlib import Path

from spoolcron.spool import files
from spoolcron.spool.waker import Waker
from tests.helpers import Clock


def test_wakes_at_the_due_instant_for_files_from_other_processes(tmp_path: Path) -> None:
    clock = Clock(1000.0)
    wakes: list[float] = []
    waker = Waker(tmp_path, lambda: wakes.append(clock.now), clock=clock)
    files.write(tmp_path, "uwsgi_spoolfile_on_a", {b"k": b"v"}, at=1000.5)
    assert waker.step() == 0.02  # polls the directory until something is nearer
    assert wakes == []
    clock.now = 1000.49
    assert 0 < waker.step() <= 0.02
    assert wakes == []
    clock.now = 1000.5
    waker.step()
    assert wakes == [1000.5]


def test_rewakes_while_a_due_file_waits_and_forgets_it_once_gone(tmp_path: Path) -> None:
    clock = Clock(1000.0)
    wakes: list[float] = []
    waker = Waker(tmp_path, lambda: wakes.append(clock.now), clock=clock, rewake_interval=0.25)
    path = files.write(tmp_path, "uwsgi_spoolfile_on_a", {b"k": b"v"}, at=999.0)
    waker.step()
    clock.now = 1000.1
    waker.step()
    clock.now = 1000.25
    waker.step()
    assert wakes == [1000.0, 1000.25]
    os.unlink(path)
    clock.now = 1000.5
    waker.step()
    assert wakes == [1000.0, 1000.25]


def test_ignores_files_that_are_not_spool_files(tmp_path: Path) -> None:
    (tmp_path / ".spoolcron-heartbeat").write_text("{}")
    wakes: list[float] = []
    waker = Waker(tmp_path, lambda: wakes.append(0), clock=Clock(1000.0))
    waker.step()
    assert wakes == []


def test_waits_for_the_coarse_clock_uwsgi_reads_to_reach_the_due_second(tmp_path: Path) -> None:
    """uWSGI's time(NULL) turns to a new second a tick (or more) after the precise clock: woken
    before that, the spooler would pass the file over until the next wake, 250 ms later."""
    clock, coarse = Clock(1000.0), Clock(1000.0)
    wakes: list[float] = []
    waker = Waker(tmp_path, lambda: wakes.append(clock.now), clock=clock, coarse_clock=coarse)
    files.write(tmp_path, "uwsgi_spoolfile_on_a", {b"k": b"v"}, at=1001.0)
    waker.step()
    clock.now, coarse.now = 1001.02, 1000.99  # the coarse clock is 30 ms behind
    assert 0 < waker.step() <= 0.002
    assert wakes == []
    clock.now, coarse.now = 1001.021, 1001.0
    waker.step()
    assert wakes == [1001.021]
