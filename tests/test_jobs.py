from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction

import spoolcron
from spoolcron.core.payload import due_of, spool_at
from spoolcron.spool import codec, files
from tests.conftest import Runs
from tests.testapp import tasks

NOW = 1_800_000_000.25  # an injected clock for the enqueue time


def clock() -> float:
    return NOW


def only_file(spool_dir: Path) -> codec.SpoolFile:
    found = files.list_files(spool_dir)
    assert len(found) == 1, found
    return files.read(found[0])


@pytest.mark.django_db(transaction=True)  # Job.status reads the results store
def test_schedule_writes_a_spool_file_due_at_run_after(spool_dir: Path) -> None:
    # Due within the horizon (SPOOLCRON["HORIZON"], 5 s): straight into the spool directory.
    job = spoolcron.schedule(
        tasks.record, args=["a"], kwargs={"n": 1}, run_after=3, meta={"who": "me"}, now=clock
    )
    assert job.run_after == datetime.fromtimestamp(NOW + 3, UTC)
    file = only_file(spool_dir)
    assert file.is_ours
    assert file.path.name == f"uwsgi_spoolfile_on_spoolcron_{job.id}_1"
    assert file.args[b"task"] == b"tests.testapp.tasks.record"
    assert due_of(file.args, file.at) == NOW + 3
    assert os.stat(file.path).st_mtime == spool_at(NOW + 3)  # uWSGI's `at`: a second ahead
    body = json.loads(file.body)
    assert body["args"] == ["a"]
    assert body["kwargs"] == {"n": 1}
    assert body["meta"] == {"who": "me"}
    assert body["run_after"] == NOW + 3
    assert job.status == "pending"


@pytest.mark.parametrize(
    ("run_after", "expected"),
    [
        pytest.param(None, NOW, id="none_is_now"),
        pytest.param(timedelta(minutes=2), NOW + 120, id="timedelta"),
        pytest.param(2.5, NOW + 2.5, id="seconds_float"),
        pytest.param(-10, NOW - 10, id="past_runs_now"),
        pytest.param(datetime(2030, 1, 1, tzinfo=UTC), 1893456000.0, id="aware_datetime"),
    ],
)
def test_run_after_forms(spool_dir: Path, run_after: object, expected: float) -> None:
    job = spoolcron.schedule(tasks.record, ["x"], run_after=run_after, now=clock)  # type: ignore[arg-type]
    assert job.run_after.timestamp() == pytest.approx(expected)


def test_naive_datetime_is_refused_with_use_tz(spool_dir: Path) -> None:
    with pytest.raises(spoolcron.InvalidArguments) as info:
        tasks.record.schedule(["x"], run_after=datetime(2030, 1, 1, 9, 0))
    assert str(info.value) == (
        "run_after=datetime.datetime(2030, 1, 1, 9, 0) is a naive datetime while USE_TZ is on; "
        "pass an aware one, e.g. timezone.now() + timedelta(minutes=5)."
    )
    assert files.list_files(spool_dir) == []


def test_naive_datetime_is_local_time_without_use_tz(spool_dir: Path, settings: object) -> None:
    settings.USE_TZ = False  # type: ignore[attr-defined]
    settings.TIME_ZONE = "Europe/Rome"  # type: ignore[attr-defined]
    job = tasks.record.schedule(["x"], run_after=datetime(2030, 1, 1, 9, 0))
    assert job.run_after == datetime(2030, 1, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("run_after", "message"),
    [
        pytest.param(
            "soon",
            "run_after must be a datetime, a timedelta or a number of seconds, not 'soon'.",
            id="string",
        ),
        pytest.param(
            True,
            "run_after must be a datetime, a timedelta or a number of seconds, not True.",
            id="bool",
        ),
        pytest.param(
            float("nan"), "run_after must be a finite number of seconds, not nan.", id="nan"
        ),
    ],
)
def test_bad_run_after(spool_dir: Path, run_after: object, message: str) -> None:
    with pytest.raises(spoolcron.InvalidArguments) as info:
        tasks.record.schedule(["x"], run_after=run_after)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_arguments_json_cannot_carry_are_refused_at_enqueue(spool_dir: Path) -> None:
    thing = object()
    with pytest.raises(spoolcron.InvalidArguments) as info:
        tasks.record.schedule(["ok"], {"when": thing})
    assert str(info.value) == (
        f"Cannot schedule task 'tests.testapp.tasks.record': kwargs['when'] = {thing!r} "
        "cannot be stored as JSON."
    )
    with pytest.raises(spoolcron.InvalidArguments) as info:
        tasks.record.schedule([{1, 2}])
    assert str(info.value) == (
        "Cannot schedule task 'tests.testapp.tasks.record': args[0] = {1, 2} "
        "cannot be stored as JSON."
    )
    assert files.list_files(spool_dir) == []


