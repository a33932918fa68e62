"""What spoolcron does to a spool directory: write a file atomically, read and list files,
quarantine what cannot run (with its reason beside it), make directories private.

Stdlib only, plus the codec and the locks: it runs (and is tested) in any process.

* The spooler only considers names starting with :data:`PREFIX`, lstat()s them and skips
  any whose ``st_mtime`` (whole seconds) is greater than ``time(NULL)``: the mtime is the
  "run at" time.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .codec import HEADER_SIZE, PREFIX, SpoolFile, check_header, decode, encode, header_args_size
from .locks import held_file, locked

__all__ = [
    "REASON_SUFFIX",
    "TEMP_PREFIX",
    "check",
    "ensure_dir",
    "list_files",
    "list_quarantined",
    "make_private",
    "quarantine",
    "read",
    "read_head",
    "reason_path",
    "write",
    "write_bytes",
]

logger = logging.getLogger("spoolcron.spoolfile")

TEMP_PREFIX = ".spoolcron-tmp-"

REASON_SUFFIX = ".reason.txt"
"""Beside each quarantined file, ``<name>.reason.txt`` says why it was moved there."""


def reason_path(path: str | os.PathLike[str]) -> Path:
    """The reason file beside the quarantined file at ``path``."""
    path = Path(path)
    return path.with_name(path.name + REASON_SUFFIX)


def _check_name(name: str) -> None:
    if not name.startswith(PREFIX):
        raise ValueError(f"Spool file name {name!r} does not start with {PREFIX!r}.")
    if name == PREFIX:
        raise ValueError(f"Spool file name {name!r} has nothing after the prefix.")
    if "/" in name or "\0" in name:
        raise ValueError(f"Spool file name {name!r} contains '/' or a NUL byte.")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_temp_counter = itertools.count()


def _create_temp(directory: str) -> tuple[int, str]:
    # Cheaper than tempfile.mkstemp (no random names): pid and a counter are unique among
    # live processes, and O_EXCL skips a name a crashed process left behind.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = os.path.join(directory, f"{TEMP_PREFIX}{os.getpid()}-{next(_temp_counter)}")
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue


def write(
    spool_dir: str | os.PathLike[str],
    name: str,
    args: Mapping[bytes, bytes],
    body: bytes = b"",
    *,
    at: float | None = None,
    fsync: bool = False,
    exclusive: bool = False,
) -> Path:
    """Atomically publish a spool file *name* in *spool_dir*, due at *at* (default: now).

    The data goes to a temporary name the spooler ignores, gets its mtime set to *at*, and
    only then appears under *name*, so the spooler never reads half a file.  uWSGI compares
    whole seconds (``st_mtime > time(NULL)`` skips the file), so the file becomes runnable
    at ``floor(at)``, up to a second before a fractional *at*; pass a whole-second *at* to
    never run early.

    With ``exclusive=True`` the file is published with ``link()``: if *name* already exists
    the existing file is kept and :class:`FileExistsError` is raised, so two writers of the
    same fire collide instead of duplicating it.  Otherwise an existing file is replaced --
    never do that to a file the spooler may be running: when that task finishes, uWSGI
    unlinks *by name* and would delete the replacement.  The file is created mode 0600 and
    must be owned by the uWSGI user (the spooler skips files it cannot read and write).
    """
    _check_name(name)
    return Path(
        write_bytes(
            os.fspath(spool_dir), name, encode(args, body), at=at, fsync=fsync, exclusive=exclusive
        )
    )


def write_bytes(
    directory: str,
    name: str,
    data: bytes,
    *,
    at: float | None = None,
    fsync: bool = False,
    exclusive: bool = False,
) -> str:
    """:func:`write` of an encoded file (``codec.encode``) whose name is checked, with plain
    strings: pathlib costs more than the system calls on the bulk enqueue path."""
    final = os.path.join(directory, name)
    fd, tmp = _create_temp(directory)
    renamed = False
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
            if at is not None:
                # After the last write, or the write would move the mtime again.
                os.utime(fd, (at, at))
        finally:
            os.close(fd)
        if exclusive:
            try:
                os.link(tmp, final)
            except FileExistsError:
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(final)) from None
        else:
            os.replace(tmp, final)
            renamed = True
        if fsync:
            _fsync_dir(Path(directory))
    finally:
        if not renamed:  # failed, or published by link(): the temporary name remains
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    logger.debug("spool file written path=%s at=%s exclusive=%s", final, at, exclusive)
    return final


def read(path: str | os.PathLike[str]) -> SpoolFile:
    """Read and decode the spool file at *path*.

    Raises :class:`SpoolFileError` if it is corrupt; :class:`FileNotFoundError` passes
    through.  A file ``uwsgi.spool()`` is still writing (it is locked, and may be empty for
    an instant) reads as corrupt: check :func:`is_locked` before calling it broken.
    """
    held = held_file(path)
    if held is not None:
        return SpoolFile(path=Path(path), args=dict(held.args), body=held.body, at=held.at)
    with open(path, "rb") as fh:
        data = fh.read()
        at = os.fstat(fh.fileno()).st_mtime
    args, body = decode(data, name=os.fspath(path))
    return SpoolFile(path=Path(path), args=args, body=body, at=at)


def list_files(spool_dir: str | os.PathLike[str]) -> list[Path]:
    """The spool files in *spool_dir*, sorted by name: regular files named ``PREFIX...``.

    Priority subdirectories (``--spooler-ordered``) are not looked into.
    """
    with os.scandir(spool_dir) as entries:
        return sorted(
            Path(entry.path)
            for entry in entries
            if entry.name.startswith(PREFIX) and entry.is_file(follow_symlinks=False)
        )


def list_quarantined(failed_dir: str | os.PathLike[str], prefix: str = PREFIX) -> list[Path]:
    """The quarantined spool files in *failed_dir* whose names start with *prefix*, sorted.

    Their reason files are left out; a missing directory has none.
    """
    try:
        with os.scandir(failed_dir) as entries:
            return sorted(
                Path(entry.path)
                for entry in entries
                if entry.name.startswith(prefix)
                and not entry.name.endswith(REASON_SUFFIX)
                and entry.is_file(follow_symlinks=False)
            )
    except FileNotFoundError:
        return []


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create directory *path* (and missing parents) with mode 0700; return it.

    An existing directory keeps its mode.
    """
    directory = Path(path)
    if not directory.is_dir():
        directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            pass
        else:
            os.chmod(directory, 0o700)  # the umask may have removed bits we need
    return directory


