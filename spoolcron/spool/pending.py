"""The ``files`` pending store: jobs due later than the horizon wait beside the spool directory.

Layout: ``PENDING_DIR/<minute>/<spool file name>@<due in microseconds>``, one directory per
minute of due time (the Unix time of the minute, zero-padded so names sort in time order).
A job of another local queue is named ``<spool file name>@<due>=<queue>`` and published
into that queue's directory, which must then be on the same file system too.
Each file is the complete spool file, with its ``at``; publishing is a ``rename()`` into the
spool directory under the plain spool file name, so the spooler never sees half a file and a
job is published once whoever else renames at the same time (the loser gets
``FileNotFoundError``). PENDING_DIR must be on the spool directory's file system.

The publisher only ever looks at the minute directories that come due, and keeps what it has
listed until a directory's mtime says it changed: the idle cost and the cost per job do not
grow with the number of jobs waiting. Listing everything (``waiting``, ``count``, ``cancel``
without a due time) walks every minute directory: those are operator commands.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.payload import PREFIX, Payload, job_file_prefix, spool_at
from ..core.protocols import Published
from ..exceptions import SpoolWriteError
from . import files
from .payloads import payload_at

__all__ = ["DUE_MARK", "QUEUE_MARK", "FilePendingStore"]

DUE_MARK = "@"
"""Separates the spool file name from the due time in a pending file's name."""
QUEUE_MARK = "="
"""Separates a job's queue (other than the default) from the spool file name."""
_MINUTE = 60
# A directory's mtime comes from the kernel's coarse clock: changes within one tick of each
# other leave it the same. A listing is trusted only if it was taken this long after the
# mtime it saw, so any later change must have moved the mtime.
_SETTLED = 0.05


def _unchanged(mtime_ns: int, seen_ns: int, listed_at: float) -> bool:
    return mtime_ns == seen_ns and listed_at - mtime_ns / 1e9 > _SETTLED


def _minute_name(due: float) -> str:
    return f"{int(due // _MINUTE) * _MINUTE:012d}"


def _pending_name(payload: Payload) -> str:
    queue = f"{QUEUE_MARK}{payload.queue}" if payload.queue else ""
    return f"{payload.file_name}{DUE_MARK}{round(payload.run_after * 1_000_000):017d}{queue}"


def _split(name: str) -> tuple[str, float, str | None] | None:
    """(spool file name, due, queue) of a pending file's name; None for anything else."""
    spool_name, mark, rest = name.rpartition(DUE_MARK)
    micros, _, queue = rest.partition(QUEUE_MARK)
    if not mark or not micros.isdigit() or not spool_name.startswith(PREFIX):
        return None
    return spool_name, int(micros) / 1_000_000, queue or None


@dataclass
class _Listing:
    mtime_ns: int
    listed_at: float
    # (due, name, spool name, queue)
    entries: list[tuple[float, str, str, str | None]] = field(default_factory=list)


