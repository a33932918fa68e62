"""Watching a directory with the kernel's inotify, through the C library (Linux): which names
appeared in it since the last look, and a wait that ends when one does. Where inotify is
missing or refused, ``DirectoryWatch.open`` returns None and the caller polls."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import select
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DirectoryWatch", "wait_readable"]

logger = logging.getLogger("spoolcron.waker")

_IN_MODIFY = 0x00000002
_IN_ATTRIB = 0x00000004
_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_DELETE_SELF = 0x00000400
_IN_MOVE_SELF = 0x00000800
_IN_Q_OVERFLOW = 0x00004000
_IN_IGNORED = 0x00008000
_IN_ONLYDIR = 0x01000000
# A file appears by rename (files.write), by link() (exclusive writes), or is created and
# written in place (uwsgi.spool(), remote spooling); its mtime may be set last (IN_ATTRIB).
_WATCH_MASK = _IN_MOVED_TO | _IN_CREATE | _IN_CLOSE_WRITE | _IN_ATTRIB | _IN_ONLYDIR
_APPEARED = _IN_MOVED_TO | _IN_CREATE
_GONE = _IN_IGNORED | _IN_DELETE_SELF | _IN_MOVE_SELF
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then `len` bytes of NUL-padded name
# Linux lets a select() of t seconds end up to t/1000 late (t/200 for a niced process) plus the
# timer slack (50 us): 0.5 ms past the instant after a half-second wait. The long part of a
# wait therefore ends this much early, and a short select() -- whose slack is microseconds --
# waits out the rest.
_SELECT_SLACK_SHARE = 1 / 200
_SELECT_SLACK_MIN = 0.0001


def wait_readable(fds: Sequence[int], timeout: float) -> list[int]:
    """Which of ``fds`` became readable within ``timeout`` seconds (blocking until one does),
    returning at the deadline itself, not when the kernel's slack lets a select() end."""
    deadline = time.monotonic() + timeout
    early = timeout - timeout * _SELECT_SLACK_SHARE - _SELECT_SLACK_MIN
    if early > 0:
        readable, _, _ = select.select(fds, [], [], early)
        if readable:
            return list(readable)
    readable, _, _ = select.select(fds, [], [], max(0.0, deadline - time.monotonic()))
    return list(readable)


class _Inotify:
    """The three system calls, looked up once; None where the C library lacks them."""

    def __init__(self, libc: ctypes.CDLL) -> None:
        self.init1 = libc.inotify_init1
        self.init1.argtypes = [ctypes.c_int]
        self.init1.restype = ctypes.c_int
        self.add_watch = libc.inotify_add_watch
        self.add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.add_watch.restype = ctypes.c_int


def _load_inotify() -> _Inotify | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return _Inotify(libc)
    except (OSError, AttributeError):
        return None


_inotify: _Inotify | None = _load_inotify()


class DirectoryWatch:
    """An inotify watch on one directory: which names appeared in it since the last look."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.broken = False  # the directory went away (or the queue overflowed): rescan
        self.overflowed = False

    @classmethod
    def open(cls, directory: Path) -> DirectoryWatch | None:
        """Watch ``directory``; None (the reason logged) where inotify cannot."""
        if _inotify is None:
            logger.info("no inotify on this system: polling the spool directory")
            return None
        fd = _inotify.init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            _no_watch(directory, ctypes.get_errno())
            return None
        if _inotify.add_watch(fd, os.fsencode(directory), _WATCH_MASK) < 0:
            _no_watch(directory, ctypes.get_errno())
            os.close(fd)
            return None
        return cls(fd)

    def fileno(self) -> int:
        return self._fd

    def wait(self, timeout: float) -> bool:
        """Block until an event is queued or ``timeout`` seconds pass; whether one is."""
        return bool(wait_readable([self._fd], timeout))

    def take(self) -> tuple[set[str], set[str]]:
        """The names of the files that appeared (created, renamed or linked in) and of those
        otherwise written to since the last call; does not wait."""
        appeared: set[str] = set()
        changed: set[str] = set()
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return appeared, changed
            except OSError:
                logger.exception("could not read the spool directory's inotify events")
                self.broken = True
                return appeared, changed
            offset = 0
            while offset + _EVENT.size <= len(data):
                _, mask, _, size = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size
                raw = data[offset : offset + size].rstrip(b"\0")
                offset += size
                if mask & _IN_Q_OVERFLOW:
                    self.overflowed = True
                if mask & _GONE:
                    self.broken = True
                if raw:
                    name = os.fsdecode(raw)
                    (appeared if mask & _APPEARED else changed).add(name)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _no_watch(directory: Path, code: int) -> None:
    level = logging.DEBUG if code == errno.ENOENT else logging.WARNING
    logger.log(
        level,
        "cannot watch the spool directory with inotify, polling it path=%s error=%s",
        directory,
        os.strerror(code) if code else "unknown",
    )