def _free_target(failed: Path, name: str) -> Path:
    target = failed / name
    n = 0
    while target.exists() or reason_path(target).exists():
        n += 1
        target = failed / f"{name}.{n}"
    return target


def quarantine(
    path: str | os.PathLike[str], failed_dir: str | os.PathLike[str], reason: str
) -> Path:
    """Move the spool file at *path* into *failed_dir*, with the *reason* beside it.

    The file keeps its name (a ``.N`` suffix is added if that name is taken there) and
    ``<name>.reason.txt`` holds *reason*, e.g. a traceback.  *failed_dir* is created with
    mode 0700 and must not be a spool directory.  Returns the new path.

    Inside the spooler callable, quarantine the running file within :func:`hold` and then
    return ``uwsgi.SPOOL_RETRY``, not ``SPOOL_OK``: on OK uWSGI unlinks the name, fails
    because the file moved, and kills the spooler.  Elsewhere, a file a spooler is running
    is not moved: :class:`BlockingIOError` is raised.
    """
    path = Path(path)
    failed = ensure_dir(failed_dir)
    with contextlib.ExitStack() as stack:
        # Unless this process runs it (hold), take the spooler's lock so a running file stays.
        if held_file(path) is None and not stack.enter_context(locked(path)):
            if not path.exists():
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
            raise BlockingIOError(
                errno.EAGAIN,
                f"Spool file {str(path)!r} is being run by a spooler and cannot be quarantined",
            )
        target = _free_target(failed, path.name)
        reason_file = reason_path(target)
        text = reason if reason.endswith("\n") else reason + "\n"
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=failed)
        try:
            with open(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, reason_file)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        try:
            os.rename(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # Another filesystem: copy first, delete the original only once the copy exists.
            shutil.copy2(path, target)
            os.unlink(path)
    logger.warning("spool file quarantined path=%s target=%s", path, target)
    return target


def make_private(path: str | os.PathLike[str]) -> int | None:
    """Take group and other permissions off directory *path*; return its old mode if changed.

    uWSGI creates its ``--spooler`` directory mode 0750; job arguments are nobody else's.
    """
    mode = os.stat(path).st_mode & 0o7777
    if not mode & 0o077:
        return None
    os.chmod(path, mode & 0o700)
    return mode


def read_head(path: str | os.PathLike[str]) -> tuple[bytes, int, float]:
    """The header and arguments of the file at *path* (not its body), its size and mtime."""
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        head = fh.read(HEADER_SIZE)
        if len(head) == HEADER_SIZE:
            head += fh.read(header_args_size(head))
    return head, st.st_size, st.st_mtime_ns / 1e9


def check(path: str | os.PathLike[str], *, max_body: int) -> str | None:
    """Why uWSGI's spooler would never hand the file at *path* to Python; None if it would.

    uWSGI skips a file shorter than its header forever, deletes one whose arguments are cut
    short or malformed without a word, and reads the whole body into memory first: those
    files, and any whose body is over *max_body* bytes, get a one-sentence reason here so
    they can be quarantined instead. Only the header and the arguments are read.
    """
    head, size, _ = read_head(path)
    return check_header(head, size, name=os.fspath(path), max_body=max_body)
