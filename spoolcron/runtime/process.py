"""A spooler process made ready to start jobs on time, once, on its first spoolcron job.

**Priority.** uWSGI 2.0 lowers every spooler to nice 19; spoolcron raises it again.

uWSGI's ``spooler()`` calls ``setpriority(PRIO_PROCESS, 0, PRIO_MAX)`` when it starts, so that
spooled work yields to web workers. For a scheduler that is the wrong trade: at nice 19 the
kernel gives a waking spooler the CPU only once every runnable nice-0 process is done with
its slice, and a job due now starts tens of milliseconds late whenever the host is busy.
``SPOOLCRON["SPOOLER_NICE"]`` (default 0, the workers' level) is applied once per spooler
process, when it runs its first spoolcron job: nothing of spoolcron runs in a spooler before
that (uWSGI lowers the priority after its own start-up hooks), so that first job still starts
at nice 19. None leaves uWSGI's choice alone.

Raising a priority (a lower nice value) needs CAP_SYS_NICE or an RLIMIT_NICE that allows it;
when the system refuses, the spooler says so once and runs on at nice 19.

**Garbage collector.** A full collection walks every object the process holds -- Django, the
project and its tasks, some 50,000 objects: about 10 ms on an idle machine, more on a busy one,
at a moment nobody chooses. ``gc.freeze()`` moves what exists once the first job is set up
into a generation the collector never walks; only what jobs allocate later is collected.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SpoolerProcess"]

logger = logging.getLogger("spoolcron.spooler")


@dataclass
class SpoolerProcess:
    """On the first :meth:`prepare` in each process (a forked child prepares again): the nice
    value ``nice`` and a frozen garbage collector."""

    getpriority: Callable[[int, int], int] = os.getpriority
    setpriority: Callable[[int, int, int], None] = os.setpriority
    getpid: Callable[[], int] = os.getpid
    freeze: Callable[[], None] = gc.freeze
    _done_in: int | None = None

    def prepare(self, nice: int | None) -> None:
        pid = self.getpid()
        if self._done_in == pid:
            return
        self._done_in = pid
        self.freeze()
        if nice is not None:
            self._set_nice(pid, nice)

    def _set_nice(self, pid: int, nice: int) -> None:
        current = self.getpriority(os.PRIO_PROCESS, 0)
        if current == nice:
            return
        try:
            self.setpriority(os.PRIO_PROCESS, 0, nice)
        except OSError as exc:
            logger.warning(
                "The spooler (pid %d) cannot change its priority from nice %d to "
                "SPOOLCRON['SPOOLER_NICE'] = %d: %s. Jobs may start late while the host is "
                "busy; allow it with CAP_SYS_NICE or an RLIMIT_NICE of at least %d for the "
                "uWSGI user (ulimit -e, systemd's LimitNICE=), or set SPOOLER_NICE to None to "
                "keep uWSGI's.",
                pid,
                current,
                nice,
                exc.strerror or exc,
                20 - nice,
            )
            return
        logger.info("spooler priority set pid=%d nice=%d was=%d", pid, nice, current)
