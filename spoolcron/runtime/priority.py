"""The spooler's CPU priority: uWSGI 2.0 lowers every spooler to nice 19, spoolcron raises it.

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
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SpoolerPriority"]

logger = logging.getLogger("spoolcron.spooler")


@dataclass
class SpoolerPriority:
    """Sets this process's nice value to ``nice`` on the first :meth:`apply` in each process
    (a forked child applies it again)."""

    getpriority: Callable[[int, int], int] = os.getpriority
    setpriority: Callable[[int, int, int], None] = os.setpriority
    getpid: Callable[[], int] = os.getpid
    _done_in: int | None = None

    def apply(self, nice: int | None) -> None:
        pid = self.getpid()
        if nice is None or self._done_in == pid:
            return
        self._done_in = pid
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
