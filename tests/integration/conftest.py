"""Fixtures for tests that start real uWSGI processes (see harness.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from spoolcron.spool import files

from .harness import UwsgiProcess, free_port, uwsgi_binary
from .project import Database

APPS = Path(__file__).parent / "apps"
REPO = Path(__file__).parents[2]


@pytest.fixture(scope="session")
def uwsgi_bin() -> Path:
    """The uWSGI binary of the virtualenv running the tests; the test fails if it is missing."""
    binary = uwsgi_binary()
    if not os.access(binary, os.X_OK):
        pytest.fail(f"uWSGI binary {str(binary)!r} is missing: install the 'uwsgi' extra.")
    return binary


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    """An empty spool directory, mode 0700."""
    return files.ensure_dir(tmp_path / "spool")


@pytest.fixture
def http_port() -> int:
    return free_port()


RunUwsgi = Callable[..., UwsgiProcess]


@pytest.fixture
def run_uwsgi(uwsgi_bin: Path, tmp_path: Path) -> Iterator[RunUwsgi]:
    """Start uWSGI: ``run_uwsgi(*options, env=None, cwd=None)``; all are stopped after the test.

    The log goes to ``tmp_path/uwsgi-N.log``; ``cwd`` defaults to the repository root so
    ``spoolcron`` and ``tests`` import inside uWSGI.
    """
    started: list[UwsgiProcess] = []

    def start(
        *options: str,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
    ) -> UwsgiProcess:
        uwsgi = UwsgiProcess(
            *options,
            env=env,
            cwd=cwd if cwd is not None else REPO,
            log_path=tmp_path / f"uwsgi-{len(started) + 1}.log",
            binary=uwsgi_bin,
        )
        started.append(uwsgi)
        return uwsgi.start(timeout=timeout)

    try:
        yield start
    finally:
        for uwsgi in reversed(started):
            uwsgi.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from .project import sqlite_template

    return sqlite_template(tmp_path_factory.mktemp("db-template"))


@pytest.fixture
def project_db(sqlite_template: Path, tmp_path: Path) -> Database:
    """A migrated SQLite database file for the project run under uWSGI."""
    from .project import sqlite_database

    return sqlite_database(sqlite_template, tmp_path)


@pytest.fixture
def postgres_db() -> Iterator[Database]:
    """A migrated fresh schema on the PostgreSQL server of SPOOLCRON_TEST_DATABASE_URL."""
    from tests.postgres import require_postgres

    from .project import drop_postgres, postgres_database

    database = postgres_database(require_postgres())
    try:
        yield database
    finally:
        drop_postgres(database)
