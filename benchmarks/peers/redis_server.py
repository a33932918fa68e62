"""A private redis-server for the Celery peer: loopback, a free port, no persistence."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from benchmarks.peers import NotRun, spawn, wait_for
from tests.integration.harness import free_port

__all__ = ["find_redis_server", "redis_server", "redis_version"]


def find_redis_server() -> str:
    """The redis-server binary, or NotRun saying it is missing."""
    for candidate in (shutil.which("redis-server"), "/usr/sbin/redis-server"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise NotRun("not run: redis-server not found")


def redis_version() -> str:
    try:
        binary = find_redis_server()
    except NotRun as reason:
        return str(reason)
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """Start redis-server on 127.0.0.1 in *workdir*; yield its URL; stop it by its pid."""
    binary = find_redis_server()
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir),
        "--daemonize", "no",
    ]  # fmt: skip
    with spawn(argv, log_path=workdir / "redis.log", env={}, cwd=workdir) as redis:
        wait_for(lambda: redis.check("redis-server") or _answers(port), 20, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
