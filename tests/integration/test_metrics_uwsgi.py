"""The Prometheus endpoint of a real uWSGI: the spooler's and the mule's counts, scraped from a
worker in multiprocess mode (PROMETHEUS_MULTIPROC_DIR), move between two scrapes of a run."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Outside CI a venv without the `metrics` extra skips this test; in CI it must run.
if os.environ.get("CI", "").lower() in ("1", "true"):
    import prometheus_client  # noqa: F401
else:
    pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families

from spoolcron.core import signals
from spoolcron.spool import files
from tests.conftest import Runs

from .conftest import RunUwsgi
from .harness import UwsgiProcess, free_port, wait_until
from .project import Database
from .test_beat_uwsgi import beat_options

pytestmark = [pytest.mark.uwsgi, pytest.mark.django_db(transaction=True)]

ENTRY = "every-second"  # tests/integration/apps/beat_every_second.py
RECORD = "tests.testapp.tasks.record"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """The endpoint's samples, parsed as Prometheus text (a parse error fails the test)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics/", timeout=10) as reply:
        assert reply.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape_until(
    uwsgi: UwsgiProcess, port: int, ready: Callable[[Samples], bool], message: str
) -> Samples:
    found: list[Samples] = []

    def check() -> bool:
        found[:] = [scrape(port)]
        return ready(found[0])

    # A scrape every 0.2 s: the web workers also serve the jobs' enqueueing.
    wait_until(check, 20, interval=0.2, message=message, uwsgi=uwsgi)
    return found[0]


@pytest.fixture
def server(
    run_uwsgi: RunUwsgi, tmp_path: Path, settings: Any, runs: Runs, project_db: Database
) -> tuple[UwsgiProcess, int]:
    spool = files.ensure_dir(tmp_path / "spool")
    settings.SPOOLCRON = {"SPOOL_DIR": str(spool)}
    # A counts file left by a previous run: the README's exec-asap line empties the directory.
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    (multiproc / "counter_1.db").write_bytes(b"stale")
    port = free_port()
    uwsgi = run_uwsgi(
        *beat_options(
            spool,
            "--processes=2",
            f'--exec-asap=mkdir -p {multiproc} && find {multiproc} -name "*.db" -delete',
            port=port,
        ),
        env={
            "DJANGO_SETTINGS_MODULE": "tests.integration.metrics_settings",
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
            "SPOOLCRON_SPOOL_DIR": str(spool),
            "SPOOLCRON_TEST_RESULTS": str(runs.directory),
            "SPOOLCRON_TEST_MODULES": "tests.integration.apps.beat_every_second",
            **project_db.env,
        },
    )
    uwsgi.wait_for_log("spoolcron mule started")
    assert not (multiproc / "counter_1.db").exists()
    return uwsgi, port


def test_counters_move_between_two_scrapes(server: tuple[UwsgiProcess, int], runs: Runs) -> None:
    uwsgi, port = server
    entry = {"entry": ENTRY, "task": RECORD}
    first = scrape_until(
        uwsgi,
        port,
        lambda s: sample(s, "spoolcron_job_outcomes_total", **entry, outcome="succeeded") >= 1,
        "a first success of the every-second entry in the metrics",
    )
    assert sample(first, "spoolcron_state_up") == 1
    for n in range(3):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/enqueue/?label=job-{n}") as reply:
            assert json.load(reply)["id"]
    one_off = {"entry": "", "task": RECORD}
    started = time.monotonic()
    second = scrape_until(
        uwsgi,
        port,
        lambda s: (
            sample(s, "spoolcron_job_outcomes_total", **one_off, outcome="succeeded") >= 3
            # Finished, not only started: its duration is counted when it ends.
            and sample(s, "spoolcron_job_duration_seconds_count", **entry)
            > sample(first, "spoolcron_job_duration_seconds_count", **entry)
        ),
        "the three jobs and one more finished fire in the metrics",
    )
    # Counted in the spooler, read in a worker.
    for name in (
        "spoolcron_jobs_started_total",
        "spoolcron_job_lateness_seconds_count",
        "spoolcron_job_duration_seconds_count",
    ):
        assert sample(second, name, **entry) > sample(first, name, **entry), name
        assert sample(second, name, **one_off) == 3, name
    assert sample(second, "spoolcron_job_outcomes_total", **one_off, outcome="succeeded") == 3
    if hasattr(signals, "fire_enqueued"):  # counted in the mule
        assert sample(second, "spoolcron_entry_fires_total", entry=ENTRY) > sample(
            first, "spoolcron_entry_fires_total", entry=ENTRY
        )
    # The state, computed at scrape time by the worker.
    assert sample(second, "spoolcron_spooler_attached") == 1
    assert sample(second, "spoolcron_entry_period_seconds", entry=ENTRY) == 1
    last_success = sample(second, "spoolcron_entry_last_success_timestamp_seconds", entry=ENTRY)
    assert time.time() - last_success < 10 + (time.monotonic() - started)
    assert sample(second, "spoolcron_pending_jobs", place="spool") >= 0
    assert ("spoolcron_oldest_overdue_seconds", ()) in second
