"""@spoolcron.task(timeout=, retry_on=, retry_jitter=, expires=) and the job signals, in a plain
process (tests/integration/test_task_options_uwsgi.py proves the timeout under uWSGI)."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

import spoolcron
from spoolcron.core import signals
from spoolcron.core.payload import META_EXPIRES, Payload
from spoolcron.core.registry import Task
from spoolcron.exceptions import InvalidArguments, JobTimeout
from spoolcron.runtime.dispatch import Outcome, _retry_delay
from spoolcron.runtime.timeout import call_with_timeout
from spoolcron.spool import codec, files
from tests.conftest import Runs
from tests.helpers import run_spool_file

pytestmark = pytest.mark.django_db(transaction=True)


class Flaky(Exception):
    """The one exception retry_on lets through."""


@spoolcron.task(retries=2, retry_on=(Flaky,))
def fails_with(kind: str) -> None:
    raise {"flaky": Flaky, "value": ValueError}[kind](f"failing with {kind}")


@spoolcron.task(timeout=0.2, retries=1)
def sleeps(seconds: float) -> None:
    time.sleep(seconds)


@spoolcron.task(timeout=0.2, retries=1, retry_on=(Flaky,))
def sleeps_not_retried(seconds: float) -> None:
    time.sleep(seconds)


@spoolcron.task(timeout=0.2)
async def sleeps_async(seconds: float) -> None:
    await asyncio.sleep(seconds)


@spoolcron.task(timeout=0.2)
def swallows_timeout() -> str:
    try:
        time.sleep(5)
    except Exception:
        return "caught it"
    return "slept"


@spoolcron.task(timeout=0.5)
def quick() -> str:
    return "done"


@spoolcron.task(expires=30)
def expiring(label: str) -> str:
    return label


@spoolcron.task
def plain(label: str) -> str:
    return label


def never_registered() -> None:
    """A function the options of @periodic refuse, so it never becomes a task or an entry."""


def the_file(spool_dir: Path) -> codec.SpoolFile:
    found = files.list_files(spool_dir)
    assert len(found) == 1, found
    return files.read(found[0])


def next_file(spool_dir: Path, done: codec.SpoolFile) -> codec.SpoolFile:
    done.path.unlink()  # what uWSGI does on SPOOL_OK
    return the_file(spool_dir)


# --- validation -----------------------------------------------------------------------------


def define(**options: Any) -> Task[..., Any]:
    def some_task() -> None:
        pass

    return Task(some_task, name="t", **options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"timeout": 0},
            "Task 't' option timeout must be a number of seconds > 0 (or a timedelta) or None, "
            "not 0.",
        ),
        (
            {"timeout": "5"},
            "Task 't' option timeout must be a number of seconds > 0 (or a timedelta) or None, "
            "not '5'.",
        ),
        (
            {"timeout": float("inf")},
            "Task 't' option timeout must be a number of seconds > 0 (or a timedelta) or None, "
            "not inf.",
        ),
        (
            {"expires": timedelta(seconds=-1)},
            "Task 't' option expires must be a number of seconds > 0 (or a timedelta) or None, "
            "not datetime.timedelta(days=-1, seconds=86399).",
        ),
        (
            {"expires": True},
            "Task 't' option expires must be a number of seconds > 0 (or a timedelta) or None, "
            "not True.",
        ),
        (
            {"retries": 1, "retry_on": "ValueError"},
            "Task 't' option retry_on must be an exception class or a tuple of them, "
            "not 'ValueError'.",
        ),
        (
            {"retries": 1, "retry_on": ()},
            "Task 't' option retry_on must be an exception class or a tuple of them, not ().",
        ),
        (
            {"retries": 1, "retry_on": (ValueError, KeyboardInterrupt)},
            "Task 't' option retry_on must be an exception class or a tuple of them, not "
            "(<class 'ValueError'>, <class 'KeyboardInterrupt'>).",
        ),
        (
            {"retry_on": (ValueError,)},
            "Task 't' option retry_on needs retries >= 1 to retry anything, not retries=0.",
        ),
        (
            {"retry_jitter": 5},
            "Task 't' option retry_jitter must be a fraction of the backoff from 0 to 1, not 5.",
        ),
        (
            {"retry_jitter": -0.1},
            "Task 't' option retry_jitter must be a fraction of the backoff from 0 to 1, not -0.1.",
        ),
        (
            {"retry_jitter": float("nan")},
            "Task 't' option retry_jitter must be a fraction of the backoff from 0 to 1, not nan.",
        ),
    ],
)
def test_bad_options_are_refused_naming_the_option_and_value(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArguments) as caught:
        define(**options)
    assert str(caught.value) == message


def test_good_options_are_normalised() -> None:
    task = define(
        timeout=timedelta(minutes=2),
        expires=30,
        retries=1,
        retry_on=ValueError,
        retry_jitter=0.25,
    )
    assert task.timeout == 120.0
    assert task.expires == 30.0
    assert task.retry_on == (ValueError,)
    assert task.retry_jitter == 0.25
    assert define().retry_on is None
    assert define().timeout is None
    assert define().expires is None


def test_the_decorator_and_periodic_pass_the_options() -> None:
    def handler() -> None:
        pass

    registered = spoolcron.task(name="tests.options.decorated", timeout=3, retry_jitter=0.5)(
        handler
    )
    assert (registered.timeout, registered.retry_jitter) == (3.0, 0.5)
    with pytest.raises(InvalidArguments, match="option timeout must be"):
        spoolcron.periodic("every 5 seconds", timeout=-1)(never_registered)


# --- retry_on and jitter -------------------------------------------------------------------


def test_retry_on_retries_the_chosen_exceptions(spool_dirs: tuple[Path, Path]) -> None:
    spool, _ = spool_dirs
    fails_with.delay("flaky")
    assert run_spool_file(the_file(spool)).outcome is Outcome.RETRYING


def test_retry_on_fails_any_other_exception_at_once(spool_dirs: tuple[Path, Path]) -> None:
    spool, _ = spool_dirs
    job = fails_with.delay("value")
    result = run_spool_file(the_file(spool))
    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith(
        "Task 'tests.test_task_options.fails_with' failed on attempt 1 of 3. ValueError is "
        "not in its retry_on: not retried.\nTraceback"
    )
    assert files.list_files(spool) == []
    assert job.status == "failed"


def test_jitter_lengthens_each_backoff_by_up_to_its_fraction(settings: Any) -> None:
    settings.SPOOLCRON = {**settings.SPOOLCRON, "RETRY_BACKOFF": 2.0, "MAX_RETRY_DELAY": 5}
    jittery = define(retries=5, retry_jitter=0.5)
    # rand() is in [0, 1): the bounds of each wait
    assert _retry_delay(jittery, 1, rand=lambda: 0.0) == 2.0
    assert _retry_delay(jittery, 1, rand=lambda: 0.999999) == pytest.approx(3.0, abs=1e-5)
    assert _retry_delay(jittery, 2, rand=lambda: 0.5) == 4.0 * 1.25
    # the cap applies to the backoff; the jitter comes on top, so capped retries spread too
    assert _retry_delay(jittery, 3, rand=lambda: 0.0) == 5.0
    assert _retry_delay(jittery, 3, rand=lambda: 0.999999) == pytest.approx(7.5, abs=1e-5)
    assert _retry_delay(define(retries=1), 1, rand=pytest.fail) == 2.0  # no jitter: no draw


def test_jitter_bounds_with_the_real_random_source(settings: Any) -> None:
    settings.SPOOLCRON = {**settings.SPOOLCRON, "RETRY_BACKOFF": 1.0}
    jittery = define(retries=1, retry_jitter=0.2)
    delays = [_retry_delay(jittery, 1) for _ in range(200)]
    assert all(1.0 <= d < 1.2 for d in delays)
    assert len(set(delays)) > 1


# --- timeout -------------------------------------------------------------------------------


def test_timeout_stops_the_attempt_and_retries_per_policy(
    spool_dirs: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    spool, failed = spool_dirs
    job = sleeps.delay(5)
    began = time.monotonic()
    first = run_spool_file(the_file(spool))
    assert first.outcome is Outcome.RETRYING
    assert time.monotonic() - began < 2
    assert (
        "spoolcron.exceptions.JobTimeout: Task 'tests.test_task_options.sleeps' timed out "
        "after 0.2 s." in first.reason
    )
    retry = next_file(spool, files.read(files.list_files(spool)[0]))
    assert retry.path.name.endswith("_2")
    result = run_spool_file(retry, now=lambda: time.time() + 60, sleep=lambda s: None)
    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith(
        "Task 'tests.test_task_options.sleeps' failed on attempt 2 of 2.\nTraceback"
    )
    [reason] = failed.glob("*.reason.txt")
    assert "timed out after 0.2 s" in reason.read_text()
    assert job.status == "failed"
    assert "time.sleep(seconds)" in reason.read_text()  # where it was stopped
    assert any("timed out after 0.2 s" in r.getMessage() for r in caplog.records)


def test_a_timeout_left_out_of_retry_on_fails_at_once(spool_dirs: tuple[Path, Path]) -> None:
    spool, _ = spool_dirs
    sleeps_not_retried.delay(5)
    result = run_spool_file(the_file(spool))
    assert result.outcome is Outcome.FAILED
    assert "JobTimeout is not in its retry_on: not retried." in result.reason


def test_an_async_task_is_stopped_too(spool_dirs: tuple[Path, Path]) -> None:
    spool, _ = spool_dirs
    began = time.monotonic()
    sleeps_async.delay(5)
    result = run_spool_file(the_file(spool))
    assert result.outcome is Outcome.FAILED
    assert "timed out after 0.2 s" in result.reason
    assert time.monotonic() - began < 2
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_swallowed_timeout_still_times_the_attempt_out(spool_dirs: tuple[Path, Path]) -> None:
    spool, _ = spool_dirs
    swallows_timeout.delay()
    result = run_spool_file(the_file(spool))
    assert result.outcome is Outcome.FAILED
    assert "timed out after 0.2 s" in result.reason


def test_a_quick_task_is_untouched_and_the_timer_is_gone(spool_dirs: tuple[Path, Path]) -> None:
    spool, _ = spool_dirs
    before = signal.getsignal(signal.SIGALRM)
    quick.delay()
    assert run_spool_file(the_file(spool)).outcome is Outcome.SUCCEEDED
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before


@pytest.fixture
def previous_alarm() -> Iterator[list[int]]:
    """Someone else's SIGALRM handler and a 30 s timer, as uWSGI without a master sets one."""
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    signal.setitimer(signal.ITIMER_REAL, 30)
    yield fired
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_the_previous_handler_and_timer_are_restored(previous_alarm: list[int]) -> None:
    handler = signal.getsignal(signal.SIGALRM)
    with pytest.raises(JobTimeout, match=r"^Task 'x' timed out after 0.1 s.$"):
        call_with_timeout(lambda: time.sleep(5), "x", 0.1)
    assert signal.getsignal(signal.SIGALRM) is handler
    left, _ = signal.getitimer(signal.ITIMER_REAL)
    assert 28 < left < 30
    assert call_with_timeout(lambda: "value", "x", 0.1) == "value"
    assert signal.getsignal(signal.SIGALRM) is handler
    assert previous_alarm == []


