"""Django settings of the benchmark project: spoolcron plus the task the benchmarks time.

Paths come from the environment the benchmark sets for each run (see server.py):
SPOOLCRON_BENCH_SPOOL_DIR, SPOOLCRON_BENCH_SQLITE, SPOOLCRON_BENCH_RESULTS; and for the
pending-store scenarios SPOOLCRON_BENCH_PENDING_STORE ("files" or "database"),
SPOOLCRON_BENCH_PENDING_DIR, SPOOLCRON_BENCH_DATABASE_URL (postgresql://user@host:port/db,
instead of SQLite) with SPOOLCRON_BENCH_PG_SCHEMA (its search_path; see project/postgres.py).
"""

import os
import tempfile
from urllib.parse import unquote, urlsplit

SECRET_KEY = "spoolcron-benchmarks"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["spoolcron", "benchmarks.project"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "benchmarks.project.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SPOOLCRON_BENCH_SQLITE", ":memory:"),
        # The mule (claims) and the spooler (run history) write the same file.
        "OPTIONS": {"timeout": 20},
    }
}


def postgres_database(url: str, schema: str, application_name: str) -> dict[str, object]:
    """DATABASES["default"] for a postgresql:// URL, with *schema* as its search_path and a
    name for its connections in pg_stat_activity."""
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": {"options": f"-c search_path={schema}", "application_name": application_name},
    }


if os.environ.get("SPOOLCRON_BENCH_DATABASE_URL"):
    DATABASES["default"] = postgres_database(
        os.environ["SPOOLCRON_BENCH_DATABASE_URL"],
        os.environ.get("SPOOLCRON_BENCH_PG_SCHEMA", "public"),
        os.environ.get("SPOOLCRON_BENCH_PG_APP", "spoolcron-bench"),
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Signs and verifies the remote jobs of the benchmark (tasks.stamp_remote accepts them).
REMOTE_KEY = "spoolcron-benchmarks-remote-key"
SPOOLCRON: dict[str, object] = {
    "SPOOL_DIR": os.environ.get("SPOOLCRON_BENCH_SPOOL_DIR")
    or os.path.join(tempfile.gettempdir(), "spoolcron-bench", "spool"),
    "REMOTE_KEYS": [REMOTE_KEY],
}
if os.environ.get("SPOOLCRON_BENCH_PENDING_STORE"):
    SPOOLCRON["PENDING_STORE"] = os.environ["SPOOLCRON_BENCH_PENDING_STORE"]
if os.environ.get("SPOOLCRON_BENCH_PENDING_DIR"):
    SPOOLCRON["PENDING_DIR"] = os.environ["SPOOLCRON_BENCH_PENDING_DIR"]
# spoolcron's own INFO lines ("job started ... late_ms=...") go to the uWSGI log, which the
# benchmarks read: the same logging a production deployment would have on.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"spoolcron": {"handlers": ["console"], "level": "INFO"}},
}
