"""A migrated database for the Django project that the integration tests run under uWSGI.

SQLite: a file per test, copied from one migrated once per session. PostgreSQL: a fresh
schema per test in the database of SPOOLCRON_TEST_DATABASE_URL (see tests/postgres.py).
The uWSGI processes get the matching environment from ``Database.env``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).parents[2]


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v0"],
        cwd=REPO,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **env},
        check=True,
        timeout=120,
    )


@dataclass
class Database:
    env: dict[str, str]
    sqlite_path: Path | None = None
    pg_url: str | None = None
    pg_schema: str | None = None

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the project's tables (e.g. spoolcron_run) as the uWSGI processes wrote them."""
        if self.sqlite_path is not None:
            with sqlite3.connect(self.sqlite_path, timeout=20) as db:
                return db.execute(sql, params).fetchall()
        import psycopg

        assert self.pg_url is not None
        with psycopg.connect(self.pg_url) as db:
            db.execute(f"SET search_path TO {self.pg_schema}")
            return list(db.execute(sql.replace("?", "%s"), params).fetchall())


def sqlite_database(template: Path, tmp_path: Path) -> Database:
    path = tmp_path / "db.sqlite3"
    shutil.copy(template, path)
    return Database(env={"SPOOLCRON_TEST_SQLITE": str(path)}, sqlite_path=path)


def sqlite_template(directory: Path) -> Path:
    path = directory / "template.sqlite3"
    migrate({"SPOOLCRON_TEST_SQLITE": str(path)})
    return path


def postgres_database(url: str) -> Database:
    import psycopg

    schema = f"spoolcron_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    env = {"SPOOLCRON_TEST_PROCESS_DATABASE_URL": url, "SPOOLCRON_TEST_PG_SCHEMA": schema}
    migrate(env)
    return Database(env=env, pg_url=url, pg_schema=schema)


def drop_postgres(database: Database) -> None:
    import psycopg

    assert database.pg_url is not None
    with psycopg.connect(database.pg_url, autocommit=True) as db:
        db.execute(f"DROP SCHEMA IF EXISTS {database.pg_schema} CASCADE")
