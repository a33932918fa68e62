"""The uWSGI spool file codec and the file operations spoolcron does on a spool directory.

Stdlib only: no Django, no ``uwsgi`` import, so it runs (and is tested) in any process.

Facts this module relies on, checked in uWSGI 2.0's ``core/spooler.c`` and
``plugins/python`` (tag 2.0.30; 2.0.31 changed nothing there):

* A spool file is a 4-byte header -- modifier1 ``17``, a little-endian uint16 size, modifier2
  ``0`` -- then ``size`` bytes of ``uint16 LE length, key, uint16 LE length, value`` pairs,
  then the body, raw, up to the end of the file.  uWSGI's own parser rejects an empty key;
  the Python spooler then reports the file "done" and uWSGI deletes it, so :func:`encode`
  refuses empty keys.
* The spooler only considers names starting with :data:`PREFIX`, lstat()s them and skips
  any whose ``st_mtime`` (whole seconds) is greater than ``time(NULL)``: the mtime is the
  "run at" time.
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
import itertools
import logging
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MARKER",
    "MAX_ARGS_SIZE",
    "PREFIX",
    "REASON_SUFFIX",
    "SpoolFile",
    "SpoolFileError",
    "check",
    "clear_starts",
    "decode",
    "encode",
    "ensure_dir",
    "hold",
    "is_locked",
    "list_files",
    "list_quarantined",
    "lock_owner",
    "locked",
    "make_private",
    "quarantine",
    "read",
    "record_start",
    "remove_if_unlocked",
    "write",
]

logger = logging.getLogger("spoolcron.spoolfile")

PREFIX = "uwsgi_spoolfile_on_"
"""The spooler ignores every name that does not start with this."""

MARKER = b"spoolcron"
"""Argument key that marks a spool file as written by spoolcron; its value is the format version."""

MAX_ARGS_SIZE = 0xFFFF
"""uWSGI's limit for one key, one value and the whole argument block, in bytes."""

TEMP_PREFIX = ".spoolcron-tmp-"

REASON_SUFFIX = ".reason.txt"
"""Beside each quarantined file, ``<name>.reason.txt`` says why it was moved there."""

_MODIFIER1 = 17
_HEADER = struct.Struct("<BHB")
_LENGTH = struct.Struct("<H")


class SpoolFileError(ValueError):
    """A spool file is corrupt or cannot be decoded."""


def _short(value: bytes) -> str:
    # A 64 KiB key in an error message helps nobody: show its start.
    return repr(value) if len(value) <= 32 else f"{value[:32]!r}..."


def encode(args: Mapping[bytes, bytes], body: bytes = b"") -> bytes:
    """Return the bytes of a spool file holding *args* and *body*.

    uWSGI silently truncates an oversized value (its lengths are uint16), so anything that
    would not fit is refused here instead.
    """
    block = bytearray()
    for key, value in args.items():
        if not isinstance(key, bytes):
            raise TypeError(f"Spool file argument key {key!r} is not bytes.")
        if not isinstance(value, bytes):
            raise TypeError(f"Spool file argument {_short(key)} has a value that is not bytes.")
        if not key:
            raise ValueError("Spool file argument key b'' is empty, which uWSGI rejects.")
        if len(key) > MAX_ARGS_SIZE:
            raise ValueError(
                f"Spool file argument key {_short(key)} is {len(key)} bytes long; "
                f"the limit is {MAX_ARGS_SIZE}."
            )
        if len(value) > MAX_ARGS_SIZE:
            raise ValueError(
                f"Spool file argument {_short(key)} has a value of {len(value)} bytes; "
                f"the limit is {MAX_ARGS_SIZE}, put large data in the body."
            )
        block += _LENGTH.pack(len(key)) + key + _LENGTH.pack(len(value)) + value
    if len(block) > MAX_ARGS_SIZE:
        raise ValueError(
            f"Spool file arguments take {len(block)} bytes; uWSGI limits them to "
            f"{MAX_ARGS_SIZE}, put large data in the body."
        )
    return _HEADER.pack(_MODIFIER1, len(block), 0) + bytes(block) + bytes(body)


