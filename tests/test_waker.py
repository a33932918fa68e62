"""The waker with an injected clock: it signals when a file falls due, not before; and with the
real clock, how it notices files other processes write (inotify, or polling without it)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spoolcron.core.payload import DUE_ARG, Payload, spool_at
from spoolcron.runtime.dispatch import MAX_EARLY_WAIT
from spoolcron.spool import files, inotify
from spoolcron.spool.payloads import write_payload
from spoolcron.spool.waker import FIRE_LEAD, WAKE_LEAD, Waker
from spoolcron.spool.wakers import Wakers
from tests.helpers import Clock

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


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


def test_a_file_of_an_earlier_release_waits_for_the_coarse_clock_to_reach_its_second(
    tmp_path: Path,
) -> None:
    """A file without the due argument is due at its mtime, which is also uWSGI's ``at``.
    uWSGI's time(NULL) turns to a new second a tick (or more) after the precise clock: woken
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


def job(run_after: float, job_id: str = "j1") -> Payload:
    return Payload(task="tests.testapp.tasks.record", job_id=job_id, run_after=run_after)


def test_spoolcron_files_are_visible_a_second_early_and_woken_just_before_the_instant(
    tmp_path: Path,
) -> None:
    """The new rule: ``at`` is a whole second before the due second, so the coarse clock lagging
    does not matter; the spooler is woken ``lead`` before the due instant (the dispatcher
    sleeps out the rest: never early)."""
    path = write_payload(tmp_path, job(1001.0))
    assert os.stat(path).st_mtime == spool_at(1001.0) == 1000
    assert files.read(path).args[DUE_ARG] == b"1001.0"
    clock, coarse = Clock(1000.5), Clock(1000.5)
    wakes: list[float] = []
    waker = Waker(tmp_path, lambda: wakes.append(clock.now), clock=clock, coarse_clock=coarse)
    waker.step()
    assert wakes == []
    clock.now, coarse.now = 1001.0 - WAKE_LEAD, 1000.98  # the coarse clock 15 ms behind
    waker.step()
    assert wakes == [1001.0 - WAKE_LEAD]


@pytest.mark.parametrize("due", [1001.003, 1001.5, 1001.999])
def test_a_fractional_due_is_woken_without_waiting_for_the_coarse_clock(
    tmp_path: Path, due: float
) -> None:
    write_payload(tmp_path, job(due))
    clock, coarse = Clock(1000.0), Clock(1000.0)
    wakes: list[float] = []
    waker = Waker(tmp_path, lambda: wakes.append(clock.now), clock=clock, coarse_clock=coarse)
    assert waker.step() == pytest.approx(0.02)  # polled: nothing waits on wait() yet
    clock.now = due - WAKE_LEAD - 0.0005
    waker.step()
    assert wakes == []
    clock.now = coarse.now = due - WAKE_LEAD  # the coarse clock still in the second before
    coarse.now -= 0.01
    waker.step()
    assert wakes == [due - WAKE_LEAD]


def test_a_due_argument_that_is_not_a_number_falls_back_to_the_mtime(tmp_path: Path) -> None:
    files.write(tmp_path, "uwsgi_spoolfile_on_a", {DUE_ARG: b"soon"}, at=1000.5)
    clock = Clock(1000.0)
    wakes: list[float] = []
    waker = Waker(tmp_path, lambda: wakes.append(clock.now), clock=clock, lead=0.0)
    clock.now = 1000.499
    waker.step()
    assert wakes == []
    clock.now = 1000.5
    waker.step()
    assert wakes == [1000.5]


def test_notify_wakes_at_the_due_instant_from_the_files_own_at(tmp_path: Path) -> None:
    payload = job(1001.25)
    write_payload(tmp_path, payload)
    clock = Clock(1000.9)
    wakes: list[float] = []
    waker = Waker(tmp_path, lambda: wakes.append(clock.now), clock=clock, watch=False)
    waker.notify(payload.file_name, payload.run_after)
    waker.notify("uwsgi_spoolfile_on_gone", 1000.0)  # run and removed already: ignored
    assert waker.step() == pytest.approx(0.02)
    clock.now = 1001.25 - WAKE_LEAD
    waker.step()
    assert wakes == [clock.now]


