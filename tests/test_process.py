"""A spooler process made ready (runtime.process): its priority set and its garbage collector
frozen once per process; a refused priority says so in one warning."""

from __future__ import annotations

import errno
import logging
import os

import pytest

from spoolcron.runtime.process import SpoolerProcess


class FakeProcess:
    """A process's nice value and pid, for the getters and setters SpoolerPriority calls."""

    def __init__(self, nice: int = 19, pid: int = 100, allowed: bool = True) -> None:
        self.nice, self.pid, self.allowed = nice, pid, allowed
        self.sets: list[int] = []
        self.freezes = 0

    def getpriority(self, which: int, who: int) -> int:
        assert (which, who) == (os.PRIO_PROCESS, 0)
        return self.nice

    def setpriority(self, which: int, who: int, nice: int) -> None:
        assert (which, who) == (os.PRIO_PROCESS, 0)
        self.sets.append(nice)
        if not self.allowed and nice < self.nice:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        self.nice = nice

    def freeze(self) -> None:
        self.freezes += 1

    def prepared(self) -> SpoolerProcess:
        return SpoolerProcess(self.getpriority, self.setpriority, lambda: self.pid, self.freeze)


def test_sets_the_nice_value_once_per_process() -> None:
    process = FakeProcess()
    priority = process.prepared()
    priority.prepare(0)
    priority.prepare(0)
    assert (process.nice, process.sets) == (0, [0])
    process.nice, process.pid = 19, 101  # a forked child starts where its parent was
    priority.prepare(0)
    assert (process.nice, process.sets) == (0, [0, 0])
    assert process.freezes == 2


def test_none_leaves_uwsgis_choice() -> None:
    process = FakeProcess()
    process.prepared().prepare(None)
    assert (process.nice, process.sets, process.freezes) == (19, [], 1)


def test_refused_says_how_to_allow_it_once(caplog: pytest.LogCaptureFixture) -> None:
    process = FakeProcess(allowed=False)
    priority = process.prepared()
    with caplog.at_level(logging.WARNING, logger="spoolcron.spooler"):
        priority.prepare(0)
        priority.prepare(0)
    assert [r.getMessage() for r in caplog.records] == [
        "The spooler (pid 100) cannot change its priority from nice 19 to "
        "SPOOLCRON['SPOOLER_NICE'] = 0: Permission denied. Jobs may start late while the host "
        "is busy; allow it with CAP_SYS_NICE or an RLIMIT_NICE of at least 20 for the uWSGI "
        "user (ulimit -e, systemd's LimitNICE=), or set SPOOLER_NICE to None to keep uWSGI's."
    ]
    assert process.nice == 19
