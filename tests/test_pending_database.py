"""The database pending store (spoolcron.storage.pending) on SQLite and on PostgreSQL.

Every test runs on the default test database (SQLite) and, marked ``postgres``, on a test
database of its own on the server of SPOOLCRON_TEST_DATABASE_URL (on CI:
postgresql://root@127.0.0.1:5432/test, never skipped there): the ``pg`` alias, added to the
connections when this module is imported so that pytest-django creates, migrates and drops it
like the default one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connections, transaction

import spoolcron
from spoolcron.core.payload import Payload, encode_body
from spoolcron.exceptions import JobRunning
from spoolcron.jobs import pending_store
from spoolcron.spool import files
from spoolcron.spool.payloads import read_payload, write_payload
from spoolcron.storage.models import WaitingJob
from spoolcron.storage.pending import REFRESH, WRITE_RETRY, DatabasePendingStore
from tests.postgres import database_url, django_database

PG = "pg"
_url = database_url()
if _url is not None:
    _config = {**django_database(_url), "TEST": {"NAME": f"test_spoolcron_pending_{os.getpid()}"}}
    _configured = connections.configure_settings(
        {"default": dict(connections.settings["default"]), PG: _config}
    )
    connections.settings[PG] = _configured[PG]

DATABASES = ["default", PG] if _url is not None else ["default"]
_skip_pg = (
    []
    if _url is not None
    else [pytest.mark.skip(reason="needs PostgreSQL: set SPOOLCRON_TEST_DATABASE_URL")]
)

pytestmark = pytest.mark.django_db(transaction=True, databases=DATABASES)


@pytest.fixture(
    params=[
        pytest.param("default", id="sqlite"),
        pytest.param(PG, id="postgresql", marks=[pytest.mark.postgres, *_skip_pg]),
    ]
)
def alias(request: pytest.FixtureRequest) -> str:
    if request.param == PG:
        from tests.postgres import require_postgres

        require_postgres()
    return str(request.param)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


StoreFactory = Callable[..., DatabasePendingStore]


@pytest.fixture
def make_store(alias: str, tmp_path: Path, clock: Clock) -> StoreFactory:
    def make(host: str = "host-a", **options: Any) -> DatabasePendingStore:
        spool = options.pop("spool_dir", tmp_path / f"spool-{host}")
        options.setdefault("write", write_payload)
        return DatabasePendingStore(spool, using=alias, host=host, clock=clock, **options)

    return make


def job(due: float, job_id: str | None = None, attempt: int = 1) -> tuple[Payload, bytes]:
    payload = Payload(
        task="tests.testapp.tasks.record",
        job_id=job_id or f"job{due:.0f}",
        run_after=due,
        args=[f"label-{due:.0f}"],
        attempt=attempt,
        enqueued_at=due - 3600,
    )
    return payload, encode_body(payload)


def rows(alias: str) -> list[tuple[str, int, float | None, str | None]]:
    return list(
        WaitingJob.objects.using(alias)
        .order_by("due")
        .values_list("job_id", "attempt", "claimed_until", "claimed_by")
    )


def test_publish_writes_the_due_jobs_soonest_first_and_keeps_their_rows(
    make_store: StoreFactory, alias: str, clock: Clock
) -> None:
    store = make_store()
    jobs = [job(clock.now + 300), job(clock.now + 100), job(clock.now + 200)]
    store.add(jobs)
    assert store.next_due(clock.now) == clock.now + 100
    published = store.publish_due(clock.now + 250)
    assert [(p.file_name, p.due) for p in published] == [
        (jobs[1][0].file_name, clock.now + 100),
        (jobs[2][0].file_name, clock.now + 200),
    ]
    for (payload, _), name in zip(jobs[1:], [p.file_name for p in published], strict=True):
        assert read_payload(files.read(store.spool_dir / name)) == payload
    # Claimed rows stay (until the jobs settle) but no longer wait.
    assert [r[0] for r in rows(alias)] == ["job1000100", "job1000200", "job1000300"]
    assert [r[2] for r in rows(alias)] == [clock.now + 60, clock.now + 60, None]
    assert [p.job_id for p in store.waiting()] == ["job1000300"]
    assert store.count() == 1
    assert store.get("job1000100") == jobs[1][0]
    assert store.publish_due(clock.now + 250) == []


def test_add_in_a_rolled_back_transaction_leaves_no_job(
    make_store: StoreFactory, alias: str, clock: Clock
) -> None:
    store = make_store()

    def add_then_fail() -> None:
        with transaction.atomic(using=alias):
            store.add([job(clock.now + 60)])
            raise RuntimeError("the caller's work failed")

    with pytest.raises(RuntimeError):
        add_then_fail()
    assert rows(alias) == []
    assert store.next_due(clock.now) is None


@pytest.mark.django_db(transaction=True)
def test_schedule_inside_a_rolled_back_transaction_leaves_no_job(
    settings: Any, tmp_path: Path
) -> None:
    settings.SPOOLCRON = {"SPOOL_DIR": str(tmp_path / "spool"), "PENDING_STORE": "database"}

    def schedule_then_fail() -> None:
        with transaction.atomic():
            spoolcron.schedule("tests.testapp.tasks.record", args=["lost"], run_after=3600)
            raise RuntimeError("the view failed")

    with pytest.raises(RuntimeError):
        schedule_then_fail()
    assert WaitingJob.objects.count() == 0
    with transaction.atomic():
        kept = spoolcron.schedule("tests.testapp.tasks.record", args=["kept"], run_after=3600)
    assert list(WaitingJob.objects.values_list("job_id", flat=True)) == [kept.id]
    assert kept.status == "pending"
    assert not (tmp_path / "spool").exists() or files.list_files(tmp_path / "spool") == []


def test_a_retry_replaces_the_row_and_releases_its_claim(
    make_store: StoreFactory, alias: str, clock: Clock
) -> None:
    store = make_store()
    first, _ = job(clock.now + 10)
    store.add([(first, encode_body(first))])
    [published] = store.publish_due(clock.now + 10)
    assert published.file_name.endswith("_1")
    retry = first.next_attempt(clock.now + 600)
    store.add([(retry, encode_body(retry))])
    assert rows(alias) == [(first.job_id, 2, None, None)]
    assert store.get(first.job_id) == retry
    clock.now += 600
    assert [p.file_name for p in store.publish_due(clock.now)] == [retry.file_name]


def test_a_bulk_add_inserts_and_replaces_in_one_go(
    make_store: StoreFactory, alias: str, clock: Clock
) -> None:
    """1,500 rows (COPY on PostgreSQL); then 1,500 more of which 500 are retries of jobs
    already there, one of them claimed: they replace the rows and release the claim."""
    store = make_store()
    store.add([job(clock.now + 10 + n / 1000, f"b{n:04d}") for n in range(1500)])
    assert store.count() == 1500
    clock.now += 10
    [claimed] = store.publish_due(clock.now + 0.0005, limit=1)
    assert claimed.file_name.endswith("b0000_1")
    again = [job(clock.now + 100 + n, f"b{n:04d}", attempt=2) for n in range(500)]
    store.add(again + [job(clock.now + 20 + n / 1000, f"c{n:04d}") for n in range(1000)])
    assert WaitingJob.objects.using(alias).count() == 2500
    assert store.count() == 2500  # the claim on b0000 is gone
    assert store.get("b0000") == again[0][0]
    assert WaitingJob.objects.using(alias).filter(attempt=2).count() == 500


def test_two_publishers_never_publish_the_same_row(
    make_store: StoreFactory, alias: str, clock: Clock
) -> None:
    a, b = make_store("host-a"), make_store("host-b")
    a.add([job(clock.now + i, f"j{i:03d}") for i in range(30)])
    seen: list[str] = []
    while batch := a.publish_due(clock.now + 100, limit=4) + b.publish_due(
        clock.now + 100, limit=3
    ):
        seen += [p.file_name for p in batch]
    assert len(seen) == len(set(seen)) == 30
    assert len(files.list_files(a.spool_dir)) + len(files.list_files(b.spool_dir)) == 30
    assert files.list_files(a.spool_dir)
    assert files.list_files(b.spool_dir)


@pytest.mark.postgres
@pytest.mark.skipif(_url is None, reason="needs PostgreSQL: set SPOOLCRON_TEST_DATABASE_URL")
@pytest.mark.parametrize("alias", [PG], indirect=True)
def test_concurrent_publishers_in_threads_skip_each_others_rows(
    make_store: StoreFactory, clock: Clock
) -> None:
    """Four threads, each its own connection and identity, claim in small batches at once."""
    stores = [make_store(f"host-{n}") for n in range(4)]
    stores[0].add([job(clock.now + i / 100, f"t{i:04d}") for i in range(2000)])
    start = threading.Barrier(len(stores))
    seen: list[list[str]] = [[] for _ in stores]
    errors: list[BaseException] = []

    def publish(n: int) -> None:
        try:
            start.wait()
            while batch := stores[n].publish_due(clock.now + 100, limit=25):
                seen[n] += [p.file_name for p in batch]
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    every = [name for names in seen for name in names]
    assert len(every) == len(set(every)) == 2000
    assert sum(1 for names in seen if names) >= 2  # they really ran side by side
    assert WaitingJob.objects.using(PG).filter(claimed_by__isnull=True).count() == 0


def test_an_expired_lease_is_taken_over_by_another_host(
    make_store: StoreFactory, alias: str, clock: Clock
) -> None:
    a, b = make_store("host-a", lease=60), make_store("host-b", lease=60)
    payload, body = job(clock.now + 5)
    a.add([(payload, body)])
    clock.now += 5
    assert [p.file_name for p in a.publish_due(clock.now)] == [payload.file_name]
    # host-a dies; before its lease runs out nobody else publishes the job.
    clock.now += 59
    assert b.publish_due(clock.now) == []
    assert b.count(due_before=clock.now) == 0
    clock.now += 1.5
    assert b.next_due(clock.now) == payload.run_after
    assert b.count(due_before=clock.now) == 1  # overdue in the store: health says unhealthy
    assert [p.file_name for p in b.publish_due(clock.now)] == [payload.file_name]
    assert (b.spool_dir / payload.file_name).exists()
    assert rows(alias)[0][3] == b.identity


def test_maintain_renews_the_leases_of_this_mule(
    make_store: StoreFactory, alias: str, clock: Clock
) -> None:
    a, b = make_store("host-a", lease=60), make_store("host-b", lease=60)
    a.add([job(clock.now + 1, "renewed"), job(clock.now + 500, "later")])
    clock.now += 1
    [_] = a.publish_due(clock.now)
    clock.now += 50
    a.maintain(clock.now)
    assert rows(alias)[0][2:] == (clock.now + 60, a.identity)
    clock.now += 30  # 80 s after the claim: alive thanks to the renewal
    assert b.publish_due(clock.now) == []


def test_a_restarted_mule_adopts_the_claims_whose_files_are_here_and_releases_the_rest(
    make_store: StoreFactory, alias: str, clock: Clock, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    before = make_store("host-a", spool_dir=spool)
    before.add([job(clock.now + 1, "kept"), job(clock.now + 2, "lost")])
    clock.now += 2
    _, lost = before.publish_due(clock.now)
    (spool / lost.file_name).unlink()  # e.g. the container came back with an empty disk
    other = make_store("host-b")
    other.add([job(clock.now + 3, "other")])
    clock.now += 3
    [_] = other.publish_due(clock.now)
    after = make_store("host-a", spool_dir=spool)  # same host and spool dir, new mule
    assert after.identity != before.identity
    after.maintain(clock.now)
    assert {r[0]: r[3] for r in rows(alias)} == {
        "kept": after.identity,
        "lost": None,
        "other": other.identity,
    }
    assert [p.job_id for p in after.waiting()] == ["lost"]
    assert [p.file_name for p in make_store("host-c").publish_due(clock.now)] == [lost.file_name]


def test_a_claim_whose_file_is_gone_without_settling_is_released(
    make_store: StoreFactory, alias: str, clock: Clock
) -> None:
    """settled() could not delete the row (the database was away): the job runs again."""
    store = make_store()
    store.add([job(clock.now + 1, "unsettled")])
    clock.now += 1
    [published] = store.publish_due(clock.now)
    store.maintain(clock.now)
    assert rows(alias)[0][3] == store.identity  # its file is there: nothing to do
    (store.spool_dir / published.file_name).unlink()
    clock.now += 31  # the next check, half a lease later
    store.maintain(clock.now)
    assert rows(alias) == [("unsettled", 1, None, None)]


def test_settled_deletes_the_row(make_store: StoreFactory, alias: str, clock: Clock) -> None:
    store = make_store()
    store.add([job(clock.now + 1, "done"), job(clock.now + 2, "waits")])
    clock.now += 1
    [_] = store.publish_due(clock.now)
    store.settled("done")
    store.settled("never-stored")
    assert [r[0] for r in rows(alias)] == ["waits"]


def test_cancel(make_store: StoreFactory, alias: str, clock: Clock, tmp_path: Path) -> None:
    here = make_store("host-a", spool_dir=tmp_path / "spool")
    elsewhere = make_store("host-b")
    here.add([job(clock.now + 10, f"j{n}") for n in range(4)])
    assert here.cancel("j0") is True
    assert here.cancel("j0") is False
    assert here.cancel("nope", due=clock.now) is False
    clock.now += 10
    assert len(elsewhere.publish_due(clock.now, limit=1)) == 1  # j1, on host-b
    with pytest.raises(JobRunning) as info:
        here.cancel("j1")
    assert str(info.value) == (
        "Cannot cancel job 'j1': host 'host-b' has published it from the pending store and "
        "may be running it."
    )
    # Its own host's claim: the row goes, the caller (Job.cancel) removes the spool file.
    assert len(make_store("host-a", spool_dir=tmp_path / "spool").publish_due(clock.now, limit=1))
    assert here.cancel("j2") is True
    # An expired claim: nobody publishes it any more.
    clock.now += 61
    assert here.cancel("j1") is True
    assert [r[0] for r in rows(alias)] == ["j3"]


def test_waiting_and_count_page_soonest_first(
    make_store: StoreFactory, alias: str, clock: Clock
) -> None:
    store = make_store()
    store.add([job(clock.now + due) for due in (50, 10, 40, 20, 30)])
    assert [p.run_after - clock.now for p in store.waiting()] == [10, 20, 30, 40, 50]
    assert [p.run_after - clock.now for p in store.waiting(offset=1, limit=2)] == [20, 30]
    assert [p.run_after - clock.now for p in store.waiting(offset=4, limit=10)] == [50]
    assert store.count() == 5
    assert store.count(due_before=clock.now + 30) == 2
    assert store.get("nope") is None


def test_next_due_asks_the_database_at_most_every_refresh(
    make_store: StoreFactory, alias: str, clock: Clock
) -> None:
    mule, web = make_store("host-a"), make_store("host-a")
    assert mule.next_due(clock.now) is None
    web.add([job(clock.now + 20)])  # another process: seen once the answer is old
    assert mule.next_due(clock.now + REFRESH / 2) is None
    assert mule.publish_due(clock.now + 30) == []  # trusts it too: no query
    assert mule.next_due(clock.now + REFRESH) == clock.now + 20
    mule.add([job(clock.now + 10)])  # its own add forgets the answer
    assert mule.next_due(clock.now + REFRESH) == clock.now + 10


def test_a_file_that_cannot_be_written_releases_its_claim(
    make_store: StoreFactory, alias: str, clock: Clock
) -> None:
    def full_disk(spool_dir: Path, payload: Payload, **options: Any) -> Path:
        raise OSError(28, "No space left on device")

    store = make_store(write=full_disk)
    store.add([job(clock.now + 1, "unwritten")])
    clock.now += 1
    assert store.publish_due(clock.now) == []
    assert rows(alias) == [("unwritten", 1, clock.now + WRITE_RETRY, None)]
    clock.now += WRITE_RETRY + 0.1
    published = make_store("host-b").publish_due(clock.now)
    assert [p.file_name for p in published] == ["uwsgi_spoolfile_on_spoolcron_unwritten_1"]


def test_the_setting_makes_the_store_with_its_lease(settings: Any, tmp_path: Path) -> None:
    settings.SPOOLCRON = {
        "SPOOL_DIR": str(tmp_path / "spool"),
        "PENDING_STORE": "database",
        "PENDING_LEASE": 30,
    }
    store = pending_store()
    assert isinstance(store, DatabasePendingStore)
    assert (store.name, store.lease, store.spool_dir) == ("database", 30.0, tmp_path / "spool")


def test_a_scheduled_job_waits_in_the_table_runs_from_it_and_leaves_it(
    settings: Any, tmp_path: Path, runs: Any
) -> None:
    """End to end on the default database: schedule() routes past the horizon to the table,
    run-due publishes it into the spool directory and runs it, settling deletes the row."""
    from tests.helpers import run_due

    settings.SPOOLCRON = {"SPOOL_DIR": str(tmp_path / "spool"), "PENDING_STORE": "database"}
    now = 2_000_000_000.0
    handle = spoolcron.schedule(
        "tests.testapp.tasks.record", args=["from-the-table"], run_after=60, now=lambda: now
    )
    assert list(WaitingJob.objects.values_list("job_id", flat=True)) == [handle.id]
    assert run_due(until=now + 30, clock=lambda: now) == []
    [ran] = run_due(until=now + 60, clock=lambda: now)
    assert ran.outcome.value == "succeeded"
    assert runs.labels() == ["from-the-table"]
    assert WaitingJob.objects.count() == 0


def test_maintain_survives_a_database_that_is_away(
    make_store: StoreFactory, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import DatabaseError
    from django.db.models import QuerySet

    def away(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("server closed the connection unexpectedly")

    store = make_store()
    monkeypatch.setattr(QuerySet, "update", away)
    store.maintain(clock.now)  # logged, not raised: the mule goes on
    assert store._maintaining.failures == 1