@pytest.mark.parametrize("queues", [1, 2])
def test_a_fire_is_woken_its_longer_lead_before_its_instant(tmp_path: Path, queues: int) -> None:
    # The beat's notify (uwsgi.mule, the worker) passes FIRE_LEAD: the overlap check's query
    # runs in it. A spooler woken that early must still take the file, not put it back.
    assert FIRE_LEAD > WAKE_LEAD
    assert FIRE_LEAD <= MAX_EARLY_WAIT
    dirs = [files.ensure_dir(tmp_path / f"q{i}") for i in range(queues)]
    payload = job(1001.25)
    write_payload(dirs[-1], payload)
    clock = Clock(1000.9)
    wakes: list[float] = []
    wakers = Wakers(
        [Waker(d, lambda: wakes.append(clock.now), clock=clock, watch=False) for d in dirs]
    )
    wakers.notify(payload.file_name, payload.run_after, dirs[-1], lead=FIRE_LEAD)
    clock.now = 1001.25 - FIRE_LEAD - 0.0001
    wakers.step()
    assert wakes == []
    clock.now = 1001.25 - FIRE_LEAD
    wakers.step()
    assert wakes == [clock.now]


WRITER = """
import sys, time
from pathlib import Path
from spoolcron.core.payload import Payload
from spoolcron.spool.payloads import write_payload
time.sleep(float(sys.argv[2]))
payload = Payload(task="t", job_id="from-elsewhere", run_after=time.time())
write_payload(Path(sys.argv[1]), payload, exclusive=sys.argv[3] == "link")
"""


def _write_from_another_process(spool: Path, *, after: float, how: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(spool), str(after), how], text=True)


@linux_only
@pytest.mark.parametrize("how", ["rename", "link"])
def test_inotify_notices_a_file_another_process_writes_without_polling(
    tmp_path: Path, how: str
) -> None:
    wakes: list[float] = []
    waker = Waker(tmp_path, lambda: wakes.append(time.time()), rescan_interval=60.0)
    assert waker.watching
    waker.wait(0)
    # Nothing due, nothing to poll: the next step is the rescan, a minute away.
    assert waker.step() == pytest.approx(60.0, abs=0.5)
    writer = _write_from_another_process(tmp_path, after=0.3, how=how)
    try:
        started = time.monotonic()
        deadline = started + 30
        while not wakes and time.monotonic() < deadline:
            waker.wait(waker.step())
        assert wakes, "the file was never noticed"
        # Noticed at once: far sooner than any rescan (the step above asked for 60 s).
        assert time.monotonic() - started < 20
        written = tmp_path / "uwsgi_spoolfile_on_spoolcron_from-elsewhere_1"
        due = float(files.read(written).args[DUE_ARG])
        assert wakes[0] >= due - WAKE_LEAD  # never before the instant (less the lead)
    finally:
        assert writer.wait(30) == 0
        waker.close()


@linux_only
def test_wait_returns_early_when_a_file_appears(tmp_path: Path) -> None:
    waker = Waker(tmp_path, lambda: None)
    writer = _write_from_another_process(tmp_path, after=0.2, how="rename")
    try:
        started = time.monotonic()
        waker.wait(30)
        assert time.monotonic() - started < 20
    finally:
        assert writer.wait(30) == 0
        waker.close()