def test_outside_the_main_thread_the_limit_is_not_enforced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import threading

    values: list[str] = []
    thread = threading.Thread(
        target=lambda: values.append(call_with_timeout(lambda: "ran", "x", 1))
    )
    with caplog.at_level(logging.WARNING, "spoolcron.dispatch"):
        thread.start()
        thread.join()
    assert values == ["ran"]
    assert "timeout not enforced task=x timeout_s=1 reason=not-the-main-thread" in caplog.text


def test_a_timeout_raised_in_the_task_is_a_job_timeout_error() -> None:
    exc = JobTimeout("t", 1.5)
    assert isinstance(exc, spoolcron.SpoolcronError)
    assert not isinstance(exc, OSError)  # libraries' except OSError must not catch it
    assert str(exc) == "Task 't' timed out after 1.5 s."


# --- expires -------------------------------------------------------------------------------


def test_a_job_started_after_its_expiry_is_dropped(
    spool_dirs: tuple[Path, Path], runs: Runs, caplog: pytest.LogCaptureFixture
) -> None:
    spool, failed = spool_dirs
    job = spoolcron.schedule(expiring, ["late"], now=lambda: 1000.0)
    with caplog.at_level(logging.WARNING, "spoolcron.dispatch"):
        result = run_spool_file(the_file(spool), now=lambda: 1030.5)
    assert result.outcome is Outcome.EXPIRED
    assert result.outcome.removes_file
    assert result.reason == (
        f"Job {job.id!r} of task 'tests.test_task_options.expiring' expired before it started "
        "(due 30.5 s ago, expired 0.5 s ago): dropped, not run."
    )
    assert list(failed.glob("*")) == []  # nothing for an operator to act on
    files.list_files(spool)[0].unlink()  # what uWSGI does on SPOOL_OK
    assert job.status == "failed"
    assert f"job expired job={job.id}" in caplog.text


