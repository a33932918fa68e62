from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from spoolcron import SpoolcronImproperlyConfigured
from spoolcron.conf import get_settings


def test_defaults(settings: Any) -> None:
    settings.SPOOLCRON = {"SPOOL_DIR": "/srv/spool"}
    conf = get_settings()
    assert conf.spool_dir == Path("/srv/spool")
    assert conf.failed_dir == Path("/srv/failed")
    assert (conf.fsync, conf.on_commit) == (False, True)
    assert conf.history_retention == timedelta(days=7)
    assert conf.failed_retention == timedelta(days=7)  # FAILED_DAYS follows HISTORY_DAYS
    assert (conf.pending_store, conf.horizon, conf.pending_lease) == ("files", 5.0, 60.0)
    assert conf.spooler_nice == 0


def test_spooler_nice(settings: Any) -> None:
    settings.SPOOLCRON = {"SPOOL_DIR": "/x", "SPOOLER_NICE": None}
    assert get_settings().spooler_nice is None
    settings.SPOOLCRON = {"SPOOL_DIR": "/x", "SPOOLER_NICE": -5}
    assert get_settings().spooler_nice == -5


def test_failed_days(settings: Any) -> None:
    settings.SPOOLCRON = {"SPOOL_DIR": "/x", "HISTORY_DAYS": 3}
    assert get_settings().failed_retention == timedelta(days=3)
    settings.SPOOLCRON = {"SPOOL_DIR": "/x", "HISTORY_DAYS": 3, "FAILED_DAYS": 30}
    assert get_settings().failed_retention == timedelta(days=30)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            {},
            "SPOOLCRON['SPOOL_DIR'] is not set; set it to the directory uWSGI's --spooler uses.",
            id="no_spool_dir",
        ),
        pytest.param(
            {"SPOOL_DIR": "/x", "SPOOL_DIRS": "/y"},
            "Unknown key 'SPOOL_DIRS' in the SPOOLCRON setting; valid keys are FAILED_DAYS, "
            "FAILED_DIR, FSYNC, HISTORY_DAYS, HORIZON, MAX_RETRY_DELAY, METRICS, MODULES, "
            "NGINX_TOKENS, ON_COMMIT, PENDING_DIR, PENDING_LEASE, PENDING_STORE, QUEUES, "
            "REMOTE_KEYS, REMOTE_TTL, RETRY_BACKOFF, SPOOLER_NICE, SPOOL_DIR.",
            id="unknown_key",
        ),
        pytest.param(
            {"SPOOL_DIR": "/x", "RETRY_BACKOFF": "2"},
            "SPOOLCRON['RETRY_BACKOFF'] must be a number of seconds >= 0, not '2'.",
            id="backoff_string",
        ),
        pytest.param(
            {"SPOOL_DIR": "/x", "HISTORY_DAYS": -1},
            "SPOOLCRON['HISTORY_DAYS'] must be a number of days >= 0, not -1.",
            id="negative_days",
        ),
        pytest.param(
            {"SPOOL_DIR": "/x", "FAILED_DAYS": "30"},
            "SPOOLCRON['FAILED_DAYS'] must be a number of days >= 0, not '30'.",
            id="failed_days_string",
        ),
        pytest.param(
            {"SPOOL_DIR": "/x", "PENDING_LEASE": 3},
            "SPOOLCRON['PENDING_LEASE'] must be a number of seconds >= 10, not 3.",
            id="lease_too_short",
        ),
        pytest.param(
            {"SPOOL_DIR": "/x", "METRICS": "yes"},
            "SPOOLCRON['METRICS'] must be True or False, not 'yes'.",
            id="metrics_string",
        ),
        pytest.param(
            {"SPOOL_DIR": "/x", "MODULES": "myapp.schedules"},
            "SPOOLCRON['MODULES'] must be a list of module names, not 'myapp.schedules'.",
            id="modules_string",
        ),
        pytest.param(
            {"SPOOL_DIR": "/x", "SPOOLER_NICE": 20},
            "SPOOLCRON['SPOOLER_NICE'] must be a nice value from -20 to 19 or None, not 20.",
            id="nice_out_of_range",
        ),
        pytest.param(
            {"SPOOL_DIR": "/x", "SPOOLER_NICE": True},
            "SPOOLCRON['SPOOLER_NICE'] must be a nice value from -20 to 19 or None, not True.",
            id="nice_bool",
        ),
        pytest.param(["/x"], "The SPOOLCRON setting must be a dict, not 'list'.", id="not_dict"),
    ],
)
def test_bad_settings(settings: Any, value: Any, message: str) -> None:
    settings.SPOOLCRON = value
    with pytest.raises(SpoolcronImproperlyConfigured) as info:
        get_settings()
    assert str(info.value) == message