def _recorded_selects(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    timeouts: list[float] = []
    real = inotify.select.select

    def select(r: Any, w: Any, x: Any, timeout: float) -> Any:
        timeouts.append(timeout)
        return real(r, w, x, timeout)

    monkeypatch.setattr(inotify.select, "select", select)
    return timeouts


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    os.close(read)
    os.close(write)


def test_a_long_wait_ends_before_the_kernels_slack_and_waits_out_the_rest(
    monkeypatch: pytest.MonkeyPatch, pipe: tuple[int, int]
) -> None:
    # A select() of 0.5 s may end 0.5 ms late (t/1000; t/200 niced): the mule's wakes came
    # that late. The long select ends early by more than that slack, a short one does the rest.
    timeouts = _recorded_selects(monkeypatch)
    started = time.monotonic()
    assert inotify.wait_readable([pipe[0]], 0.5) == []
    assert time.monotonic() - started >= 0.5
    first, rest = timeouts
    assert first <= 0.5 - 0.5 / 200
    assert 0 < rest <= 0.5 - first


def test_a_wait_ends_at_once_when_its_descriptor_becomes_readable(
    monkeypatch: pytest.MonkeyPatch, pipe: tuple[int, int]
) -> None:
    timeouts = _recorded_selects(monkeypatch)
    os.write(pipe[1], b"x")
    assert inotify.wait_readable([pipe[0]], 30) == [pipe[0]]
    assert len(timeouts) == 1  # nothing waited out after it


@linux_only
@pytest.mark.parametrize("queues", [1, 2])
def test_the_mule_looks_at_a_new_file_event_delay_after_it_appeared(
    tmp_path: Path, queues: int
) -> None:
    # The mule's wakers (EVENT_DELAY): the writer of a job due now woke its spoolers, and the
    # mule must not take a CPU from them at that instant. Measured from the moment the file
    # is in place, so the lower bound holds however slow the machine.
    dirs = [tmp_path / f"q{i}" for i in range(queues)]
    wakers = Wakers([Waker(d, lambda: None, event_delay=0.3) for d in map(files.ensure_dir, dirs)])
    writer = _write_from_another_process(dirs[-1], after=0.2, how="rename")
    try:
        wakers.wait(30)
        returned = time.time()
        [written] = files.list_files(dirs[-1])
        assert returned - written.stat().st_ctime >= 0.25  # ctime: coarse, a tick early at most
        assert [waker.step() for waker in wakers.wakers]  # the file is there to be seen
    finally:
        assert writer.wait(30) == 0
        wakers.close()


@linux_only
def test_the_event_delay_ends_when_the_next_step_is_due(tmp_path: Path) -> None:
    waker = Waker(tmp_path, lambda: None, event_delay=60)
    writer = _write_from_another_process(tmp_path, after=0.2, how="rename")
    try:
        started = time.monotonic()
        waker.wait(2)  # the next step in 2 s: a 60 s delay must not hold it back
        assert time.monotonic() - started < 20
    finally:
        assert writer.wait(30) == 0
        waker.close()


def test_without_inotify_the_waker_polls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inotify, "_inotify", None)  # not Linux, or no C library
    wakes: list[float] = []
    waker = Waker(tmp_path, lambda: wakes.append(time.time()), poll_interval=0.02)
    assert not waker.watching
    waker.wait(0)
    assert waker.step() == pytest.approx(0.02)  # polls, waited on or not
    writer = _write_from_another_process(tmp_path, after=0.1, how="rename")
    try:
        deadline = time.monotonic() + 30
        while not wakes and time.monotonic() < deadline:
            waker.wait(waker.step())
        assert wakes
    finally:
        assert writer.wait(30) == 0


@linux_only
def test_a_kernel_that_refuses_a_watch_means_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert inotify._inotify is not None
    monkeypatch.setattr(inotify._inotify, "init1", lambda flags: -1)  # e.g. EMFILE
    waker = Waker(tmp_path, lambda: None, clock=Clock(1000.0))
    assert not waker.watching
    waker.wait(0)
    assert waker.step() == pytest.approx(0.02)


@linux_only
def test_a_spool_directory_removed_and_made_again_is_watched_again(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    wakes: list[float] = []
    waker = Waker(spool, lambda: wakes.append(time.time()), rescan_interval=0.05)
    assert waker.watching
    spool.rmdir()
    deadline = time.monotonic() + 10
    while waker.watching and time.monotonic() < deadline:
        waker.wait(waker.step())
    assert not waker.watching  # lost with the directory: polls meanwhile
    spool.mkdir()
    while not waker.watching and time.monotonic() < deadline:
        waker.wait(waker.step())
    assert waker.watching
    write_payload(spool, job(time.time()))
    while not wakes and time.monotonic() < deadline:
        waker.wait(waker.step())
    assert wakes
    waker.close()