def test_a_job_started_before_its_expiry_runs(spool_dirs: tuple[Path, Path]) -> None:
    spool, _ = spool_dirs
    spoolcron.schedule(expiring, ["in-time"], now=lambda: 1000.0)
    assert run_spool_file(the_file(spool), now=lambda: 1029.0).outcome is Outcome.SUCCEEDED


def test_expires_counts_from_the_due_time_and_retries_never_expire() -> None:
    payload = Payload(task="t", job_id="j", run_after=5000.0)
    assert payload.expires_at(30.0) == 5030.0
    assert payload.expires_at(None) is None
    assert payload.next_attempt(6000.0).expires_at(30.0) is None
    own = Payload(task="t", job_id="j", run_after=5000.0, meta={META_EXPIRES: 5010.0})
    assert own.expires_at(30.0) == 5010.0


def test_schedule_expires_overrides_the_task(spool_dirs: tuple[Path, Path]) -> None:
    spool, _ = spool_dirs
    job = spoolcron.schedule(plain, ["x"], expires=5, now=lambda: 1000.0)
    assert Payload.from_body(the_file(spool).body, name="x").meta == {META_EXPIRES: 1005.0}
    result = run_spool_file(the_file(spool), now=lambda: 1006.0)
    assert result.outcome is Outcome.EXPIRED
    the_file(spool).path.unlink()
    assert job.status == "failed"
    when = timezone.now() + timedelta(hours=1)
    later = plain.schedule(["y"], run_after=timedelta(minutes=5), expires=when)
    assert later.id


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        (
            0,
            "Cannot schedule task 'tests.test_task_options.plain': expires must be an aware "
            "datetime, a timedelta or a number of seconds > 0 after run_after, not 0.",
        ),
        (
            "soon",
            "Cannot schedule task 'tests.test_task_options.plain': expires must be an aware "
            "datetime, a timedelta or a number of seconds > 0 after run_after, not 'soon'.",
        ),
        (
            timedelta(seconds=-5),
            "Cannot schedule task 'tests.test_task_options.plain': "
            "expires=datetime.timedelta(days=-1, seconds=86395) is not after its run_after, "
            "so the job could never run.",
        ),
    ],
)
def test_schedule_refuses_a_bad_expires(
    spool_dirs: tuple[Path, Path], expires: Any, message: str
) -> None:
    with pytest.raises(InvalidArguments) as caught:
        spoolcron.schedule(plain, ["x"], expires=expires)
    assert str(caught.value) == message
    assert files.list_files(spool_dirs[0]) == []


