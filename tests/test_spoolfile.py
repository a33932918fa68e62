"""Unit tests for spoolcron.spoolfile (no uWSGI; tests/integration/ proves it against one)."""

from __future__ import annotations

import os
import re
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spoolcron.exceptions import SpoolFileError
from spoolcron.spool import codec, files, locks
from spoolcron.spool.codec import PREFIX

NAME = PREFIX + "unit"

keys = st.binary(min_size=1, max_size=40)
values = st.binary(max_size=300)
arg_dicts = st.dictionaries(keys, values, max_size=12)


def header(size: int, modifier1: int = 17, modifier2: int = 0) -> bytes:
    return struct.pack("<BHB", modifier1, size, modifier2)


def exactly(message: str) -> str:
    return "^" + re.escape(message) + "$"


def pair(key: bytes, value: bytes) -> bytes:
    return struct.pack("<H", len(key)) + key + struct.pack("<H", len(value)) + value


# --- codec --------------------------------------------------------------------------------


@given(arg_dicts, st.binary(max_size=2000))
def test_encode_decode_round_trip(args: dict[bytes, bytes], body: bytes) -> None:
    assert codec.decode(codec.encode(args, body)) == (args, body)


def test_encode_layout_matches_uwsgi() -> None:
    data = codec.encode({b"ab": b"xyz", b"k": b""}, b"BODY")

    assert data == header(14) + b"\x02\x00ab\x03\x00xyz" + b"\x01\x00k\x00\x00" + b"BODY"


def test_encode_accepts_the_largest_block() -> None:
    value = b"v" * (0xFFFF - 2 - 1 - 2)
    args, body = codec.decode(codec.encode({b"k": value}))
    assert args == {b"k": value}
    assert body == b""


def test_encode_refuses_an_empty_key() -> None:
    with pytest.raises(ValueError, match=r"^Spool file argument key b'' is empty, which uWSGI"):
        codec.encode({b"": b"x"})


def test_encode_refuses_an_oversized_key() -> None:
    key = b"k" * 65536
    message = f"Spool file argument key {b'k' * 32!r}... is 65536 bytes long; the limit is 65535."
    with pytest.raises(ValueError, match=exactly(message)):
        codec.encode({key: b""})


def test_encode_refuses_an_oversized_value() -> None:
    message = (
        "Spool file argument b'payload' has a value of 70000 bytes; the limit is 65535, "
        "put large data in the body."
    )
    with pytest.raises(ValueError, match=exactly(message)):
        codec.encode({b"payload": b"x" * 70000})


def test_encode_refuses_an_oversized_block() -> None:
    message = (
        "Spool file arguments take 80010 bytes; uWSGI limits them to 65535, "
        "put large data in the body."
    )
    with pytest.raises(ValueError, match=exactly(message)):
        codec.encode({b"a": b"x" * 40000, b"b": b"y" * 40000})


def test_encode_refuses_str() -> None:
    with pytest.raises(TypeError, match=r"^Spool file argument key 'a' is not bytes\.$"):
        codec.encode({"a": b"x"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"^Spool file argument b'a' has a value that is not"):
        codec.encode({b"a": "x"})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "it is 0 bytes long, shorter than the 4-byte header"),
        (b"\x11\x00", "it is 2 bytes long, shorter than the 4-byte header"),
        (header(0, modifier1=0), "header modifier1 is 0, expected 17"),
        (header(0, modifier2=3), "header modifier2 is 3, expected 0"),
        (header(120) + b"1234567", "header says 120 bytes of arguments but only 7 follow"),
        (header(1) + b"\x01", "the argument at offset 0 is cut short before its key length"),
        (header(4) + b"\x00\x00\x00\x00", "the argument at offset 0 has an empty key"),
        (
            header(10) + pair(b"a", b"b") + b"\x09\x00ab",
            "the argument at offset 6 declares a 9-byte key but only 2 bytes follow",
        ),
        (header(3) + b"\x01\x00a", "the argument b'a' is cut short before its value length"),
        (
            header(6) + b"\x01\x00a\x05\x00x",
            "the argument b'a' declares a 5-byte value but only 1 bytes follow",
        ),
    ],
)
def test_decode_names_the_corruption(data: bytes, why: str) -> None:
    with pytest.raises(SpoolFileError) as info:
        codec.decode(data, name="/x/uwsgi_spoolfile_on_a")
    assert str(info.value) == f"Spool file '/x/uwsgi_spoolfile_on_a' is corrupt: {why}."


def test_decode_keeps_the_last_duplicate_key_like_uwsgi() -> None:
    data = header(12) + pair(b"k", b"1") + pair(b"k", b"2")
    assert codec.decode(data) == ({b"k": b"2"}, b"")


def test_spool_file_error_is_a_value_error() -> None:
    assert issubclass(SpoolFileError, ValueError)


# --- write / read / list ----------------------------------------------------------------


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return files.ensure_dir(tmp_path / "spool")


