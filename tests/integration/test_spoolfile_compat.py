"""spoolcron.spoolfile against a real uWSGI: byte compatibility both ways, ``at``, locks."""

from __future__ import annotations

import json
import math
import os
import signal
import struct
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from spoolcron.spool import codec, files, locks

from .conftest import APPS, RunUwsgi
from .harness import UwsgiProcess, pid_alive, wait_until

pytestmark = pytest.mark.uwsgi

ARGS = {
    codec.MARKER: b"1",
    b"task": b"tests.compat",
    b"binary": bytes(range(256)),
    b"empty": b"",
    b"unicode \xc3\xa9": "caf\u00e9 \u2603".encode(),
}
BODY = os.urandom(200_000)  # well past the 64 KiB argument limit: the body has none


class Server:
    """A uWSGI with the compat WSGI app, a spooler on ``spool_dir`` and the recording callable."""

    def __init__(self, uwsgi: UwsgiProcess, port: int, spool_dir: Path, results: Path) -> None:
        self.uwsgi = uwsgi
        self.port = port
        self.spool_dir = spool_dir
        self.results = results

    def get(self, route: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{route}", timeout=10) as resp:
            return json.load(resp)

    def post(self, route: str, payload: object) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{route}",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.load(resp)

    def result(self, name: str, suffix: str = ".json", timeout: float = 10.0) -> dict[str, Any]:
        path = self.results / f"{name}{suffix}"
        self.uwsgi.wait_until(path.exists, timeout, message=f"the spooler to record {name}")
        record: dict[str, Any] = json.loads(path.read_text())
        return record

    def ran(self, name: str) -> bool:
        return (self.results / f"{name}.json").exists()


@pytest.fixture
def start_server(run_uwsgi: RunUwsgi, spool_dir: Path, tmp_path: Path, http_port: int) -> Any:
    def start(*extra: str, frequency: int = 1) -> Server:
        results = tmp_path / "results"
        results.mkdir(exist_ok=True)
        uwsgi = run_uwsgi(
            "--http-socket",
            f"127.0.0.1:{http_port}",
            "--wsgi-file",
            str(APPS / "compat_wsgi.py"),
            "--spooler",
            str(spool_dir),
            "--spooler-import",
            str(APPS / "compat_spooler.py"),
            "--spooler-frequency",
            str(frequency),
            *extra,
            env={"SPOOLCRON_TEST_RESULTS": str(results)},
        )
        return Server(uwsgi, http_port, spool_dir, results)

    return start


def unhex(mapping: dict[str, str]) -> dict[bytes, bytes]:
    return {bytes.fromhex(k): bytes.fromhex(v) for k, v in mapping.items()}


def name(label: str) -> str:
    return f"{codec.PREFIX}{label}_{os.getpid()}_{time.monotonic_ns()}"


def test_uwsgi_runs_a_file_we_wrote(start_server: Any) -> None:
    server = start_server()
    path = files.write(server.spool_dir, name("ours"), ARGS, BODY, at=time.time())

    record = server.result(path.name)

    assert unhex(record["args"]) == ARGS
    assert bytes.fromhex(record["body"]) == BODY
    # Python 3: argument keys are bytes; these two are str keys, the task name a bytes value.
    assert record["str_keys"] == ["body", "spooler_task_name"]
    assert record["task_name"] == path.name
    assert record["task_name_type"] == "bytes"
    assert record["cwd"] == str(server.spool_dir)
    server.uwsgi.wait_until(lambda: not path.exists(), 5, message="uWSGI to delete the done file")


def test_uwsgi_parsefile_and_spooler_get_task_read_a_file_we_wrote(start_server: Any) -> None:
    server = start_server()
    path = files.write(server.spool_dir, name("parse"), ARGS, BODY, at=time.time() + 3600)

    parsed = server.get(f"/parsefile?path={path}")
    task = server.get(f"/get_task?path={path}")

    assert unhex(parsed) == ARGS
    assert bytes.fromhex(task.pop("str:body")) == BODY
    assert bytes.fromhex(task.pop("str:spooler_task_name")) == str(path).encode()
    assert unhex(task) == ARGS
    assert path.exists()
    assert not server.ran(path.name)


def test_we_read_a_file_uwsgi_wrote(start_server: Any) -> None:
    server = start_server()
    at = int(time.time()) + 3600  # in the future, so the spooler leaves it for us to read
    sent = {**ARGS, b"at": str(at).encode()}

    filename = server.post(
        "/spool", {"args": {k.hex(): v.hex() for k, v in sent.items()}, "body": BODY.hex()}
    )

    spool_file = files.read(filename)
    assert spool_file.path.parent == server.spool_dir
    assert spool_file.path.name.startswith(codec.PREFIX)
    assert spool_file.args == sent
    assert spool_file.body == BODY
    assert spool_file.at == at
    assert spool_file.is_ours
    assert files.list_files(server.spool_dir) == [spool_file.path]
    assert not locks.is_locked(filename)


def test_at_is_honoured_to_the_second(start_server: Any) -> None:
    server = start_server(frequency=1)
    at = math.floor(time.time()) + 3
    path = files.write(server.spool_dir, name("at"), ARGS, at=at)

    record = server.result(path.name, timeout=10)

    assert at <= record["started"] < at + 3


def test_sigusr1_wakes_the_idle_spooler_at_once(start_server: Any) -> None:
    server = start_server(frequency=120)
    first = files.write(server.spool_dir, name("first"), ARGS)
    server.result(first.name)  # the spooler has scanned and now sleeps for 120 s
    second = files.write(server.spool_dir, name("second"), ARGS)
    with pytest.raises(AssertionError):
        wait_until(lambda: server.ran(second.name), 1.5, message="no run before the wake-up")

    (pid,) = server.uwsgi.spooler_pids()
    os.kill(pid, signal.SIGUSR1)

    record = server.result(second.name, timeout=3)
    assert record["pid"] == pid


def test_a_running_file_is_locked_and_cannot_be_cancelled(
    start_server: Any, tmp_path: Path
) -> None:
    server = start_server()
    release = tmp_path / "release"
    running = files.write(
        server.spool_dir, name("slow"), {**ARGS, b"block_until": str(release).encode()}
    )
    pending = files.write(server.spool_dir, name("pending"), ARGS, at=time.time() + 3600)
    started = server.result(running.name, suffix=".started")
    (spooler_pid,) = server.uwsgi.spooler_pids()

    assert started["pid"] == spooler_pid
    assert locks.is_locked(running)
    assert locks.lock_owner(running) == spooler_pid
    assert locks.remove_if_unlocked(running) is False
    with pytest.raises(BlockingIOError, match="is being run by a spooler"):
        files.quarantine(running, tmp_path / "failed", "no")
    assert running.exists()

    assert not locks.is_locked(pending)
    assert locks.lock_owner(pending) is None
    assert locks.remove_if_unlocked(pending) is True
    assert not pending.exists()
    assert locks.remove_if_unlocked(pending) is False

    release.touch()
    server.result(running.name)
    server.uwsgi.wait_until(lambda: not running.exists(), 5, message="the done file to go")
    assert not locks.is_locked(running)
    assert "OOOPS" not in server.uwsgi.log()  # the spooler never died


def test_closing_the_running_file_inside_the_spooler_drops_uwsgi_lock(
    start_server: Any, tmp_path: Path
) -> None:
    # The hazard hold() exists for: POSIX locks die with ANY close() of the file in the
    # process that holds them, so the spooler's own task must never open its file.
    server = start_server()
    release = tmp_path / "release"
    path = files.write(
        server.spool_dir,
        name("touch"),
        {**ARGS, b"touch_self": b"1", b"block_until": str(release).encode()},
    )
    server.result(path.name, suffix=".started")

    assert not locks.is_locked(path)  # still running, but the lock is gone

    release.touch()
    server.result(path.name)


def test_hold_keeps_uwsgi_lock_while_the_task_looks_at_its_own_file(
    start_server: Any, tmp_path: Path
) -> None:
    server = start_server()
    release = tmp_path / "release"
    args = {**ARGS, b"use_hold": b"1", b"block_until": str(release).encode()}
    path = files.write(server.spool_dir, name("hold"), args, BODY)
    started = server.result(path.name, suffix=".started")

    assert unhex(started["hold_read_args"]) == args
    assert started["hold_lock_owner"] == started["pid"]
    assert started["hold_remove"] is False
    assert locks.lock_owner(path) == started["pid"]

    release.touch()
    server.result(path.name)
    server.uwsgi.wait_until(lambda: not path.exists(), 5, message="the done file to go")


@pytest.mark.parametrize(("returned", "spooler_dies"), [(-1, False), (-2, True)])
def test_quarantine_inside_the_spooler_must_return_retry(
    start_server: Any, tmp_path: Path, returned: int, spooler_dies: bool
) -> None:
    server = start_server()
    failed = tmp_path / "failed"
    (before,) = server.uwsgi.spooler_pids()
    path = files.write(
        server.spool_dir,
        name("quarantined"),
        {**ARGS, b"quarantine_to": str(failed).encode(), b"return": str(returned).encode()},
    )
    server.result(path.name)
    # A sentinel run afterwards proves the spooler is back in its loop (or was respawned).
    sentinel = files.write(server.spool_dir, name("after"), ARGS)
    server.result(sentinel.name)

    assert (failed / path.name).exists()
    assert (failed / f"{path.name}.reason.txt").read_text() == "test\n"
    # SPOOL_OK makes uWSGI unlink the moved file by name, fail, and exit(1) the spooler.
    assert ("something horrible happened to the spooler" in server.uwsgi.log()) is spooler_dies
    assert (server.uwsgi.spooler_pids() != [before]) is spooler_dies


def _raw(spool_dir: Path, label: str, data: bytes) -> Path:
    tmp = spool_dir / f".raw-{label}"
    tmp.write_bytes(data)
    final = spool_dir / name(label)
    os.replace(tmp, final)
    return final


def test_what_uwsgi_does_with_corrupt_files(start_server: Any) -> None:
    server = start_server()
    # Fewer than 4 bytes: skipped at every scan, kept forever.
    short = _raw(server.spool_dir, "short", b"\x11\x00")
    # Header promises more argument bytes than the file has: deleted, never run, one log line.
    truncated = _raw(server.spool_dir, "truncated", struct.pack("<BHB", 17, 120, 0) + b"1234567")
    # Arguments uWSGI cannot parse (empty key): the Python spooler calls it done, deleted.
    empty_key = _raw(
        server.spool_dir, "emptykey", struct.pack("<BHB", 17, 5, 0) + b"\x00\x00\x01\x00x"
    )
    # modifier1 is never checked by the spooler: this one runs.
    good_args = codec.encode({b"k": b"v"})
    other_modifier = _raw(server.spool_dir, "mod", b"\x00" + good_args[1:])

    for path in (truncated, empty_key, other_modifier):
        server.uwsgi.wait_until(lambda p=path: not p.exists(), 10, message=f"{path.name} to go")
    sentinel = files.write(server.spool_dir, name("sentinel"), ARGS)
    server.result(sentinel.name)
    server.uwsgi.wait_until(lambda: not sentinel.exists(), 5, message="the sentinel to go")

    assert short.exists()
    assert not server.ran(short.name)
    assert not server.ran(truncated.name)
    assert not server.ran(empty_key.name)
    assert unhex(server.result(other_modifier.name)["args"]) == {b"k": b"v"}
    assert "spooler_manage_task()/read()" in server.uwsgi.log()


def test_harness_stops_every_process_it_started(run_uwsgi: RunUwsgi, spool_dir: Path) -> None:
    uwsgi = run_uwsgi(
        "--http-socket", "127.0.0.1:0", "--spooler", str(spool_dir), "--processes", "2"
    )

    # Ready means it serves; the second worker may still be forking (seen on a busy machine).
    def all_four() -> list[int] | None:
        pids = [uwsgi.pid, *uwsgi.spooler_pids(), *uwsgi.worker_pids()]
        return pids if len(pids) == 4 else None

    pids = wait_until(all_four, 10, message="the master, its spooler and two workers")

    uwsgi.stop()

    # Orphans the master did not reap are zombies until init gets to them: they count as gone.
    wait_until(lambda: not any(pid_alive(pid) for pid in pids), 5, message="every pid to go")


def test_harness_reports_a_failed_start(run_uwsgi: RunUwsgi) -> None:
    with pytest.raises(AssertionError, match=r"uWSGI exited with status \d+ while starting"):
        run_uwsgi("--http-socket", "127.0.0.1:0", "--no-such-option")
