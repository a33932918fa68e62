"""The machine's PostgreSQL for the database pending store scenarios.

``postgres_schema()`` creates a schema of its own in the database of
``SPOOLCRON_BENCH_DATABASE_URL`` (default: the test suite's CI server,
postgresql://root@127.0.0.1:5432/test), migrates it in a separate process, yields the
environment that points the benchmark project at it (settings.py), and drops it on exit,
whatever happens. ``in_process()`` points this process's ``default`` connection at it for the
length of a block (the benchmark process enqueues into the store as a web process would).
Without a reachable server both raise :class:`benchmarks.peers.NotRun`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

from benchmarks.peers import NotRun
from benchmarks.project.server import migrate

__all__ = [
    "DEFAULT_URL",
    "analyze",
    "database_url",
    "in_process",
    "postgres_schema",
    "truncate",
]

DEFAULT_URL = "postgresql://root@127.0.0.1:5432/test"


def database_url() -> str:
    return os.environ.get("SPOOLCRON_BENCH_DATABASE_URL") or DEFAULT_URL


def _connect(url: str):  # type: ignore[no-untyped-def]
    try:
        import psycopg
    except ImportError as exc:
        raise NotRun("not run: psycopg is not installed") from exc
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise NotRun(f"not run: PostgreSQL at {url} is not reachable") from exc


@contextlib.contextmanager
def postgres_schema(url: str | None = None) -> Iterator[dict[str, str]]:
    """A migrated schema of its own; yields the project's environment for it."""
    url = url or database_url()
    schema = f"spoolcron_bench_{uuid.uuid4().hex[:10]}"
    env = {
        "SPOOLCRON_BENCH_DATABASE_URL": url,
        "SPOOLCRON_BENCH_PG_SCHEMA": schema,
        "SPOOLCRON_BENCH_PG_APP": f"spoolcron-bench-{schema}",
    }
    with _connect(url) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            migrate(Path(tmp) / "unused.sqlite3", env)
        yield env
    finally:
        with _connect(url) as db:
            db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def analyze(env: Mapping[str, str], table: str) -> None:
    """ANALYZE a table, as autovacuum would soon after a bulk load."""
    with _connect(env["SPOOLCRON_BENCH_DATABASE_URL"]) as db:
        db.execute(f"ANALYZE {env['SPOOLCRON_BENCH_PG_SCHEMA']}.{table}")


def truncate(env: Mapping[str, str], table: str) -> None:
    with _connect(env["SPOOLCRON_BENCH_DATABASE_URL"]) as db:
        db.execute(f"TRUNCATE {env['SPOOLCRON_BENCH_PG_SCHEMA']}.{table}")


@contextlib.contextmanager
def in_process(env: Mapping[str, str]) -> Iterator[None]:
    """This process's ``default`` database is the schema of ``env`` for the block."""
    from django.db import connections

    from benchmarks.project.settings import postgres_database

    config = postgres_database(
        env["SPOOLCRON_BENCH_DATABASE_URL"],
        env["SPOOLCRON_BENCH_PG_SCHEMA"],
        "spoolcron-bench-enqueuer",
    )
    saved_settings = connections.settings["default"]
    saved = connections["default"]
    connections.settings["default"] = connections.configure_settings({"default": config})["default"]
    connection = connections.create_connection("default")
    connections["default"] = connection
    try:
        yield
    finally:
        connection.close()
        connections["default"] = saved
        connections.settings["default"] = saved_settings