def test_django_json_types_travel_as_strings(spool_dir: Path) -> None:
    tasks.record.schedule(["x"], {"amount": Decimal("1.50")})
    assert json.loads(only_file(spool_dir).body)["kwargs"] == {"amount": "1.50"}


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        pytest.param(
            "abc",
            None,
            "Cannot schedule task 'tests.testapp.tasks.record': args must be a list, not 'abc'.",
            id="args_string",
        ),
        pytest.param(
            None,
            [1],
            "Cannot schedule task 'tests.testapp.tasks.record': kwargs must be a dict, not [1].",
            id="kwargs_list",
        ),
        pytest.param(
            None,
            {1: 2},
            "Cannot schedule task 'tests.testapp.tasks.record': kwargs keys must be strings, "
            "not 1.",
            id="kwargs_int_key",
        ),
    ],
)
def test_bad_argument_shapes(spool_dir: Path, args: object, kwargs: object, message: str) -> None:
    with pytest.raises(spoolcron.InvalidArguments) as info:
        spoolcron.schedule(tasks.record, args, kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_schedule_by_name_and_unknown_name(spool_dir: Path) -> None:
    job = spoolcron.schedule("tests.testapp.tasks.record", ["x"])
    assert job.task == "tests.testapp.tasks.record"
    with pytest.raises(spoolcron.UnknownTask):
        spoolcron.schedule("tests.testapp.tasks.nope")


@pytest.mark.django_db(transaction=True)  # Job.status reads the results store
def test_delay_sugar(spool_dir: Path) -> None:
    job = tasks.record.delay("x", colour="red")
    body = json.loads(only_file(spool_dir).body)
    assert (body["args"], body["kwargs"]) == (["x"], {"colour": "red"})
    assert job.status == "pending"


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_the_file_is_written_on_commit(spool_dir: Path) -> None:
    with transaction.atomic():
        tasks.record.schedule(["x"])
        assert files.list_files(spool_dir) == []
    assert len(files.list_files(spool_dir)) == 1


@pytest.mark.django_db(transaction=True)
def test_rolled_back_transaction_writes_nothing(spool_dir: Path) -> None:
    def enqueue_then_fail() -> None:
        with transaction.atomic():
            tasks.record.schedule(["x"])
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        enqueue_then_fail()
    assert files.list_files(spool_dir) == []


@pytest.mark.django_db(transaction=True)
def test_on_commit_opt_out_writes_at_once(spool_dir: Path) -> None:
    with transaction.atomic():
        tasks.record.schedule(["x"], on_commit=False)
        assert len(files.list_files(spool_dir)) == 1


@pytest.mark.django_db(transaction=True)  # Job.status reads the results store
def test_cancel_pending_job(spool_dir: Path) -> None:
    job = tasks.record.schedule(["x"], run_after=60)
    assert job.cancel() is True
    assert job.status == "missing"
    assert job.cancel() is False


def test_spool_dir_is_created_when_missing(tmp_path: Path, settings: object) -> None:
    spool = tmp_path / "new" / "spool"
    settings.SPOOLCRON = {"SPOOL_DIR": str(spool)}  # type: ignore[attr-defined]
    tasks.record.schedule(["x"])
    assert len(files.list_files(spool)) == 1
    assert spool.stat().st_mode & 0o777 == 0o700


def test_health_counts(spool_dirs: tuple[Path, Path]) -> None:
    spool, failed = spool_dirs
    now = 1_900_000_000.0
    spoolcron.schedule(tasks.record, ["due"], run_after=-60, now=lambda: now)
    spoolcron.schedule(tasks.record, ["later"], run_after=60, now=lambda: now)
    report = spoolcron.health(now=now)
    assert report == {
        "spool_dir": str(spool),
        "failed_dir": str(failed),
        "pending": 2,
        "pending_spool": 1,  # due: in the spool directory
        "pending_store": 1,  # due in a minute: in the pending store
        "store": "files",
        "overdue": 1,
        "overdue_in_store": 0,
        "oldest_overdue_seconds": pytest.approx(60),
        "failed": 0,
        "failed_recent": 0,
        "failed_since_seconds": None,
        "spooler_attached": False,
        "spooler_pids": [],
        "queues": {"default": {"pending": 1, "overdue": 1}},
    }


@pytest.mark.parametrize(
    ("args", "kwargs", "why"),
    [
        pytest.param([1, 2, 3], {}, "too many positional arguments", id="extra_positional"),
        pytest.param([], {}, "missing a required argument: 'label'", id="missing"),
        pytest.param(
            ["x"], {"colour": "red"}, "got an unexpected keyword argument 'colour'", id="unknown"
        ),
    ],
)
def test_arguments_the_task_cannot_take_are_refused_at_enqueue(
    spool_dir: Path, args: list[object], kwargs: dict[str, object], why: str
) -> None:
    with pytest.raises(spoolcron.InvalidArguments) as info:
        tasks.always_fails.schedule(args, kwargs)
    assert str(info.value) == f"Cannot schedule task 'tests.testapp.tasks.always_fails': {why}."
    assert files.list_files(spool_dir) == []


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_infinity_are_refused_naming_the_argument(spool_dir: Path, value: float) -> None:
    with pytest.raises(spoolcron.InvalidArguments) as info:
        tasks.record.delay("x", weight=value)
    assert str(info.value) == (
        f"Cannot schedule task 'tests.testapp.tasks.record': kwargs['weight'] = {value!r} "
        "cannot be stored as JSON."
    )


# --- get_job and return_value (issue 15, 6) ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_get_job_finds_a_job_wherever_it_is(spool_dirs: tuple[Path, Path], runs: Runs) -> None:
    from tests.helpers import run_due

    soon = tasks.record.schedule(["soon"], run_after=3)
    stored = tasks.record.schedule(["later"], run_after=3600)
    for job in (soon, stored):  # the spool directory, then the pending store
        assert spoolcron.get_job(job.id) == job
    ran = tasks.record.schedule(["ran"], run_after=-1)
    bad = tasks.always_fails.schedule(["bad"], run_after=-1)
    run_due()
    assert spoolcron.get_job(ran.id) == ran  # its result row
    assert spoolcron.get_job(ran.id).status == "succeeded"
    assert spoolcron.get_job(bad.id) == bad
    assert spoolcron.get_job(bad.id).status == "failed"
    from spoolcron.storage import results

    results.JobResult.objects.filter(pk=bad.id).delete()
    assert spoolcron.get_job(bad.id) == bad  # its file in the failed directory
    with pytest.raises(spoolcron.JobNotFound) as error:
        spoolcron.get_job("nope")
    assert str(error.value) == (
        "No job 'nope': neither the spool directory, the pending store, the job results nor "
        "the failed directory know it."
    )


@pytest.mark.django_db(transaction=True)
def test_return_value_of_a_plain_job(spool_dir: Path, runs: Runs) -> None:
    from tests.helpers import run_due

    job = tasks.record.schedule(["hello"])
    with pytest.raises(spoolcron.JobNotSucceeded) as error:
        _ = job.return_value
    assert str(error.value) == f"Job {job.id!r} has no return value: it is pending."
    assert isinstance(error.value, ValueError)
    run_due()
    assert job.return_value == "hello"
    assert spoolcron.get_job(job.id).return_value == "hello"
    unstorable = tasks.returns_object.schedule()
    run_due()
    assert unstorable.status == "succeeded"
    assert unstorable.return_value is None  # JSON cannot carry it: not stored
