"""Django settings for the test suite (pytest-django reads them from setup.cfg)."""

import json
import os
import tempfile
from typing import Any

SECRET_KEY = "spoolcron-tests"
DEBUG = False
# The integration tests browse the admin served by uWSGI (test_database_entries_uwsgi.py).
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
if os.environ.get("SPOOLCRON_TEST_USE_TZ") == "0":
    # Processes started by tests/integration/test_use_tz_uwsgi.py: naive local time in a zone
    # that is not UTC.
    USE_TZ = False
    TIME_ZONE = "Europe/Rome"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "spoolcron",
    "tests.testapp",
]
try:
    import django.tasks  # noqa: F401  (Django 6.0+)
except ImportError:
    # Django 5.2: the django-tasks backport, an app of its own (its checks and signals).
    INSTALLED_APPS.insert(0, "django_tasks")
# Django's Tasks framework runs on spoolcron (tests/testapp/framework_tasks.py).
TASKS = {"default": {"BACKEND": "spoolcron.backends.SpoolerBackend"}}
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ROOT_URLCONF = "tests.urls"
DATABASES: dict[str, dict[str, Any]] = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SPOOLCRON_TEST_SQLITE", ":memory:"),
        # The spooler and the mule write at the same time as the test reads.
        "OPTIONS": {"timeout": 20},
    }
}
if os.environ.get("SPOOLCRON_TEST_PROCESS_DATABASE_URL"):
    # uWSGI processes started by the integration tests against PostgreSQL.
    from tests.postgres import django_database

    DATABASES["default"] = django_database(os.environ["SPOOLCRON_TEST_PROCESS_DATABASE_URL"])
    if os.environ.get("SPOOLCRON_TEST_CONN_MAX_AGE"):
        DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ["SPOOLCRON_TEST_CONN_MAX_AGE"])
    if os.environ.get("SPOOLCRON_TEST_PG_SCHEMA"):
        DATABASES["default"]["OPTIONS"] = {
            "options": f"-c search_path={os.environ['SPOOLCRON_TEST_PG_SCHEMA']}"
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Test-only secrets: tests.testapp.tasks has tasks that accept remote and nginx requests.
TEST_REMOTE_KEY = "spoolcron-test-remote-key-1"
TEST_NGINX_TOKEN = "spoolcron-test-nginx-token-1"
SPOOLCRON: dict[str, object] = {
    "SPOOL_DIR": os.environ.get("SPOOLCRON_SPOOL_DIR")
    or os.path.join(tempfile.gettempdir(), "spoolcron-tests", "spool"),
    "REMOTE_KEYS": [TEST_REMOTE_KEY],
    "NGINX_TOKENS": [TEST_NGINX_TOKEN],
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"spoolcron": {"handlers": ["console"], "level": "INFO"}},
}
if os.environ.get("SPOOLCRON_PENDING_DIR"):
    SPOOLCRON["PENDING_DIR"] = os.environ["SPOOLCRON_PENDING_DIR"]
if os.environ.get("SPOOLCRON_PENDING_STORE"):
    # tests/integration/test_pending_hosts.py: hosts sharing the database store.
    SPOOLCRON["PENDING_STORE"] = os.environ["SPOOLCRON_PENDING_STORE"]
if os.environ.get("SPOOLCRON_PENDING_LEASE"):
    SPOOLCRON["PENDING_LEASE"] = float(os.environ["SPOOLCRON_PENDING_LEASE"])
if os.environ.get("SPOOLCRON_TEST_QUEUES"):
    # tests/integration/test_queues_uwsgi.py: {"name": {"spool_dir": ..., "processes": N}}
    SPOOLCRON["QUEUES"] = json.loads(os.environ["SPOOLCRON_TEST_QUEUES"])
if os.environ.get("SPOOLCRON_TEST_SPOOLER_NICE"):
    nice = os.environ["SPOOLCRON_TEST_SPOOLER_NICE"]
    SPOOLCRON["SPOOLER_NICE"] = None if nice == "none" else int(nice)
if os.environ.get("SPOOLCRON_TEST_MODULES"):
    SPOOLCRON["MODULES"] = os.environ["SPOOLCRON_TEST_MODULES"].split(",")