def test_write_then_read(spool: Path) -> None:
    at = 1_900_000_000.25
    path = files.write(spool, NAME, {codec.MARKER: b"1"}, b"body", at=at)

    assert path == spool / NAME
    sf = files.read(path)
    assert sf == codec.SpoolFile(path=path, args={b"spoolcron": b"1"}, body=b"body", at=at)
    assert sf.is_ours
    assert os.stat(path).st_mtime == at
    assert int(os.stat(path).st_mtime) == 1_900_000_000  # what uWSGI compares with time(NULL)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(spool) == [NAME]


def test_write_without_at_is_due_now(spool: Path) -> None:
    before = time.time()
    sf = files.read(files.write(spool, NAME, {b"k": b"v"}))
    assert before - 1 <= sf.at <= time.time() + 1
    assert not sf.is_ours


def test_write_with_fsync(spool: Path) -> None:
    path = files.write(spool, NAME, {b"k": b"v"}, fsync=True, exclusive=True)
    assert files.read(path).args == {b"k": b"v"}


def test_write_replaces_by_default(spool: Path) -> None:
    files.write(spool, NAME, {b"n": b"1"})
    files.write(spool, NAME, {b"n": b"2"})
    assert files.read(spool / NAME).args == {b"n": b"2"}


def test_exclusive_write_keeps_the_first_file(spool: Path) -> None:
    files.write(spool, NAME, {b"n": b"1"}, at=100, exclusive=True)

    with pytest.raises(FileExistsError) as info:
        files.write(spool, NAME, {b"n": b"2"}, at=200, exclusive=True)

    assert info.value.filename == str(spool / NAME)
    first = files.read(spool / NAME)
    assert (first.args, first.at) == ({b"n": b"1"}, 100)
    assert os.listdir(spool) == [NAME]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("job", "Spool file name 'job' does not start with 'uwsgi_spoolfile_on_'."),
        (PREFIX, "Spool file name 'uwsgi_spoolfile_on_' has nothing after the prefix."),
        (PREFIX + "a/b", "Spool file name 'uwsgi_spoolfile_on_a/b' contains '/' or a NUL byte."),
        (PREFIX + "a\0", "Spool file name 'uwsgi_spoolfile_on_a\\x00' contains '/' or a NUL byte."),
    ],
)
def test_write_refuses_bad_names(spool: Path, name: str, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        files.write(spool, name, {b"k": b"v"})
    assert os.listdir(spool) == []


@pytest.mark.parametrize("failing", ["utime", "fsync", "link", "replace"])
def test_failed_write_leaves_nothing(
    spool: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match="No space left"):
        files.write(spool, NAME, {b"k": b"v"}, at=1.0, fsync=True, exclusive=failing == "link")
    monkeypatch.undo()
    assert os.listdir(spool) == []


def test_encoding_errors_happen_before_any_file(spool: Path) -> None:
    with pytest.raises(ValueError, match="limit"):
        files.write(spool, NAME, {b"k": b"x" * 70000})
    assert os.listdir(spool) == []


def test_read_passes_file_not_found_through(spool: Path) -> None:
    with pytest.raises(FileNotFoundError):
        files.read(spool / NAME)


def test_read_names_the_corrupt_file(spool: Path) -> None:
    path = spool / NAME
    path.write_bytes(header(120) + b"1234567")
    message = f"Spool file {str(path)!r} is corrupt: header says 120 bytes of arguments"
    with pytest.raises(SpoolFileError, match=exactly(message + " but only 7 follow.")):
        files.read(path)


def test_list_files_only_lists_spool_files(spool: Path) -> None:
    b = files.write(spool, PREFIX + "b", {b"k": b"v"})
    a = files.write(spool, PREFIX + "a", {b"k": b"v"})
    (spool / ".spoolcron-tmp-xyz").write_bytes(b"partial")
    (spool / "other").write_bytes(b"")
    (spool / (PREFIX + "dir")).mkdir()
    (spool / "7").mkdir()
    (spool / (PREFIX + "link")).symlink_to(a)

    assert files.list_files(spool) == [a, b]


# --- locks ------------------------------------------------------------------------------


@pytest.fixture
def foreign_lock() -> Iterator[Callable[[Path], int]]:
    """Lock a file like the uWSGI spooler does (fcntl F_SETLK, F_WRLCK), from another process."""
    children: list[subprocess.Popen[str]] = []

    def lock(path: Path) -> int:
        code = (
            "import fcntl, os, sys\n"
            f"fd = os.open({str(path)!r}, os.O_RDWR)\n"
            "fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n"
        )
        child = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        children.append(child)
        assert child.stdout is not None
        assert child.stdout.readline() == "locked\n"
        return child.pid

    yield lock
    for child in children:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)


