"""Where the PostgreSQL-backed tests find their server.

Set SPOOLCRON_TEST_DATABASE_URL=postgresql://USER@HOST:PORT/DBNAME to run them. Without it they
are skipped, except on CI (CI=true), where they use postgresql://root@127.0.0.1:5432/test and
fail loudly if that server is missing: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

CI_DEFAULT = "postgresql://root@127.0.0.1:5432/test"


def database_url() -> str | None:
    url = os.environ.get("SPOOLCRON_TEST_DATABASE_URL")
    if url:
        return url
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return CI_DEFAULT
    return None


def django_database(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"SPOOLCRON_TEST_DATABASE_URL must be a postgresql:// URL, not {url!r}.")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


def require_postgres() -> str:
    """The URL to use; skips the test when none is configured (never on CI)."""
    url = database_url()
    if url is None:
        pytest.skip(
            "needs PostgreSQL: set SPOOLCRON_TEST_DATABASE_URL=postgresql://user@host:5432/db"
        )
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {url} is not reachable: {exc}")
    return url
