"""Django settings of the benchmark project: spoolcron plus the task the benchmarks time.

Paths come from the environment the benchmark sets for each run (see server.py).
"""

import os
import tempfile

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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SPOOLCRON = {
    "SPOOL_DIR": os.environ.get("SPOOLCRON_BENCH_SPOOL_DIR")
    or os.path.join(tempfile.gettempdir(), "spoolcron-bench", "spool"),
}
# spoolcron's own INFO lines ("job started ... late_ms=...") go to the uWSGI log, which the
# benchmarks read: the same logging a production deployment would have on.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"spoolcron": {"handlers": ["console"], "level": "INFO"}},
}
