"""The Prometheus metrics: receivers count job events, the state gauges, the exposition."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

# Outside CI a venv without the `metrics` extra skips these tests; in CI they must run.
if os.environ.get("CI", "").lower() in ("1", "true"):
    import prometheus_client  # noqa: F401
else:
    pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families

import spoolcron
from spoolcron import metrics
from spoolcron.core import signals
from spoolcron.core.payload import Payload
from spoolcron.runtime.dispatch import Outcome
from spoolcron.spool import files
from spoolcron.spool.payloads import write_payload
from spoolcron.storage.models import Run
from tests.conftest import Runs
from tests.helpers import run_spool_file
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parent.parent
RECORD = "tests.testapp.tasks.record"
ENTRY = "testapp-every-minute"  # declared by tests/testapp/schedules.py


@pytest.fixture
def connected(settings: Any) -> Iterator[None]:
    metrics.connect()
    try:
        yield
    finally:
        metrics.disconnect()


def value(name: str, **labels: str) -> float:
    """A sample of this process's events (0 when the series does not exist yet)."""
    return metrics.events.get_sample_value(name, labels) or 0.0


def scraped() -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The exposition parsed: metric family name -> {labels: value} of its samples."""
    text = metrics.exposition().decode()
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def the_file(spool_dir: Path) -> Any:
    [path] = files.list_files(spool_dir)
    return files.read(path)


def test_a_success_counts_start_outcome_lateness_and_duration(
    connected: None, spool_dir: Path, runs: Runs
) -> None:
    job = ("", RECORD)
    labels = dict(zip(metrics.JOB, job, strict=True))
    before = {
        "started": value("spoolcron_jobs_started_total", **labels),
        "succeeded": value("spoolcron_job_outcomes_total", **labels, outcome="succeeded"),
        "lateness": value("spoolcron_job_lateness_seconds_count", **labels),
        "duration": value("spoolcron_job_duration_seconds_count", **labels),
    }
    tasks.record.schedule(["hello"])
    assert run_spool_file(the_file(spool_dir)).outcome is Outcome.SUCCEEDED
    assert value("spoolcron_jobs_started_total", **labels) == before["started"] + 1
    assert (
        value("spoolcron_job_outcomes_total", **labels, outcome="succeeded")
        == before["succeeded"] + 1
    )
    assert value("spoolcron_job_lateness_seconds_count", **labels) == before["lateness"] + 1
    assert value("spoolcron_job_duration_seconds_count", **labels) == before["duration"] + 1


def test_a_retry_then_a_failure_count_per_task(
    connected: None, spool_dir: Path, runs: Runs, settings: Any
) -> None:
    # The retries go straight into the spool directory, whatever their due time.
    settings.SPOOLCRON = {**settings.SPOOLCRON, "HORIZON": 3600}
    labels = {"entry": "", "task": "tests.testapp.tasks.flaky"}
    retries = value("spoolcron_job_retries_total", **labels)
    failures = value("spoolcron_job_failures_total", **labels)
    failed = value("spoolcron_job_outcomes_total", **labels, outcome="failed")
    durations = value("spoolcron_job_duration_seconds_count", **labels)
    tasks.flaky.schedule(["doomed"], {"fail_times": 99})  # retries=2: three attempts
    start = time.time()
    for n in range(1, 4):  # each retry is due 0.5 s, then 1 s after the attempt before
        file = the_file(spool_dir)
        if run_spool_file(file, now=lambda n=n: start + 10 * n).outcome.removes_file:
            file.path.unlink()
    assert value("spoolcron_job_retries_total", **labels) == retries + 2
    assert value("spoolcron_job_failures_total", **labels) == failures + 1
    assert value("spoolcron_job_outcomes_total", **labels, outcome="failed") == failed + 1
    assert value("spoolcron_job_duration_seconds_count", **labels) == durations + 3


def test_lateness_goes_to_its_bucket_per_entry(connected: None) -> None:
    labels = {"entry": "nightly", "task": RECORD}
    payload = Payload(task=RECORD, job_id="late", run_after=time.time() - 2, entry="nightly")
    le_1 = value("spoolcron_job_lateness_seconds_bucket", **labels, le="1.0")
    le_2_5 = value("spoolcron_job_lateness_seconds_bucket", **labels, le="2.5")
    signals.send(signals.job_started, tasks.record, job_id="late", payload=payload, attempt=1)
    assert value("spoolcron_job_lateness_seconds_bucket", **labels, le="1.0") == le_1
    assert value("spoolcron_job_lateness_seconds_bucket", **labels, le="2.5") == le_2_5 + 1


def test_an_expired_job_counts_as_expired(connected: None) -> None:
    labels = {"entry": "", "task": RECORD}
    before = value("spoolcron_job_outcomes_total", **labels, outcome="expired")
    payload = Payload(task=RECORD, job_id="old", run_after=0.0)
    signals.send(
        signals.job_expired, tasks.record, job_id="old", payload=payload, attempt=1, expires=1.0,
        reason="expired",
    )  # fmt: skip
    assert value("spoolcron_job_outcomes_total", **labels, outcome="expired") == before + 1


def test_an_overlap_skip_counts_for_its_entry(connected: None, spool_dir: Path, runs: Runs) -> None:
    now = datetime.now(UTC)
    Run.objects.create(
        job_id="previous", entry=ENTRY, task=RECORD, due=now, started=now,
        outcome=Run.Outcome.RUNNING, pid=os.getpid(),
    )  # fmt: skip
    before = value("spoolcron_skipped_overlap_total", entry=ENTRY)
    skipped = value("spoolcron_job_outcomes_total", entry=ENTRY, task=RECORD, outcome="skipped")
    fire = Payload(task=RECORD, job_id="next", run_after=time.time(), args=["x"], entry=ENTRY)
    write_payload(spool_dir, fire)
    assert run_spool_file(the_file(spool_dir)).outcome is Outcome.SKIPPED
    assert value("spoolcron_skipped_overlap_total", entry=ENTRY) == before + 1
    assert (
        value("spoolcron_job_outcomes_total", entry=ENTRY, task=RECORD, outcome="skipped")
        == skipped + 1
    )
    assert runs.labels() == []


beat_signals = pytest.mark.skipif(
    not hasattr(signals, "fire_enqueued"), reason="this spoolcron's beat sends no signals"
)


@beat_signals
def test_the_beats_fires_misfires_pauses_and_failures_count_per_entry(connected: None) -> None:
    beat: Any = signals
    before = {
        "fires": value("spoolcron_entry_fires_total", entry="nightly"),
        "late": value("spoolcron_fire_lateness_seconds_bucket", entry="nightly", le="0.5"),
        "misfires": value("spoolcron_misfires_total", entry="nightly", policy="coalesce"),
        "run": value(
            "spoolcron_missed_fires_total", entry="nightly", policy="coalesce", fate="enqueued"
        ),
        "dropped": value(
            "spoolcron_missed_fires_total", entry="nightly", policy="coalesce", fate="dropped"
        ),
        "paused": value("spoolcron_fires_paused_total", entry="nightly"),
        "failed": value("spoolcron_fire_failures_total", entry="nightly"),
    }
    send = beat.send_beat
    send(
        beat.fire_enqueued, object, entry="nightly", fire_time=100.0, due=100.0, job_id="j",
        late=0.3,
    )  # fmt: skip
    send(
        beat.fires_missed, object, entry="nightly", policy="coalesce", first_missed=40.0,
        enqueued=1, dropped=4,
    )  # fmt: skip
    send(beat.fire_paused, object, entry="nightly", fire_time=160.0)
    send(beat.fire_failed, object, entry="nightly", fire_time=220.0, exception=OSError("full"))
    assert value("spoolcron_entry_fires_total", entry="nightly") == before["fires"] + 1
    assert (
        value("spoolcron_fire_lateness_seconds_bucket", entry="nightly", le="0.5")
        == before["late"] + 1
    )
    assert (
        value("spoolcron_misfires_total", entry="nightly", policy="coalesce")
        == before["misfires"] + 1
    )
    assert (
        value("spoolcron_missed_fires_total", entry="nightly", policy="coalesce", fate="enqueued")
        == before["run"] + 1
    )
    assert (
        value("spoolcron_missed_fires_total", entry="nightly", policy="coalesce", fate="dropped")
        == before["dropped"] + 4
    )
    assert value("spoolcron_fires_paused_total", entry="nightly") == before["paused"] + 1
    assert value("spoolcron_fire_failures_total", entry="nightly") == before["failed"] + 1


def test_nothing_is_counted_when_not_connected(spool_dir: Path, runs: Runs) -> None:
    labels = {"entry": "", "task": RECORD}
    before = value("spoolcron_jobs_started_total", **labels)
    tasks.record.schedule(["quiet"])
    run_spool_file(the_file(spool_dir))
    assert value("spoolcron_jobs_started_total", **labels) == before


def test_the_app_config_connects_when_metrics_is_true(settings: Any) -> None:
    from django.apps import apps

    config = apps.get_app_config("spoolcron")
    labels = {"entry": "", "task": RECORD}
    payload = Payload(task=RECORD, job_id="j", run_after=time.time())

    def started() -> float:
        signals.send(signals.job_started, tasks.record, job_id="j", payload=payload, attempt=1)
        return value("spoolcron_jobs_started_total", **labels)

    try:
        settings.SPOOLCRON = {**settings.SPOOLCRON, "METRICS": False}
        config._connect_metrics()  # type: ignore[attr-defined]
        assert started() == started()
        settings.SPOOLCRON = {**settings.SPOOLCRON, "METRICS": True}
        config._connect_metrics()  # type: ignore[attr-defined]
        config._connect_metrics()  # type: ignore[attr-defined]  (twice counts once)
        first = started()
        assert started() == first + 1
    finally:
        metrics.disconnect()


def test_the_exposition_parses_and_carries_the_state(
    connected: None, spool_dirs: tuple[Path, Path], runs: Runs, settings: Any
) -> None:
    spool, _ = spool_dirs
    now = time.time()
    # One job due now, one overdue by 100 s (both in the spool directory), one due in an hour
    # (in the pending store).
    tasks.record.schedule(["now"])
    write_payload(spool, Payload(task=RECORD, job_id="overdue", run_after=now - 100, args=["o"]))
    tasks.record.schedule(["later"], run_after=3600)
    finished = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    Run.objects.create(
        job_id="done", entry=ENTRY, task="tests.testapp.tasks.noop", due=finished,
        started=finished - timedelta(seconds=1), finished=finished,
        outcome=Run.Outcome.SUCCEEDED,
    )  # fmt: skip
    Run.objects.create(
        job_id="older", entry=ENTRY, task="tests.testapp.tasks.noop", due=finished,
        started=finished - timedelta(hours=1), finished=finished - timedelta(hours=1),
        outcome=Run.Outcome.SUCCEEDED,
    )  # fmt: skip
    found = scraped()
    assert found["spoolcron_state_up"] == {(): 1.0}
    assert found["spoolcron_pending_jobs"] == {
        (("place", "spool"),): 2.0,
        (("place", "store"),): 1.0,
    }
    assert found["spoolcron_overdue_jobs"] == {
        (("place", "spool"),): 1.0,
        (("place", "store"),): 0.0,
    }
    assert found["spoolcron_oldest_overdue_seconds"][()] == pytest.approx(100, abs=5)
    assert found["spoolcron_failed_jobs"] == {(): 0.0}
    assert found["spoolcron_spooler_attached"] == {(): 0.0}
    # (Other tests' @periodic entries may be declared too.)
    last_success = found["spoolcron_entry_last_success_timestamp_seconds"]
    assert last_success == {(("entry", ENTRY),): finished.timestamp()}
    assert found["spoolcron_entry_period_seconds"][(("entry", ENTRY),)] == 60.0
    assert (("entry", ENTRY),) not in found.get("spoolcron_entry_alert_after_seconds", {})


def test_an_entrys_alert_after_is_a_gauge(spool_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from spoolcron.core import entries as core_entries

    declared, problems = core_entries.collect()
    watched = [replace(declared[0], alert_after=7200.0)]
    monkeypatch.setattr(metrics, "all_entries", lambda: (watched, problems))
    found = scraped()
    assert found["spoolcron_entry_alert_after_seconds"] == {(("entry", declared[0].name),): 7200.0}
    # The events of this process are in the same exposition.
    families = {f.name for f in text_string_to_metric_families(metrics.exposition().decode())}
    assert {
        "spoolcron_jobs_started",
        "spoolcron_job_outcomes",
        "spoolcron_job_retries",
        "spoolcron_job_failures",
        "spoolcron_skipped_overlap",
        "spoolcron_job_lateness_seconds",
        "spoolcron_job_duration_seconds",
    } <= families


def test_a_state_that_cannot_be_read_leaves_the_events(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def away(**kwargs: object) -> None:
        raise RuntimeError("database away")

    monkeypatch.setattr(metrics, "health", away)
    found = scraped()
    assert found["spoolcron_state_up"] == {(): 0.0}
    assert "spoolcron_pending_jobs" not in found
    assert "metrics state not collected" in caplog.text


def test_the_view_serves_text_format_0_0_4(client: Any, spool_dir: Path) -> None:
    reply = client.get("/metrics/")
    assert reply.status_code == 200
    assert reply["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "no-cache" in reply["Cache-Control"]
    names = {f.name for f in text_string_to_metric_families(reply.content.decode())}
    assert "spoolcron_pending_jobs" in names
    assert client.post("/metrics/").status_code == 405


def test_multiprocess_mode_adds_up_the_processes(tmp_path: Path) -> None:
    # A fresh interpreter: prometheus-client reads PROMETHEUS_MULTIPROC_DIR when imported.
    # Two forked children count (as uWSGI's spooler and mule would); the parent scrapes.
    script = textwrap.dedent(
        """
        import json, os, sys
        import django
        django.setup()
        from spoolcron import metrics
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector
        for n in (1, 2):
            pid = os.fork()
            if pid == 0:
                metrics.jobs_started.labels("e", "t").inc(n)
                metrics.job_lateness.labels("e", "t").observe(0.2)
                os._exit(0)
            os.waitpid(pid, 0)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        print(json.dumps([
            registry.get_sample_value("spoolcron_jobs_started_total", {"entry": "e", "task": "t"}),
            registry.get_sample_value(
                "spoolcron_job_lateness_seconds_count", {"entry": "e", "task": "t"}
            ),
        ]))
        """
    )
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "SPOOLCRON_SPOOL_DIR": str(tmp_path / "spool"),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [3.0, 2.0]


def test_the_public_api_is_listed() -> None:
    assert set(metrics.__all__) <= set(dir(metrics))
    assert spoolcron.metrics is metrics