def test_lock_state_of_a_pending_file(spool: Path) -> None:
    path = files.write(spool, NAME, {b"k": b"v"})
    assert locks.lock_owner(path) is None
    assert not locks.is_locked(path)
    assert not locks.is_locked(spool / (PREFIX + "missing"))


def test_a_locked_file_is_reported_and_not_removed(
    spool: Path, foreign_lock: Callable[[Path], int]
) -> None:
    path = files.write(spool, NAME, {b"k": b"v"})
    pid = foreign_lock(path)

    assert locks.lock_owner(path) == pid
    assert locks.is_locked(path)
    assert locks.remove_if_unlocked(path) is False
    assert path.exists()
    with pytest.raises(BlockingIOError) as info:
        files.quarantine(path, spool.parent / "failed", "broken")
    assert info.value.strerror == (
        f"Spool file {str(path)!r} is being run by a spooler and cannot be quarantined"
    )
    assert path.exists()


def test_portable_lock_test_fallback(spool: Path, foreign_lock: Callable[[Path], int]) -> None:
    path = files.write(spool, NAME, {b"k": b"v"})
    fd = os.open(path, os.O_RDWR)
    try:
        assert locks._lock_owner_by_trying(fd) is None
        foreign_lock(path)
        assert locks._lock_owner_by_trying(fd) == 0
    finally:
        os.close(fd)


def test_remove_if_unlocked(spool: Path) -> None:
    path = files.write(spool, NAME, {b"k": b"v"})
    assert locks.remove_if_unlocked(path) is True
    assert not path.exists()
    assert locks.remove_if_unlocked(path) is False


def test_hold_answers_for_the_running_file_without_opening_it(
    spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = files.write(spool, NAME, {b"k": b"v"}, b"body", at=123)
    with locks.hold(path, {b"k": b"v"}, b"body") as held:
        monkeypatch.setattr(os, "open", None)  # any open() of the file would fail loudly
        monkeypatch.setattr("builtins.open", None)
        assert held == codec.SpoolFile(path, {b"k": b"v"}, b"body", 123)
        assert files.read(str(path)) == held
        assert locks.lock_owner(path) == os.getpid()
        assert locks.is_locked(path)
        assert locks.remove_if_unlocked(path) is False
        monkeypatch.undo()
        other = files.write(spool, PREFIX + "other", {b"k": b"v"})
        assert not locks.is_locked(other)
    assert not locks.is_locked(path)
    assert locks.remove_if_unlocked(path) is True


# --- quarantine and directories -----------------------------------------------------------


def test_quarantine_moves_the_file_and_writes_the_reason(spool: Path) -> None:
    path = files.write(spool, NAME, {b"k": b"v"}, b"body", at=1000)
    failed = spool.parent / "deep" / "failed"

    moved = files.quarantine(path, failed, "Traceback (most recent call last):\n  boom")

    assert moved == failed / NAME
    assert not path.exists()
    assert files.read(moved) == codec.SpoolFile(moved, {b"k": b"v"}, b"body", 1000)
    reason = failed / (NAME + ".reason.txt")
    assert reason.read_text() == "Traceback (most recent call last):\n  boom\n"
    assert stat.S_IMODE(failed.stat().st_mode) == 0o700
    assert sorted(os.listdir(failed)) == [NAME, NAME + ".reason.txt"]


def test_quarantine_never_overwrites(spool: Path) -> None:
    failed = spool.parent / "failed"
    first = files.quarantine(files.write(spool, NAME, {b"n": b"1"}), failed, "one")
    second = files.quarantine(files.write(spool, NAME, {b"n": b"2"}), failed, "two\n")

    assert second == failed / (NAME + ".1")
    assert files.read(first).args == {b"n": b"1"}
    assert files.read(second).args == {b"n": b"2"}
    assert (failed / (NAME + ".1.reason.txt")).read_text() == "two\n"


def test_quarantine_of_the_held_file(spool: Path) -> None:
    path = files.write(spool, NAME, {b"k": b"v"})
    with locks.hold(path, {b"k": b"v"}):
        moved = files.quarantine(path, spool.parent / "failed", "bad")
    assert moved.exists()
    assert not path.exists()


def test_quarantine_of_a_missing_file(spool: Path) -> None:
    with pytest.raises(FileNotFoundError):
        files.quarantine(spool / NAME, spool.parent / "failed", "gone")


def test_ensure_dir_creates_parents(tmp_path: Path) -> None:
    made = files.ensure_dir(tmp_path / "a" / "b")
    assert made == tmp_path / "a" / "b"
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    assert files.ensure_dir(made) == made


def test_ensure_dir_creates_0700_despite_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o277)
    try:
        made = files.ensure_dir(tmp_path / "spool")
    finally:
        os.umask(old)
    assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_ensure_dir_leaves_an_existing_dir_alone(tmp_path: Path) -> None:
    existing = tmp_path / "shared"
    existing.mkdir(mode=0o750)
    os.chmod(existing, 0o750)
    files.ensure_dir(existing)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o750