def decode(data: bytes, *, name: str = "<bytes>") -> tuple[dict[bytes, bytes], bytes]:
    """Split spool file *data* into its arguments and body; *name* goes into error messages.

    Accepts exactly what uWSGI's spooler hands to the Python callable, and additionally
    insists on the header modifiers uWSGI writes (17 and 0).  A later duplicate key wins,
    as in uWSGI.
    """

    def corrupt(why: str) -> SpoolFileError:
        return SpoolFileError(f"Spool file {name!r} is corrupt: {why}.")

    if len(data) < _HEADER.size:
        raise corrupt(f"it is {len(data)} bytes long, shorter than the 4-byte header")
    modifier1, size, modifier2 = _HEADER.unpack_from(data)
    if modifier1 != _MODIFIER1:
        raise corrupt(f"header modifier1 is {modifier1}, expected {_MODIFIER1}")
    if modifier2 != 0:
        raise corrupt(f"header modifier2 is {modifier2}, expected 0")
    available = len(data) - _HEADER.size
    if size > available:
        raise corrupt(f"header says {size} bytes of arguments but only {available} follow")

    args: dict[bytes, bytes] = {}
    pos, end = _HEADER.size, _HEADER.size + size
    while pos < end:
        offset = pos - _HEADER.size
        if end - pos < _LENGTH.size:
            raise corrupt(f"the argument at offset {offset} is cut short before its key length")
        (key_len,) = _LENGTH.unpack_from(data, pos)
        pos += _LENGTH.size
        if key_len == 0:
            raise corrupt(f"the argument at offset {offset} has an empty key")
        if key_len > end - pos:
            raise corrupt(
                f"the argument at offset {offset} declares a {key_len}-byte key "
                f"but only {end - pos} bytes follow"
            )
        key = bytes(data[pos : pos + key_len])
        pos += key_len
        if end - pos < _LENGTH.size:
            raise corrupt(f"the argument {_short(key)} is cut short before its value length")
        (value_len,) = _LENGTH.unpack_from(data, pos)
        pos += _LENGTH.size
        if value_len > end - pos:
            raise corrupt(
                f"the argument {_short(key)} declares a {value_len}-byte value "
                f"but only {end - pos} bytes follow"
            )
        args[key] = bytes(data[pos : pos + value_len])
        pos += value_len
    return args, bytes(data[end:])


@dataclass(frozen=True)
class SpoolFile:
    """A decoded spool file.  ``at`` is the file's mtime: the spooler runs it from ``int(at)``."""

    path: Path
    args: dict[bytes, bytes]
    body: bytes
    at: float

    @property
    def is_ours(self) -> bool:
        """Whether spoolcron wrote this file (as opposed to another ``uwsgi.spool()`` user)."""
        return MARKER in self.args


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
    data = encode(args, body)
    # Plain strings: pathlib costs more than the system calls on the enqueue hot path.
    directory = os.fspath(spool_dir)
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
    return Path(final)


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


def _held_file(path: str | os.PathLike[str]) -> SpoolFile | None:
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


def read(path: str | os.PathLike[str]) -> SpoolFile:
    """Read and decode the spool file at *path*.

    Raises :class:`SpoolFileError` if it is corrupt; :class:`FileNotFoundError` passes
    through.  A file ``uwsgi.spool()`` is still writing (it is locked, and may be empty for
    an instant) reads as corrupt: check :func:`is_locked` before calling it broken.
    """
    held = _held_file(path)
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
    if _held_file(path) is not None:
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
    if _held_file(path) is not None:
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
    while target.exists() or target.with_name(target.name + REASON_SUFFIX).exists():
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
        if _held_file(path) is None and not stack.enter_context(locked(path)):
            if not path.exists():
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
            raise BlockingIOError(
                errno.EAGAIN,
                f"Spool file {str(path)!r} is being run by a spooler and cannot be quarantined",
            )
        target = _free_target(failed, path.name)
        reason_path = target.with_name(target.name + REASON_SUFFIX)
        text = reason if reason.endswith("\n") else reason + "\n"
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=failed)
        try:
            with open(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, reason_path)
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


def check(path: str | os.PathLike[str], *, max_body: int) -> str | None:
    """Why uWSGI's spooler would never hand the file at *path* to Python; None if it would.

    uWSGI skips a file shorter than its header forever, deletes one whose arguments are cut
    short or malformed without a word, and reads the whole body into memory first: those
    files, and any whose body is over *max_body* bytes, get a one-sentence reason here so
    they can be quarantined instead. Only the header and the arguments are read.
    """
    name = os.fspath(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        header = fh.read(_HEADER.size)
        if len(header) == _HEADER.size:
            args_size = _HEADER.unpack(header)[1]
            header += fh.read(args_size)
    try:
        decode(header, name=name)
    except SpoolFileError as exc:
        return str(exc)
    body = size - len(header)
    if body > max_body:
        return (
            f"Spool file {name!r} is too large: its body is {body} bytes, over the "
            f"{max_body}-byte limit, so it was not read."
        )
    return None


# --- spool files whose spooler died while running them ---------------------------------
#
# uWSGI re-runs a file whose spooler was killed mid-task (kill -9, a reload, or
# --spooler-harakiri, which SIGKILLs it): a task that never returns would run forever.
# The spooler callable counts each start in a small file beside the spool dir's entries and
# removes it when the task returns; a count that survives says how often it died.

STARTS_DIR = ".spoolcron-starts"


def _starts_path(path: str | os.PathLike[str]) -> str:
    directory, name = os.path.split(os.fspath(path))
    return os.path.join(directory, STARTS_DIR, name)


def record_start(path: str | os.PathLike[str]) -> int:
    """Count one more start of the spool file at *path*; return how many came before.

    Never opens *path* itself (see :func:`hold`).
    """
    counter = _starts_path(path)
    try:
        with open(counter, encoding="ascii") as fh:
            before = int(fh.read() or 0)
    except FileNotFoundError:
        before = 0
    except ValueError:
        before = 0
    ensure_dir(os.path.dirname(counter))
    with open(counter, "w", encoding="ascii") as fh:
        fh.write(str(before + 1))
    return before


def clear_starts(path: str | os.PathLike[str]) -> None:
    """Forget the starts of the spool file at *path*: its task returned."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_starts_path(path))
