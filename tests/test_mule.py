"""spoolcron.runtime.mule.MuleLoop driven step by step: a beat that cannot start until the
database answers, the waker, the heartbeat and the pruning, each on an injected clock.

The beat and the waker have their own tests (tests/test_beat.py, tests/test_waker.py); the
mule under real uWSGI is tests/integration/test_beat_uwsgi.py.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from spoolcron.core.payload import PREFIX
from spoolcron.runtime.mule import MuleLoop
from spoolcron.spool import files, heartbeat
from spoolcron.spool.waker import Waker
from tests.helpers import Clock

T0 = 1_795_000_000.0
NOT_STARTED = "beat could not read the ledger"


class FakeBeat:
    """Fails ``start()`` the first ``failures`` times (the database is away); ``tick()``
    returns the next of ``delays`` (then the last one again)."""

    def __init__(self, failures: int = 0, delays: tuple[float, ...] = (0.5,)) -> None:
        self.failures = failures
        self.delays = list(delays)
        self.starts: list[float] = []
        self.ticks = 0
        self.clock: Clock | None = None

    def start(self) -> None:
        self.starts.append(self.clock() if self.clock else 0.0)
        if len(self.starts) <= self.failures:
            raise ConnectionError("could not connect to server: Connection refused")

    def tick(self) -> float:
        self.ticks += 1
        return self.delays.pop(0) if len(self.delays) > 1 else self.delays[0]


class FakeWaker:
    def __init__(self, delay: float = 10.0) -> None:
        self.delay = delay
        self.steps = 0

    def step(self) -> float:
        self.steps += 1
        return self.delay

    def notify(self, name: str, due: float, spool_dir: Path | None = None) -> None:
        pass


class Mule:
    """A MuleLoop with its fakes at hand: ``mule.at(t)`` steps it at T0 + t."""

    def __init__(
        self,
        spool_dir: Path,
        beat: FakeBeat,
        waker: Any = None,
        clock: Clock | None = None,
        **options: Any,
    ) -> None:
        self.clock = clock or Clock(T0)
        self.beat = beat
        beat.clock = self.clock
        self.waker = waker or FakeWaker()
        self.pids = [101, 102]
        self.prunes: list[float] = []
        self.refreshes = 0
        self.slept: list[float] = []
        self.loop = MuleLoop(
            beat,  # type: ignore[arg-type]  (a fake: start and tick)
            self.waker,
            spool_dir=spool_dir,
            spooler_pids=lambda: list(self.pids),
            prune=lambda: self.prunes.append(self.clock()),
            refresh=self._refresh,
            frequency=30,
            clock=self.clock,
            sleep=self._sleep,
            **options,
        )

    def _refresh(self) -> None:
        self.refreshes += 1

    def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.now += seconds

    def at(self, seconds: float) -> float:
        self.clock.now = T0 + seconds
        return self.loop.step()


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "spoolcron.uwsgi"]


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="spoolcron")


# --- starting the beat --------------------------------------------------------------------


def test_a_beat_that_starts_is_ticked_from_the_first_step(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mule = Mule(tmp_path, FakeBeat(delays=(0.25,)))
    assert mule.at(0) == 0.25
    assert mule.loop.started
    assert (mule.beat.starts, mule.beat.ticks) == ([T0], 1)
    assert messages(caplog) == [
        (logging.INFO, f"spoolcron mule started pid={os.getpid()} spool_dir={tmp_path}")
    ]


def test_the_start_is_retried_every_start_retry_seconds_and_logged_twice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mule = Mule(tmp_path, FakeBeat(failures=3), start_retry=2.0)
    for t in (0, 0.5, 1, 1.5, 2, 3, 4, 5, 6, 6.5):
        mule.at(t)
    assert mule.beat.starts == [T0, T0 + 2, T0 + 4, T0 + 6]
    assert mule.loop.started
    assert mule.beat.ticks == 2  # ticked from the step that started it
    # The waker went on meanwhile: twice a step, before the tick (files others wrote) and
    # after it (the fires it wrote).
    assert mule.waker.steps == 20
    assert mule.refreshes >= 3  # the connections are dropped after every failed start
    logged = messages(caplog)
    assert logged[0] == (logging.ERROR, f"{NOT_STARTED}, retrying")
    assert logged[1:] == [
        (logging.WARNING, f"{NOT_STARTED}: works again after failed_attempts=3"),
        (logging.INFO, f"spoolcron mule started pid={os.getpid()} spool_dir={tmp_path}"),
    ]
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.exc_info is not None
    assert isinstance(error.exc_info[1], ConnectionError)


def test_a_long_outage_logs_one_line_every_log_every_seconds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mule = Mule(tmp_path, FakeBeat(failures=65), start_retry=1.0, log_every=30.0)
    for t in range(70):
        mule.at(t)
    assert len(mule.beat.starts) == 66
    assert [m for _, m in messages(caplog)][:4] == [
        f"{NOT_STARTED}, retrying",
        f"{NOT_STARTED}, still failing failed_attempts=31",
        f"{NOT_STARTED}, still failing failed_attempts=61",
        f"{NOT_STARTED}: works again after failed_attempts=65",
    ]


def test_before_the_next_try_the_loop_sleeps_no_longer_than_until_it(tmp_path: Path) -> None:
    mule = Mule(tmp_path, FakeBeat(failures=1), start_retry=0.75)
    assert mule.at(0) == 0.75
    assert mule.at(0.5) == 0.25
    assert mule.beat.starts == [T0]


# --- heartbeat ----------------------------------------------------------------------------


def test_a_heartbeat_every_second_with_the_spooler_pids(tmp_path: Path) -> None:
    mule = Mule(tmp_path, FakeBeat(failures=1000))  # heartbeats whether the beat runs or not
    assert heartbeat.read(tmp_path) is None
    mule.at(0)
    seen = heartbeat.read(tmp_path)
    assert seen is not None
    assert (seen["spooler_pids"], seen["spooler_frequency"], seen["pid"]) == (
        [101, 102],
        30,
        os.getpid(),
    )
    mule.pids = [103]
    mule.at(0.9)
    assert heartbeat.read(tmp_path)["spooler_pids"] == [101, 102]
    mule.at(1.0)
    assert heartbeat.read(tmp_path)["spooler_pids"] == [103]


def test_a_heartbeat_that_cannot_be_written_is_logged_then_its_return(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = tmp_path / "spool"
    mule = Mule(spool, FakeBeat())
    mule.at(0)
    mule.at(1)
    spool.mkdir()
    mule.at(2)
    assert heartbeat.read(spool) is not None
    assert [m for _, m in messages(caplog) if m.startswith("could not write")] == [
        "could not write the heartbeat, retrying",
        "could not write the heartbeat: works again after failed_attempts=2",
    ]


# --- prune --------------------------------------------------------------------------------


def test_prunes_once_per_prune_every_once_the_beat_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mule = Mule(tmp_path, FakeBeat(failures=1), start_retry=1.0, prune_every=10.0)
    mule.at(0)
    assert mule.prunes == []  # not before the beat has started
    for t in range(1, 25):
        mule.at(t)
    assert mule.prunes == [T0 + 1, T0 + 11, T0 + 21]

    def broken() -> None:
        raise ConnectionError("database is down")

    mule.loop.prune = broken
    mule.at(31)
    assert mule.at(32) == 0.5  # the loop goes on
    [record] = [r for r in caplog.records if r.getMessage() == "could not prune the run history"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None


# --- the loop -----------------------------------------------------------------------------


def test_run_sleeps_what_each_step_returns(tmp_path: Path) -> None:
    mule = Mule(tmp_path, FakeBeat(delays=(0.25, 0.5, 0.125)), waker=FakeWaker(delay=0.3))
    mule.loop.run(max_steps=4)
    assert mule.slept == pytest.approx([0.25, 0.3, 0.125, 0.125])
    assert mule.beat.ticks == 4
    assert mule.waker.steps == 8  # before and after each tick


class SlowStore:
    """A pending store with nothing to publish whose every answer takes ``takes`` seconds."""

    def __init__(self, clock: Clock, takes: float) -> None:
        self.clock = clock
        self.takes = takes

    def publish_due(self, until: float) -> list[object]:
        self.clock.now += self.takes
        return []

    def next_due(self, now: float) -> float | None:
        return None

    def maintain(self, now: float) -> None:
        pass


def test_the_time_a_step_spends_after_the_waker_answered_is_not_slept_again(
    tmp_path: Path,
) -> None:
    # The waker wants to look again in 0.3 s; asking the store then takes 0.2 s: 0.1 s is
    # left, or each wake would come as late as the store's round trip.
    clock = Clock(T0)
    mule = Mule(
        tmp_path,
        FakeBeat(delays=(5.0,)),
        waker=FakeWaker(delay=0.3),
        clock=clock,
        store=SlowStore(clock, takes=0.2),
    )
    assert mule.at(0) == pytest.approx(0.1)


def test_the_waker_wakes_the_spooler_for_a_due_file(tmp_path: Path) -> None:
    wakes: list[float] = []
    clock = Clock(T0)
    waker = Waker(tmp_path, lambda: wakes.append(clock()), clock=clock, coarse_clock=clock)
    mule = Mule(tmp_path, FakeBeat(), waker=waker, clock=clock)
    files.write(tmp_path, PREFIX + "due", {b"a": b"b"}, at=T0 + 2)
    mule.at(0)
    assert wakes == []
    mule.at(2.5)
    assert wakes == [T0 + 2.5]


def test_invalid_entries_are_logged_again_every_nag_every_seconds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    problem = "entry 'typo' in myapp.schedules: Cannot parse schedule … (spoolcron.E002)"
    mule = Mule(tmp_path, FakeBeat(), problems=[problem], nag_every=600.0)
    nagged = (logging.ERROR, f"invalid entry, not run: {problem}")
    for seconds in (0, 1, 599, 600, 601, 1200):
        mule.at(seconds)
    assert [m for m in messages(caplog) if m == nagged] == [nagged] * 3  # at 0, 600 and 1200
