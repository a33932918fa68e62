"""Where a job goes when it is enqueued or retried: straight into the spool directory when it is
due within the horizon, else into the pending store, which the mule publishes from at its
instant. One place decides, for ``schedule()``, the Tasks backend and the dispatcher's retries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..core.payload import Payload, directory_for, encode_body
from ..core.protocols import PendingStore
from ..spool import files
from ..spool.payloads import write_payload

__all__ = ["Publisher"]


class Publisher:
    """Routes jobs by due time; ``store`` None keeps every job in the spool directory.

    A job of another local queue goes to that queue's directory (``dirs``, by queue name).
    """

    def __init__(
        self,
        spool_dir: Path,
        store: PendingStore | None = None,
        *,
        horizon: float = 5.0,
        fsync: bool = False,
        clock: Callable[[], float] = time.time,
        dirs: Mapping[str, Path] | None = None,
    ) -> None:
        self.spool_dir = spool_dir
        self.dirs = dict(dirs or {})
        self.store = store
        self.horizon = horizon
        self.fsync = fsync
        self.clock = clock

    def to_spool(self, payload: Payload, body: bytes | None = None) -> Path:
        """Write the job's spool file now, creating the directory on first use like uWSGI's
        --spooler (mode 0700)."""
        directory = directory_for(payload, self.spool_dir, self.dirs)
        try:
            return write_payload(directory, payload, body=body, fsync=self.fsync)
        except FileNotFoundError:
            files.ensure_dir(directory)
            return write_payload(directory, payload, body=body, fsync=self.fsync)

    def publish(self, payload: Payload, body: bytes | None = None) -> None:
        """Put one job where it belongs (``body``: its encoded payload, if the caller has it)."""
        self.publish_many([(payload, encode_body(payload) if body is None else body)])

    def split(
        self, jobs: Sequence[tuple[Payload, bytes]], *, now: float | None = None
    ) -> tuple[list[tuple[Payload, bytes]], list[tuple[Payload, bytes]]]:
        """(jobs for the spool directory, jobs for the store), by their due time seen from
        ``now`` (default: the clock's)."""
        now = self.clock() if now is None else now
        spool: list[tuple[Payload, bytes]] = []
        store: list[tuple[Payload, bytes]] = []
        for job in jobs:
            later = self.store is not None and job[0].run_after > now + self.horizon
            (store if later else spool).append(job)
        return spool, store

    def publish_many(
        self, jobs: Sequence[tuple[Payload, bytes]], *, now: float | None = None
    ) -> None:
        """Put many jobs where they belong: the store's share in one call (one transaction for
        the database store)."""
        spool, store = self.split(jobs, now=now)
        for payload, body in spool:
            self.to_spool(payload, body)
        if store and self.store is not None:
            self.store.add(store)

    def store_holds(self, job_id: str, due: float | None = None) -> bool:
        """Whether the job waits in the pending store."""
        return self.store is not None and self.store.get(job_id, due=due) is not None

    def cancel_stored(self, job_id: str, due: float | None = None) -> bool:
        """Remove the job from the pending store; False if it is not there."""
        return self.store is not None and self.store.cancel(job_id, due=due)

    def settled(self, job_id: str) -> None:
        """The job ran to its end or was given up: the store forgets it."""
        if self.store is not None:
            self.store.settled(job_id)