# --- signals -------------------------------------------------------------------------------


@pytest.fixture
def heard() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every job signal sent, in order, with its keyword arguments."""
    events: list[tuple[str, dict[str, Any]]] = []
    receivers = {}
    for name in ("job_started", "job_succeeded", "job_retrying", "job_failed", "job_expired"):

        def receiver(name: str = name, **kwargs: Any) -> None:
            kwargs.pop("signal")
            events.append((name, kwargs))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver, weak=False)
    yield events
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def test_signals_of_a_success(spool_dir: Path, heard: list[tuple[str, dict[str, Any]]]) -> None:
    job = plain.delay("hi")
    run_spool_file(the_file(spool_dir))
    assert [name for name, _ in heard] == ["job_started", "job_succeeded"]
    started, succeeded = heard[0][1], heard[1][1]
    assert started["sender"] is plain
    assert (started["job_id"], started["attempt"]) == (job.id, 1)
    assert started["payload"].args == ["hi"]
    assert succeeded["value"] == "hi"
    assert succeeded["duration"] >= 0


def test_signals_of_a_retry_then_a_failure(
    spool_dir: Path, heard: list[tuple[str, dict[str, Any]]], settings: Any
) -> None:
    settings.SPOOLCRON = {**settings.SPOOLCRON, "RETRY_BACKOFF": 0.1}
    job = fails_with.delay("flaky")
    base = time.time()
    first = the_file(spool_dir)
    run_spool_file(first, now=lambda: base)
    second = next_file(spool_dir, first)
    assert Payload.from_body(second.body, name="x").attempt == 2
    run_spool_file(second, now=lambda: base + 1, sleep=lambda s: None)
    assert [name for name, _ in heard] == [
        "job_started",
        "job_retrying",
        "job_started",
        "job_retrying",
    ]
    retrying = heard[1][1]
    assert isinstance(retrying["exception"], Flaky)
    assert retrying["retry_at"] == base + retrying["delay"]
    assert retrying["job_id"] == job.id
    third = next_file(spool_dir, second)
    heard.clear()
    run_spool_file(third, now=lambda: base + 2, sleep=lambda s: None)
    assert [name for name, _ in heard] == ["job_started", "job_failed"]
    failed = heard[1][1]
    assert (failed["sender"], failed["attempt"]) == (fails_with, 3)
    assert isinstance(failed["exception"], Flaky)
    assert failed["reason"].startswith("Task 'tests.test_task_options.fails_with' failed")


def test_signal_of_an_expiry(spool_dir: Path, heard: list[tuple[str, dict[str, Any]]]) -> None:
    spoolcron.schedule(expiring, ["x"], now=lambda: 1000.0)
    run_spool_file(the_file(spool_dir), now=lambda: 1100.0)
    [(name, kwargs)] = heard
    assert name == "job_expired"
    assert kwargs["expires"] == 1030.0
    assert "dropped, not run" in kwargs["reason"]


def test_a_raising_receiver_is_logged_and_changes_nothing(
    spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    signals.job_started.connect(broken)
    signals.job_succeeded.connect(broken)
    try:
        job = plain.delay("still runs")
        with caplog.at_level(logging.ERROR, "spoolcron.dispatch"):
            result = run_spool_file(the_file(spool_dir))
    finally:
        signals.job_started.disconnect(broken)
        signals.job_succeeded.disconnect(broken)
    assert result.outcome is Outcome.SUCCEEDED
    assert job.status == "succeeded"
    errors = [r for r in caplog.records if r.getMessage().startswith("signal receiver")]
    assert len(errors) == 2
    assert errors[0].exc_info is not None
    assert "receiver bug" in caplog.text


def test_django_tasks_do_not_send_spoolcron_signals(
    spool_dir: Path, heard: list[tuple[str, dict[str, Any]]]
) -> None:
    # The framework's own task_started/task_finished cover those.
    from tests.testapp import framework_tasks

    framework_tasks.add.enqueue(1, 2)
    assert run_spool_file(the_file(spool_dir)).outcome is Outcome.SUCCEEDED
    assert heard == []


def test_the_signals_are_public_api() -> None:
    for name in ("job_started", "job_succeeded", "job_retrying", "job_failed", "job_expired"):
        assert getattr(spoolcron, name) is getattr(signals, name)
        assert name in spoolcron.__all__
    assert "JobTimeout" in spoolcron.__all__
