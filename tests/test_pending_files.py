"""The files pending store: jobs due later than the horizon wait beside the spool directory and
reach it by rename at their time, once; everything that reads jobs sees them there."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import spoolcron
from spoolcron.core.payload import Payload, encode_body
from spoolcron.jobs import pending_store, publisher
from spoolcron.operations import cancel_job, health, pending, upcoming
from spoolcron.runtime.mule import MuleLoop
from spoolcron.runtime.publish import Publisher
from spoolcron.spool import files
from spoolcron.spool.pending import FilePendingStore
from tests.conftest import Runs
from tests.helpers import Clock, run_due
from tests.testapp import tasks

T0 = 1_900_000_020.0  # 20 s into a minute


def payload(job_id: str, due: float) -> tuple[Payload, bytes]:
    job = Payload(task="tests.testapp.tasks.record", job_id=job_id, run_after=due, args=[job_id])
    return job, encode_body(job)


@pytest.fixture
def store(tmp_path: Path) -> FilePendingStore:
    (tmp_path / "spool").mkdir()
    return FilePendingStore(tmp_path / "pending", tmp_path / "spool")


def spooled_names(store: FilePendingStore) -> list[str]:
    return [p.name for p in files.list_files(store.spool_dir)]


def test_jobs_wait_in_a_directory_per_minute_of_their_due_time(store: FilePendingStore) -> None:
    store.add([payload("a", T0 + 30), payload("b", T0 + 100.25)])
    minutes = sorted(p.name for p in store.pending_dir.iterdir())
    assert minutes == [f"{int(T0 // 60) * 60:012d}", f"{int((T0 + 100) // 60) * 60:012d}"]
    [waiting] = list((store.pending_dir / minutes[1]).iterdir())
    assert waiting.name == f"{Payload('t', 'b', 0).file_name}@{round((T0 + 100.25) * 1e6):017d}"
    assert store.count() == 2
    assert store.next_due(T0) == T0 + 30
    assert spooled_names(store) == []


def test_publishing_renames_what_is_due_into_the_spool_in_due_order(
    store: FilePendingStore,
) -> None:
    store.add([payload("late", T0 + 90), payload("b", T0 + 31), payload("a", T0 + 30)])
    published = store.publish_due(T0 + 31)
    assert [(p.file_name, p.due) for p in published] == [
        (Payload("t", "a", 0).file_name, T0 + 30),
        (Payload("t", "b", 0).file_name, T0 + 31),
    ]
    assert sorted(spooled_names(store)) == sorted(p.file_name for p in published)
    # The spool file is the job, due at its time.
    file = files.read(store.spool_dir / published[0].file_name)
    assert Payload.from_body(file.body, name="x").run_after == T0 + 30
    assert store.publish_due(T0 + 31) == []
    assert store.next_due(T0) == T0 + 90
    assert store.count() == 1


def test_two_publishers_never_publish_a_job_twice(tmp_path: Path) -> None:
    (tmp_path / "spool").mkdir()
    first = FilePendingStore(tmp_path / "pending", tmp_path / "spool")
    second = FilePendingStore(tmp_path / "pending", tmp_path / "spool")
    first.add([payload(f"job-{i}", T0 + 30 + i / 1000) for i in range(300)])
    found: list[list[str]] = [[], []]

    def publish(store: FilePendingStore, into: list[str]) -> None:
        into += [p.file_name for p in store.publish_due(T0 + 60, limit=10_000)]

    threads = [
        threading.Thread(target=publish, args=(store, into))
        for store, into in zip((first, second), found, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(found[0] + found[1]) == sorted(spooled_names(first))
    assert len(found[0]) + len(found[1]) == 300


def test_a_missing_spool_directory_is_made_not_taken_for_a_lost_race(tmp_path: Path) -> None:
    store = FilePendingStore(tmp_path / "pending", tmp_path / "spool")
    store.add([payload("a", T0 + 30)])
    [published] = store.publish_due(T0 + 30)
    assert spooled_names(store) == [published.file_name]


def test_cancel_with_and_without_the_due_time(store: FilePendingStore) -> None:
    store.add([payload("a", T0 + 30), payload("b", T0 + 3000)])
    assert store.cancel("a", due=T0 + 30) is True
    assert store.cancel("a", due=T0 + 30) is False
    assert store.cancel("b") is True
    assert store.count() == 0


def test_waiting_pages_soonest_first(store: FilePendingStore) -> None:
    store.add([payload(f"j{i}", T0 + 30 + 50 * i) for i in range(7)])
    assert [p.job_id for p in store.waiting(limit=3)] == ["j0", "j1", "j2"]
    assert [p.job_id for p in store.waiting(offset=5)] == ["j5", "j6"]
    assert store.count(due_before=T0 + 131) == 3


def test_finished_minutes_are_removed_as_the_publisher_passes_them(
    store: FilePendingStore,
) -> None:
    store.add([payload("a", T0 + 30)])
    store.publish_due(T0 + 30)
    assert store.next_due(T0 + 30) is None
    assert list(store.pending_dir.iterdir()) != []  # this minute may still get jobs
    assert store.next_due(T0 + 200) is None
    assert list(store.pending_dir.iterdir()) == []


# --- through spoolcron.schedule() and the operations -----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_job_due_later_than_the_horizon_waits_in_the_store(spool_dir: Path) -> None:
    soon = tasks.record.schedule(["soon"], run_after=2)
    later = tasks.record.schedule(["later"], run_after=3600)
    assert [p.name for p in files.list_files(spool_dir)] == [
        f"uwsgi_spoolfile_on_spoolcron_{soon.id}_1"
    ]
    assert [p.job_id for p in pending_store().waiting()] == [later.id]
    assert (soon.status, later.status) == ("pending", "pending")
    jobs = pending()
    assert [(j.id, j.place, j.path is None) for j in jobs] == [
        (soon.id, "spool", False),
        (later.id, "files", True),
    ]
    listed, _ = upcoming(count=5000)  # the test app's entries fire every few seconds
    assert [r.job_id for r in listed.runs if r.source == "one-off"] == [soon.id, later.id]
    numbers = health()
    assert (numbers["pending"], numbers["pending_spool"], numbers["pending_store"]) == (2, 1, 1)


@pytest.mark.django_db(transaction=True)
def test_a_job_in_the_store_is_cancelled_by_its_handle_and_by_id(spool_dir: Path) -> None:
    first = tasks.record.schedule(["a"], run_after=600)
    second = tasks.record.schedule(["b"], run_after=900)
    assert first.cancel() is True
    assert first.status == "missing"
    assert cancel_job(second.id).id == second.id
    assert pending_store().count() == 0


@pytest.mark.django_db(transaction=True)
def test_overdue_jobs_left_in_the_store_make_health_unhealthy(spool_dir: Path) -> None:
    tasks.record.schedule(["x"], run_after=600)
    report = spoolcron.operations.health_report(now=time.time() + 700, max_overdue=60)
    assert (
        "1 job(s) are still in the files pending store more than 60 s past their time: no "
        "spoolcron mule publishes them (is uWSGI running with the options `spoolcron "
        "uwsgi-config` prints?)."
    ) in report.reasons


@pytest.mark.django_db(transaction=True)
def test_run_due_runs_what_the_store_holds_until_then(spool_dir: Path, runs: Runs) -> None:
    tasks.record.schedule(["in-an-hour"], run_after=3600)
    [ran] = run_due(until=time.time() + 7200)
    assert ran.outcome.value == "succeeded"
    assert runs.labels() == ["in-an-hour"]
    assert pending_store().count() == 0


@pytest.mark.django_db(transaction=True)
def test_schedule_many_checks_every_job_first_then_writes_them(spool_dir: Path) -> None:
    with pytest.raises(spoolcron.InvalidArguments) as info:
        spoolcron.schedule_many(
            tasks.record, [{"args": ["ok"], "run_after": 600}, {"args": "not a list"}]
        )
    assert str(info.value) == (
        "Cannot schedule task 'tests.testapp.tasks.record': args must be a list, not 'not a list'."
    )
    assert pending_store().count() == 0
    with pytest.raises(spoolcron.InvalidArguments) as info:
        spoolcron.schedule_many(tasks.record, [{"args": ["ok"], "when": 600}])
    assert str(info.value) == (
        "Cannot schedule task 'tests.testapp.tasks.record': jobs[0] must be a dict with keys "
        "from args, expires, kwargs, meta, run_after, not {'args': ['ok'], 'when': 600}."
    )
    jobs = spoolcron.schedule_many(
        tasks.record, [{"args": [i], "run_after": 600 + i} for i in range(50)] + [{"args": [-1]}]
    )
    assert len(jobs) == 51
    assert pending_store().count() == 50
    assert len(files.list_files(spool_dir)) == 1


# --- the mule publishes --------------------------------------------------------------------


class _Beat:
    def start(self) -> None:
        pass

    def tick(self) -> float:
        return 1.0


class _Waker:
    def __init__(self) -> None:
        self.notified: list[tuple[str, float]] = []

    def notify(self, name: str, due: float, spool_dir: Path | None = None) -> None:
        self.notified.append((name, due))

    def step(self) -> float:
        return 0.02


def test_the_mule_publishes_a_second_ahead_and_sleeps_until_the_next(
    store: FilePendingStore,
) -> None:
    store.add([payload("a", T0 + 30), payload("b", T0 + 40)])
    clock = Clock(T0 + 28.0)
    waker = _Waker()
    loop = MuleLoop(
        _Beat(),  # type: ignore[arg-type]
        waker,  # type: ignore[arg-type]
        spool_dir=store.spool_dir,
        spooler_pids=list,
        prune=lambda: None,
        store=store,
        clock=clock,
    )
    loop.step()
    assert waker.notified == []
    clock.now = T0 + 29.0
    loop.step()
    assert waker.notified == [(Payload("t", "a", 0).file_name, T0 + 30)]
    assert spooled_names(store) == [Payload("t", "a", 0).file_name]
    clock.now = T0 + 30.0
    # The loop's own wait is bounded by the waker's poll; the store's next job is 9 s away.
    assert loop._publish(clock.now) == pytest.approx(9.0)


def test_publisher_routes_by_the_enqueuers_clock(store: FilePendingStore) -> None:
    router = Publisher(store.spool_dir, store, horizon=5.0, clock=lambda: 0.0)
    router.publish_many(
        [payload("now", T0), payload("soon", T0 + 5), payload("later", T0 + 6)], now=T0
    )
    assert sorted(spooled_names(store)) == sorted(
        Payload("t", j, 0).file_name for j in ("now", "soon")
    )
    assert [p.job_id for p in store.waiting()] == ["later"]
    assert publisher().store is not None


def test_a_change_within_one_tick_of_the_last_listing_is_not_missed(
    store: FilePendingStore,
) -> None:
    store.add([payload("a", T0 + 30)])
    minute = store.pending_dir / f"{int(T0 // 60) * 60:012d}"
    seen = minute.stat().st_mtime_ns
    assert store.next_due(T0) == T0 + 30
    # A second job lands in the same tick of the coarse clock: the mtime does not move.
    store.add([payload("b", T0 + 20)])
    os.utime(minute, ns=(seen, seen))
    assert store.next_due(T0) == T0 + 20
