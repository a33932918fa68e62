"""USE_TZ = False on SQLite, end to end in one process: enqueue, the beat's claims, the run
history, results, a retry, the Tasks backend and the admin pages.

Without USE_TZ, Django's SQLite backend refuses aware datetimes and stores naive local time
(TIME_ZONE). The zone here is not UTC, so a naive UTC value stored by mistake reads one or two
hours off.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client, override_settings
from django.utils import timezone

import spoolcron
import tests.schedule_modules.valid  # noqa: F401  (registers its @periodic entry)
from spoolcron._tasks_compat import TaskResultStatus, task_backends
from spoolcron.core.payload import due_of, spool_at
from spoolcron.models import FireClaim, JobResult, Run
from spoolcron.runtime.dispatch import Outcome
from spoolcron.spool import codec, files
from spoolcron.storage.ledger import DatabaseLedger
from tests.conftest import Runs
from tests.helpers import run_due, run_spool_file
from tests.testapp import framework_tasks, tasks

pytestmark = pytest.mark.django_db(transaction=True)

ZONE = "Europe/Rome"
LOCAL = ZoneInfo(ZONE)
# The columns keep microseconds; time.time() has more digits.
SLACK = 1e-3
# Summer and winter: Rome is UTC+2, then UTC+1.
SUMMER = datetime(2026, 7, 1, 10, 0, tzinfo=UTC).timestamp()
WINTER = datetime(2026, 1, 15, 10, 0, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def _no_use_tz() -> Iterator[None]:
    with override_settings(USE_TZ=False, TIME_ZONE=ZONE):
        yield


def local(timestamp: float) -> datetime:
    """The naive local time a DateTimeField stores for ``timestamp`` without USE_TZ."""
    return datetime.fromtimestamp(timestamp, LOCAL).replace(tzinfo=None)


def unix(value: datetime) -> float:
    """The Unix time of a naive local datetime read back from the database."""
    assert timezone.is_naive(value), value
    return value.replace(tzinfo=LOCAL).timestamp()


def the_file(spool_dir: Path) -> codec.SpoolFile:
    [path] = files.list_files(spool_dir)
    return files.read(path)


def test_the_settings_are_what_this_module_tests() -> None:
    assert timezone.now().tzinfo is None
    assert str(timezone.get_default_timezone()) == ZONE
    # The process's local time is TIME_ZONE too (Django calls tzset()): naive now() agrees.
    assert abs(unix(datetime.now()) - time.time()) < 5
    assert local(SUMMER) == datetime(2026, 7, 1, 12, 0)
    assert local(WINTER) == datetime(2026, 1, 15, 11, 0)


def test_a_one_off_job_runs_and_is_recorded_in_local_time(spool_dir: Path, runs: Runs) -> None:
    due = round(time.time() - 3, 3)
    # A naive run_after is local time when USE_TZ is off.
    job = spoolcron.schedule(tasks.record, ["naive"], run_after=local(due))
    file = the_file(spool_dir)
    assert due_of(file.args, file.at) == pytest.approx(due, abs=SLACK)
    assert file.at == spool_at(due_of(file.args, file.at))
    assert job.run_after.timestamp() == pytest.approx(due, abs=SLACK)
    assert job.status == "pending"

    before = time.time()
    [ran] = run_due()
    after = time.time()
    assert ran.outcome is Outcome.SUCCEEDED
    assert runs.labels() == ["naive"]

    [run] = Run.objects.all()
    assert (run.job_id, run.outcome, run.entry, run.attempt) == (job.id, "succeeded", "", 1)
    assert run.due == local(due)
    assert unix(run.due) == pytest.approx(due, abs=SLACK)
    assert run.finished is not None
    assert before - SLACK <= unix(run.started) <= unix(run.finished) <= after + SLACK

    row = JobResult.objects.get(id=job.id)
    assert row.status == "SUCCESSFUL"
    assert row.return_value == "naive"
    assert row.run_after is not None
    assert row.started_at is not None
    assert row.finished_at is not None
    assert unix(row.run_after) == pytest.approx(due, abs=SLACK)
    assert unix(row.enqueued_at) <= before + SLACK
    assert before - SLACK <= unix(row.started_at) <= unix(row.finished_at) <= after + SLACK
    assert row.last_attempted_at == row.started_at
    assert job.status == "succeeded"


def test_a_failed_job_is_recorded(spool_dirs: tuple[Path, Path], runs: Runs) -> None:
    _, failed = spool_dirs
    job = tasks.always_fails.schedule(["boom"])
    [ran] = run_due()
    assert ran.outcome is Outcome.FAILED
    assert len(files.list_quarantined(failed)) == 1
    assert list(Run.objects.values_list("outcome", flat=True)) == ["failed"]
    row = JobResult.objects.get(id=job.id)
    assert row.status == "FAILED"
    assert row.finished_at is not None
    assert timezone.is_naive(row.finished_at)
    assert job.status == "failed"


def test_a_retry_is_recorded_in_local_time(spool_dir: Path, runs: Runs) -> None:
    start = time.time()
    job = spoolcron.schedule(tasks.flaky, ["once"], {"fail_times": 1}, now=lambda: start)
    first = the_file(spool_dir)
    assert run_spool_file(first, now=lambda: start).outcome is Outcome.RETRYING
    first.path.unlink()  # what uWSGI does on SPOOL_OK
    retry_at = start + 0.5  # retry_backoff=0.5 * 2**0

    [retrying] = Run.objects.all()
    assert (retrying.outcome, retrying.attempt) == ("retrying", 1)
    assert unix(retrying.due) == pytest.approx(start, abs=SLACK)
    row = JobResult.objects.get(id=job.id)
    assert row.status == "READY"
    assert row.run_after is not None
    assert unix(row.run_after) == pytest.approx(retry_at, abs=SLACK)
    assert row.finished_at is None
    assert job.status == "pending"

    second = the_file(spool_dir)
    assert due_of(second.args, second.at) == pytest.approx(retry_at, abs=SLACK)
    assert run_spool_file(second, now=lambda: retry_at).outcome is Outcome.SUCCEEDED
    done = Run.objects.get(attempt=2)
    assert done.outcome == "succeeded"
    assert unix(done.due) == pytest.approx(retry_at, abs=SLACK)
    row.refresh_from_db()
    assert (row.status, row.attempts, len(row.errors)) == ("SUCCESSFUL", 2, 1)
    assert row.finished_at is not None
    assert unix(row.finished_at) == pytest.approx(retry_at, abs=SLACK)
    assert unix(row.started_at) == pytest.approx(start, abs=SLACK)
    assert [r["attempt"] for r in runs.all()] == [1, 2]


def test_the_beat_claims_fires_in_local_time(tmp_path: Path) -> None:
    ledger = DatabaseLedger()
    written: list[float] = []
    before = time.time()
    for fire in (WINTER, SUMMER):
        assert ledger.claim("e", fire, f"job-{fire}", lambda f=fire: written.append(f)) is True
    assert ledger.claim("e", SUMMER, "again", lambda: written.append(0)) is False
    assert written == [WINTER, SUMMER]
    assert ledger.last_fires() == {"e": SUMMER}

    stored = dict(FireClaim.objects.values_list("job_id", "fire_time"))
    assert stored == {
        f"job-{WINTER}": datetime(2026, 1, 15, 11, 0),
        f"job-{SUMMER}": datetime(2026, 7, 1, 12, 0),
    }
    claimed = FireClaim.objects.get(job_id=f"job-{SUMMER}").claimed_at
    assert before - SLACK <= unix(claimed) <= time.time() + SLACK

    since = SUMMER + 30.5
    ledger.baseline(["new"], since)
    ledger.baseline(["new"], since)  # twice: one row
    assert ledger.last_fires() == {"e": SUMMER, "new": since}
    baseline = FireClaim.objects.get(entry="new")
    assert (baseline.job_id, baseline.fire_time) == ("", local(since))

    # A day after the summer fire, keeping a day and a second: the winter claim goes, the
    # newest claim of each entry stays, and so do the runs and results of the day.
    now = datetime.fromtimestamp(SUMMER + 86400, UTC)
    old_run = Run.objects.create(
        job_id="old", task="t", due=local(WINTER), started=local(WINTER), outcome="succeeded"
    )
    Run.objects.create(
        job_id="new", task="t", due=local(SUMMER), started=local(SUMMER), outcome="succeeded"
    )
    JobResult.objects.create(id="old", task="t", status="SUCCESSFUL", finished_at=local(WINTER))
    JobResult.objects.create(id="new", task="t", status="SUCCESSFUL", finished_at=local(SUMMER))
    assert ledger.prune(keep=timedelta(days=1, seconds=1), now=now) == 3
    assert ledger.last_fires() == {"e": SUMMER, "new": since}
    assert not Run.objects.filter(pk=old_run.pk).exists()
    assert list(Run.objects.values_list("job_id", flat=True)) == ["new"]
    assert list(JobResult.objects.values_list("id", flat=True)) == ["new"]
    # A naive cutoff is local time too.
    assert ledger.prune(keep=timedelta(0), now=local(SUMMER + 86400)) == 2


def test_the_beat_enqueues_through_the_database_ledger(tmp_path: Path, runs: Runs) -> None:
    from spoolcron.core.beat import Beat
    from spoolcron.core.entries import collect
    from spoolcron.spool.payloads import SpoolFireWriter

    entries = [e for e in collect()[0] if e.name == "decorated"]  # every minute
    assert entries
    clock_now = [SUMMER + 50.0]
    beat = Beat(entries, DatabaseLedger(), SpoolFireWriter(tmp_path), clock=lambda: clock_now[0])
    beat.start()
    assert DatabaseLedger().last_fires() == {"decorated": SUMMER + 50.0}
    clock_now[0] = SUMMER + 60.0
    beat.tick()
    assert DatabaseLedger().last_fires() == {"decorated": SUMMER + 60.0}
    [path] = files.list_files(tmp_path)
    fired = files.read(path)
    assert (due_of(fired.args, fired.at), fired.at) == (SUMMER + 60.0, spool_at(SUMMER + 60.0))
    fire = FireClaim.objects.exclude(job_id="").get()
    assert fire.fire_time == datetime(2026, 7, 1, 12, 1)


def test_the_tasks_backend_enqueues_and_runs(spool_dir: Path, runs: Runs) -> None:
    before = time.time()
    result = framework_tasks.add.enqueue(2, 3)
    assert result.status == TaskResultStatus.READY
    stored = task_backends["default"].get_result(result.id)
    assert stored.status == TaskResultStatus.READY
    assert stored.enqueued_at is not None
    assert unix(stored.enqueued_at) == pytest.approx(before, abs=1)

    [ran] = run_due()
    assert ran.outcome is Outcome.SUCCEEDED
    result.refresh()
    assert (result.status, result.return_value, result.attempts) == (
        TaskResultStatus.SUCCESSFUL,
        5,
        1,
    )
    assert result.started_at is not None
    assert result.finished_at is not None
    assert before - SLACK <= unix(result.started_at) <= unix(result.finished_at)
    assert unix(result.finished_at) <= time.time() + SLACK


def test_the_tasks_backend_takes_a_naive_run_after(spool_dir: Path, runs: Runs) -> None:
    # Within SPOOLCRON["HORIZON"]: straight into the spool directory.
    due = round(time.time() + 3, 3)
    when = local(due)
    result = framework_tasks.add.using(run_after=when).enqueue(1, 1)
    file = the_file(spool_dir)
    assert due_of(file.args, file.at) == pytest.approx(due, abs=SLACK)
    assert run_due() == []  # not due yet
    assert task_backends["default"].get_result(result.id).task.run_after == when
    [ran] = run_due(until=due)
    assert ran.outcome is Outcome.SUCCEEDED
    result.refresh()
    assert result.return_value == 2
    assert JobResult.objects.get(id=result.id).run_after == when


def test_a_failing_django_task_is_failed(spool_dirs: tuple[Path, Path], runs: Runs) -> None:
    result = framework_tasks.fail.enqueue("boom")
    [ran] = run_due()
    assert ran.outcome is Outcome.FAILED
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.finished_at is not None
    assert timezone.is_naive(result.finished_at)


# --- the admin pages -------------------------------------------------------------------------

ENTRIES_URL = "/admin/spoolcron/periodicentry/"
PENDING_URL = "/admin/spoolcron/pendingjob/"
FAILED_URL = "/admin/spoolcron/failedjob/"
RUNS_URL = "/admin/spoolcron/run/"
RESULTS_URL = "/admin/spoolcron/jobresult/"


@pytest.fixture
def root(django_user_model: Any) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com"))
    return client


@pytest.fixture
def shown(spool_dirs: tuple[Path, Path], settings: Any, runs: Runs) -> dict[str, Any]:
    """A run, a result, a failed job, a pending job and a claim of an entry, as USE_TZ off
    writes them in the database and the directories."""
    settings.SPOOLCRON = {**settings.SPOOLCRON, "MODULES": ["tests.schedule_modules.valid"]}
    ok = tasks.record.schedule(["shown"])
    tasks.always_fails.schedule(["shown"])
    assert {r.outcome for r in run_due()} == {Outcome.SUCCEEDED, Outcome.FAILED}
    # Within SPOOLCRON["HORIZON"]: its spool file waits in the spool directory.
    pending = tasks.record.schedule(["later"], run_after=timedelta(seconds=3))
    fired = float(int(time.time()) // 5 * 5)
    assert DatabaseLedger().claim("every-5s", fired, "fire-job", lambda: None)
    return {"ok": ok, "pending": pending, "fired": fired, "run": Run.objects.get(job_id=ok.id)}


def test_the_run_and_result_pages_render(shown: dict[str, Any], root: Client) -> None:
    ok, run = shown["ok"], shown["run"]
    pages = [
        "/admin/",
        "/admin/spoolcron/",
        RUNS_URL,
        f"{RUNS_URL}?outcome=failed",
        f"{RUNS_URL}?entry=(one-off)",
        f"{RUNS_URL}{run.pk}/change/",
        RESULTS_URL,
        f"{RESULTS_URL}?status=FAILED",
        f"{RESULTS_URL}{ok.id}/change/",
    ]
    for url in pages:
        response = root.get(url)
        assert response.status_code == 200, (url, response.status_code)
    # The date filter's "Today" link: naive local midnights.
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    filtered = {"started__gte": str(today), "started__lt": str(today + timedelta(days=1))}
    page = root.get(RUNS_URL, filtered)
    assert page.status_code == 200
    assert ok.id in page.content.decode()
    # The start as stored: local time.
    assert f"{RUNS_URL}{run.pk}/change/" in page.content.decode()
    detail = root.get(f"{RUNS_URL}{run.pk}/change/").content.decode()
    assert run.started.strftime("%H:%M") in detail


# The pages and listings compare "now" with aware datetimes (next fires, due times, a failed
# file's mtime): they take an aware now (spoolcron.core.times.now), whatever USE_TZ says.
@pytest.mark.parametrize(
    "url",
    [
        pytest.param(ENTRIES_URL, id="entries"),
        pytest.param(PENDING_URL, id="pending"),
        pytest.param(FAILED_URL, id="failed"),
    ],
)
def test_the_pages_of_entries_and_jobs_render(
    shown: dict[str, Any], root: Client, url: str
) -> None:
    page = root.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    if url == ENTRIES_URL:
        # The entry's last fire, in the project's zone.
        assert local(shown["fired"]).strftime("%H:%M:%S") in text
    if url == PENDING_URL:
        assert shown["pending"].id in text


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["entries"], id="entries"),
        pytest.param(["upcoming"], id="upcoming"),
        pytest.param(["jobs"], id="jobs"),
        pytest.param(["jobs", "--json"], id="jobs-json"),
        pytest.param(["jobs", "--failed"], id="jobs-failed"),
    ],
)
def test_the_command_lists(shown: dict[str, Any], args: list[str]) -> None:
    from django.core.management import call_command

    out = io.StringIO()
    call_command("spoolcron", *args, stdout=out, stderr=io.StringIO())
    assert out.getvalue()