class FilePendingStore:
    """Jobs as files in per-minute directories under ``pending_dir``; see the module doc."""

    name = "files"

    def __init__(
        self,
        pending_dir: Path,
        spool_dir: Path,
        *,
        fsync: bool = False,
        dirs: Mapping[str, Path] | None = None,
    ) -> None:
        self.pending_dir = pending_dir
        self.spool_dir = spool_dir
        self.dirs = dict(dirs or {})  # each other local queue's spool directory
        self.fsync = fsync
        self._top_mtime_ns = -1
        self._top_listed_at = 0.0
        self._minutes: list[str] = []
        self._listings: dict[str, _Listing] = {}

    # --- writing ---------------------------------------------------------------------------

    def add(self, jobs: Sequence[tuple[Payload, bytes]]) -> None:
        for payload, body in jobs:
            directory = self.pending_dir / _minute_name(payload.run_after)
            self._write(directory, payload, body)

    def _write(self, directory: Path, payload: Payload, body: bytes) -> None:
        for _ in range(3):
            try:
                files.write(
                    directory,
                    _pending_name(payload),
                    payload.spool_args(),
                    body,
                    at=spool_at(payload.run_after),
                    fsync=self.fsync,
                )
                return
            except FileNotFoundError:
                # A new minute (the publisher removes the ones it finished): make it, again.
                files.ensure_dir(directory)
            except OSError as exc:
                reason = exc.strerror or os.strerror(exc.errno or errno.EIO)
                raise SpoolWriteError(
                    f"Cannot write job {payload.job_id!r} in the pending directory "
                    f"{os.fspath(self.pending_dir)!r}: {reason}.",
                    exc.errno,
                    os.fspath(directory),
                ) from exc
        raise SpoolWriteError(
            f"Cannot write job {payload.job_id!r} in the pending directory "
            f"{os.fspath(self.pending_dir)!r}: its minute directory keeps disappearing.",
            errno.ENOENT,
            os.fspath(directory),
        )

    # --- what is due -----------------------------------------------------------------------

    def _refresh_minutes(self) -> None:
        try:
            mtime_ns = os.stat(self.pending_dir).st_mtime_ns
        except FileNotFoundError:
            self._minutes, self._top_mtime_ns = [], -1
            return
        if _unchanged(mtime_ns, self._top_mtime_ns, self._top_listed_at):
            return
        self._top_mtime_ns, self._top_listed_at = mtime_ns, time.time()
        with os.scandir(self.pending_dir) as entries:
            self._minutes = sorted(
                e.name for e in entries if e.name.isdigit() and e.is_dir(follow_symlinks=False)
            )
        for gone in set(self._listings) - set(self._minutes):
            del self._listings[gone]

    def _listing(self, minute: str) -> list[tuple[float, str, str, str | None]]:
        directory = self.pending_dir / minute
        try:
            mtime_ns = os.stat(directory).st_mtime_ns
        except FileNotFoundError:
            self._listings.pop(minute, None)
            return []
        cached = self._listings.get(minute)
        if cached is not None and _unchanged(mtime_ns, cached.mtime_ns, cached.listed_at):
            return cached.entries
        listed_at = time.time()
        entries = []
        with os.scandir(directory) as found:
            for entry in found:
                split = _split(entry.name)
                if split is not None:
                    entries.append((split[1], entry.name, split[0], split[2]))
        entries.sort()
        self._listings[minute] = _Listing(mtime_ns, listed_at, entries)
        return entries

    def next_due(self, now: float) -> float | None:
        self._refresh_minutes()
        for minute in self._minutes:
            entries = self._listing(minute)
            if entries:
                return entries[0][0]
            self._drop_if_done(minute, now)
        return None

    def _drop_if_done(self, minute: str, now: float) -> None:
        # Nobody writes into a minute once it is past by more than any horizon: remove it,
        # so the next look starts at the following one.
        if int(minute) + 2 * _MINUTE < now:
            with contextlib.suppress(OSError):
                os.rmdir(self.pending_dir / minute)

    def publish_due(self, until: float, *, limit: int = 1000) -> list[Published]:
        self._refresh_minutes()
        published: list[Published] = []
        for minute in list(self._minutes):
            if int(minute) > until or len(published) >= limit:
                break
            for due, name, spool_name, queue in self._listing(minute):
                if due > until or len(published) >= limit:
                    break
                # A queue this host no longer has: its jobs run in the default one.
                target = self.spool_dir if queue is None else self.dirs.get(queue, self.spool_dir)
                if self._move(self.pending_dir / minute / name, target, spool_name):
                    published.append(Published(spool_name, due, target))
        return published

    def _move(self, source: Path, spool_dir: Path, spool_name: str) -> bool:
        """Rename ``source`` into ``spool_dir``; False if another process took it."""
        try:
            os.rename(source, spool_dir / spool_name)
        except FileNotFoundError:
            if not source.exists():
                return False  # published or cancelled by another process meanwhile
            files.ensure_dir(spool_dir)  # the spool directory itself was missing
            try:
                os.rename(source, spool_dir / spool_name)
            except FileNotFoundError:
                return False
        return True

    # --- looking and cancelling ------------------------------------------------------------

    def _all(self) -> Iterator[tuple[float, Path]]:
        self._refresh_minutes()
        for minute in self._minutes:
            for due, name, _, _ in self._listing(minute):
                yield due, self.pending_dir / minute / name

    def _paths_of(self, job_id: str, due: float | None) -> list[Path]:
        prefix = job_file_prefix(job_id)
        if due is not None:
            directory = self.pending_dir / _minute_name(due)
            try:
                return [p for p in directory.iterdir() if p.name.startswith(prefix)]
            except FileNotFoundError:
                return []
        return [path for _, path in self._all() if path.name.startswith(prefix)]

    def maintain(self, now: float) -> None:
        pass  # finished minute directories go as next_due() passes them

    def settled(self, job_id: str) -> None:
        pass  # a published file left the store when it was renamed into the spool

    def cancel(self, job_id: str, *, due: float | None = None) -> bool:
        removed = False
        for path in self._paths_of(job_id, due):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed = True
        return removed

    def get(self, job_id: str, *, due: float | None = None) -> Payload | None:
        for path in self._paths_of(job_id, due):
            payload = payload_at(path)
            if payload is not None:
                return payload
        return None

    def waiting(self, *, offset: int = 0, limit: int | None = None) -> list[Payload]:
        found: list[Payload] = []
        skipped = 0
        for _, path in self._all():
            if limit is not None and len(found) >= limit:
                break
            if skipped < offset:
                skipped += 1
                continue
            payload = payload_at(path)
            if payload is not None:
                found.append(payload)
        return found

    def count(self, *, due_before: float | None = None) -> int:
        if due_before is None:
            self._refresh_minutes()
            return sum(len(self._listing(minute)) for minute in self._minutes)
        total = 0
        for due, _ in self._all():
            if due >= due_before:
                break
            total += 1
        return total
