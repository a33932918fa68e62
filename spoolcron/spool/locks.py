"""The spooler's lock on a spool file: who runs a file now, and never dropping that lock.

* To run a file the spooler opens it ``O_RDWR`` and takes a POSIX record lock
  (``fcntl(F_SETLK, F_WRLCK)`` on the whole file, non-blocking); if that fails the file is
  skipped this scan.  It then re-checks that the name still exists (``access()``) because an
  ``unlink()`` by another process releases nothing but makes the lock meaningless.  The lock
  is held until the task returned and, on success, the file was unlinked by name.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import struct
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from .codec import SpoolFile

__all__ = [
    "held_file",
    "hold",
    "is_locked",
    "lock_owner",
    "locked",
    "remove_if_unlocked",
]

logger = logging.getLogger("spoolcron.spoolfile")


# --- files the spooler of *this* process is running -------------------------------------
#
# POSIX record locks belong to a (process, file) pair and are released when the process
# closes ANY descriptor of that file.  Inside the spooler process, opening and closing the
# file being run -- to read it, test its lock or cancel it -- would silently drop the lock
# uWSGI holds on it: another spooler process could then run it a second time, and a
# cancel would unlink it under uWSGI, which exit()s the spooler when its own unlink fails.
# ``hold()`` tells this module which file that is, so it never opens it.

_held: dict[tuple[int, int], SpoolFile] = {}


def _identity(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def held_file(path: str | os.PathLike[str]) -> SpoolFile | None:
    if not _held:
        return None
    try:
        return _held.get(_identity(os.stat(path)))
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def hold(
    path: str | os.PathLike[str], args: Mapping[bytes, bytes], body: bytes = b""
) -> Iterator[SpoolFile]:
    """Declare, for the duration of the block, that this process's spooler is running *path*.

    Use it in the spooler callable around the task, with the *args* and *body* uWSGI passed
    in: meanwhile :func:`read` answers from them, :func:`is_locked` is true,
    :func:`remove_if_unlocked` refuses and :func:`quarantine` moves the file without
    opening it -- none of them may open the file, see the note above.
    """
    st = os.stat(path)
    spool_file = SpoolFile(path=Path(path), args=dict(args), body=bytes(body), at=st.st_mtime)
    key = _identity(st)
    _held[key] = spool_file
    try:
        yield spool_file
    finally:
        _held.pop(key, None)


# struct flock for F_GETLK, which tests a lock without taking it.  Taking it, even for an
# instant, would make a spooler that looks at the file in that instant skip it for a whole
# --spooler-frequency period.
if sys.platform.startswith("linux") and struct.calcsize("P") == 8:
    # short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid (+ padding)
    _FLOCK: struct.Struct | None = struct.Struct("@hhqqi4x")
else:
    _FLOCK = None


def _lock_owner_fd(fd: int) -> int | None:
    if _FLOCK is not None:
        request = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        l_type, _, _, _, l_pid = _FLOCK.unpack(fcntl.fcntl(fd, fcntl.F_GETLK, request))
        return None if l_type == fcntl.F_UNLCK else int(l_pid)
    return _lock_owner_by_trying(fd)


def _lock_owner_by_trying(fd: int) -> int | None:
    # Portable fallback: take the lock and let it go at once.  The holder's pid is unknown.
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return 0
        raise
    fcntl.lockf(fd, fcntl.LOCK_UN)
    return None


def lock_owner(path: str | os.PathLike[str]) -> int | None:
    """The pid of the process running the spool file at *path*, or None if nobody runs it.

    None too if the file is gone.  0 means "locked by an unknown process" (platforms
    without a usable ``F_GETLK``).
    """
    if held_file(path) is not None:
        return os.getpid()
    try:
        fd = os.open(path, os.O_RDWR if _FLOCK is None else os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return _lock_owner_fd(fd)
    finally:
        os.close(fd)


def is_locked(path: str | os.PathLike[str]) -> bool:
    """True while a spooler holds the lock uWSGI takes on a spool file it is running."""
    return lock_owner(path) is not None


@contextlib.contextmanager
def locked(path: str | os.PathLike[str]) -> Iterator[bool]:
    """Hold the spooler's lock on the file now at *path*; yields False if that is impossible.

    False when the file is gone, locked by a spooler, or was replaced by another file after
    we opened it (then the lock we got protects the wrong inode).
    """
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            yield False
            return
        try:
            same = _identity(os.stat(path)) == _identity(os.fstat(fd))
        except FileNotFoundError:
            same = False
        yield same
    finally:
        os.close(fd)


def remove_if_unlocked(path: str | os.PathLike[str]) -> bool:
    """Cancel a pending spool file: delete it unless a spooler is running it.

    Returns True if this call deleted it, False if it is running (locked) or already gone.
    The file is unlinked while we hold the spooler's lock, so the spooler either skips it
    (lock taken) or, if it opened it just before, finds the name gone after getting the
    lock and skips it too.  Residual race: if a new file with the SAME name is published
    in the microseconds between the spooler's ``open()`` and its ``access()`` re-check, it
    runs the cancelled content and then unlinks the new file -- so do not reuse a name
    right after cancelling it.
    """
    path = Path(path)
    if held_file(path) is not None:
        return False
    for _ in range(3):
        with locked(path) as ok:
            if ok:
                os.unlink(path)
                logger.info("spool file cancelled path=%s", path)
                return True
        # Not ours to delete, unless the name now points to another file: look again.
        if lock_owner(path) is not None or not path.exists():
            return False
    return False
