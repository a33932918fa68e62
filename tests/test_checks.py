"""Settings and server checks (the entry checks are in test_entries.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core import checks

from spoolcron.checks import ServerOptions, check_pending_store, check_server, check_settings


def ids(messages: list[checks.CheckMessage]) -> list[str | None]:
    return [m.id for m in messages]


def test_good_settings_pass(spool_dir: Path) -> None:
    assert check_settings() == []


def test_e010_invalid_setting(settings: Any) -> None:
    settings.SPOOLCRON = {"SPOOL_DIR": "/x", "FSYNC": True, "RETRY_BACKOFF": -1}
    [message] = check_settings()
    assert (message.id, message.msg) == (
        "spoolcron.E010",
        "SPOOLCRON['RETRY_BACKOFF'] must be a number of seconds >= 0, not -1.",
    )


def test_w011_missing_spool_dir(tmp_path: Path, settings: Any) -> None:
    settings.SPOOLCRON = {"SPOOL_DIR": str(tmp_path / "nope")}
    [message] = check_settings()
    assert (message.id, message.msg) == (
        "spoolcron.W011",
        f"The spool directory {str(tmp_path / 'nope')!r} does not exist yet; uWSGI's "
        "--spooler or the first job enqueued creates it.",
    )


def test_e011_spool_dir_is_a_file(tmp_path: Path, settings: Any) -> None:
    path = tmp_path / "file"
    path.write_text("")
    settings.SPOOLCRON = {"SPOOL_DIR": str(path)}
    [message] = check_settings()
    assert (message.id, message.msg) == (
        "spoolcron.E011",
        f"The spool directory {str(path)!r} is not a directory this process can write to.",
    )


def test_w015_use_tz_off(spool_dir: Path, settings: Any) -> None:
    settings.USE_TZ = False
    assert ids(check_settings()) == ["spoolcron.W015"]


def server(spool: Path, *, frequency: int = 30, mule: bool = True) -> ServerOptions:
    return ServerOptions(
        spooler_dirs=(spool,), spooler_frequency=frequency, has_spoolcron_mule=mule
    )


def test_server_checks_only_inside_uwsgi(spool_dir: Path) -> None:
    assert check_server() == []  # no uWSGI in this process


def test_good_server_passes(spool_dir: Path) -> None:
    assert check_server(server=server(spool_dir)) == []


def test_e012_spool_dir_differs(spool_dir: Path, tmp_path: Path) -> None:
    [message] = check_server(server=server(tmp_path / "other"))
    assert (message.id, message.msg) == (
        "spoolcron.E012",
        f"SPOOLCRON['SPOOL_DIR'] is {str(spool_dir)!r} but uWSGI's spooler uses "
        f"{str(tmp_path / 'other')!r}: jobs would be written where no spooler looks.",
    )


def test_e013_no_spooler(spool_dir: Path) -> None:
    options = ServerOptions(spooler_dirs=(), spooler_frequency=30, has_spoolcron_mule=True)
    [message] = check_server(server=options)
    assert (message.id, message.msg) == (
        "spoolcron.E013",
        "uWSGI runs without a spooler, so no spoolcron job will ever run.",
    )


def test_w014_frequency_too_coarse_without_the_mule(spool_dir: Path, settings: Any) -> None:
    settings.SPOOLCRON = {**settings.SPOOLCRON, "MODULES": ["tests.schedule_modules.valid"]}
    [message] = check_server(server=server(spool_dir, frequency=30, mule=False))
    assert (message.id, message.msg) == (
        "spoolcron.W014",
        "Without the spoolcron mule the beat does not run and the spooler looks only every "
        "30 s, coarser than an entry that fires every 5 s.",
    )
    # With the mule, the frequency is only a fallback.
    assert check_server(server=server(spool_dir, frequency=30, mule=True)) == []


def e016(store: str, count: int, place: str, back: str) -> tuple[str, str]:
    return (
        "spoolcron.E016",
        f"SPOOLCRON['PENDING_STORE'] is {store!r} but {count} job(s) still wait in {place}, "
        f"where no mule publishes them; set it back to {back!r} until they have run.",
    )


def test_e016_database_store_with_jobs_left_in_the_files_store(
    tmp_path: Path, settings: Any
) -> None:
    from spoolcron.core.payload import Payload, encode_body
    from spoolcron.spool.pending import FilePendingStore

    pending = tmp_path / "pending"
    settings.SPOOLCRON = {"SPOOL_DIR": str(tmp_path / "spool"), "PENDING_STORE": "database"}
    assert check_pending_store() == []
    jobs = [Payload(task="t", job_id=f"j{n}", run_after=2e9 + n) for n in range(2)]
    FilePendingStore(pending, tmp_path / "spool").add([(p, encode_body(p)) for p in jobs])
    [message] = check_pending_store()
    assert (message.id, message.msg) == e016(
        "database", 2, f"the files store's directory {str(pending)!r}", "files"
    )


@pytest.mark.django_db
def test_e016_files_store_with_jobs_left_in_the_database(tmp_path: Path, settings: Any) -> None:
    from spoolcron.models import WaitingJob

    settings.SPOOLCRON = {"SPOOL_DIR": str(tmp_path / "spool")}
    assert check_pending_store(databases=["default"]) == []
    WaitingJob.objects.create(job_id="j1", task="t", due=2e9, body="{}")
    [message] = check_pending_store(databases=["default"])
    assert (message.id, message.msg) == e016(
        "files", 1, "the database table 'spoolcron_waitingjob'", "database"
    )
    # Inside uWSGI (the mule's checks) too; a plain `manage.py check` reads no database.
    assert [m.id for m in check_pending_store(server=server(tmp_path))] == ["spoolcron.E016"]
    assert check_pending_store() == []


@pytest.mark.django_db
def test_e016_skips_a_database_it_cannot_read(
    tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import DatabaseError
    from django.db.models import QuerySet

    def broken(self: object) -> int:
        raise DatabaseError("no such table: spoolcron_waitingjob")

    settings.SPOOLCRON = {"SPOOL_DIR": str(tmp_path / "spool")}
    monkeypatch.setattr(QuerySet, "count", broken)
    assert check_pending_store(databases=["default"]) == []
