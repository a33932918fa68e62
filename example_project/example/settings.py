"""Settings of the spoolcron demo project (SQLite and a local spool dir: nothing to set up).

Everything the demo writes lives in one directory, ``example_project/var/`` (gitignored), or
the one named by the ``DEMO_VAR_DIR`` environment variable (``run_demo.py --var-dir`` sets
it, so the tests run the demo in a temporary directory).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DEMO_VAR_DIR") or BASE_DIR / "var").resolve()

SECRET_KEY = "demo-only-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "Europe/Rome"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "spoolcron",
    "example",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# The home page shows the live tables in an <iframe> of its own.
X_FRAME_OPTIONS = "SAMEORIGIN"
ROOT_URLCONF = "example.urls"
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
WSGI_APPLICATION = "example.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "db.sqlite3",
        # Workers, the spooler and the mule write to the one file at the same time.
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"
# `run_demo.py` collects the admin's files here and uWSGI serves them (static-map).
STATIC_ROOT = VAR_DIR / "static"

SPOOLCRON = {"SPOOL_DIR": str(VAR_DIR / "spool")}

# spoolcron's INFO lines (the beat, each job with its lateness) and the example's own lines,
# on the console uWSGI logs to. Django sets the process's zone to TIME_ZONE, so the times
# below are Rome's.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {
            "format": "{asctime}.{msecs:03.0f} {levelname:<7} {name:<18} {message}",
            "datefmt": "%H:%M:%S",
            "style": "{",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "console"}},
    "loggers": {
        "spoolcron": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "example": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
