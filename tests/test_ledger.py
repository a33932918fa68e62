"""spoolcron.storage.ledger: the beat's DatabaseLedger on the test database.

The beat's own behaviour on a ledger is tests/test_beat.py (in memory) and
tests/faults/test_clock.py (on this one); two hosts sharing it, tests/integration/.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from spoolcron.models import FireClaim, Run
from spoolcron.spool import files
from spoolcron.storage.ledger import DatabaseLedger

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()


def at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def test_a_fire_is_claimed_once_and_written_once(tmp_path: Path) -> None:
    ledger = DatabaseLedger(host="host-a")
    written: list[int] = []

    def write() -> Path:
        written.append(1)
        name = f"uwsgi_spoolfile_on_{len(written)}"
        return files.write(tmp_path, name, {b"a": b"b"}, exclusive=True)

    assert ledger.claim("e", T0, "job-1", write) is True
    assert DatabaseLedger(host="host-b").claim("e", T0, "job-1", write) is False
    assert written == [1]
    assert list(FireClaim.objects.values_list("entry", "fire_time", "job_id", "host")) == [
        ("e", at(T0), "job-1", "host-a")
    ]
    assert ledger.claim("e", T0 + 1, "job-2", write) is True  # the next fire is another claim
    assert len(files.list_files(tmp_path)) == 2


def test_a_claim_whose_write_raises_is_rolled_back(tmp_path: Path) -> None:
    ledger = DatabaseLedger()

    def full_disk() -> Path:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        ledger.claim("e", T0, "job-1", full_disk)
    assert not FireClaim.objects.exists()
    # Nothing holds the fire: the next attempt claims it.
    assert ledger.claim("e", T0, "job-1", lambda: tmp_path) is True


def test_last_fires_is_the_newest_claim_of_each_entry(tmp_path: Path) -> None:
    ledger = DatabaseLedger()
    assert ledger.last_fires() == {}
    for entry, fire in [("a", T0 + 10), ("a", T0 + 30), ("a", T0 + 20), ("b", T0 + 5)]:
        ledger.claim(entry, fire, f"{entry}-{fire}", lambda: tmp_path)
    assert ledger.last_fires() == {"a": T0 + 30, "b": T0 + 5}


def test_baseline_records_since_when_new_entries_are_watched(tmp_path: Path) -> None:
    ledger = DatabaseLedger(host="host-a")
    ledger.claim("old", T0 + 60, "old-1", lambda: tmp_path)
    ledger.baseline(["new", "other"], T0)
    ledger.baseline(["new"], T0)  # a second beat starting at the same instant: no conflict
    assert ledger.last_fires() == {"old": T0 + 60, "new": T0, "other": T0}
    baselines = FireClaim.objects.filter(job_id="").values_list("entry", "host")
    assert sorted(baselines) == [("new", "host-a"), ("other", "host-a")]
    # A baseline claims no fire: the fire at that instant is still free.
    assert ledger.claim("new", T0 + 1, "new-1", lambda: tmp_path) is True


def test_prune_keeps_the_newest_claim_of_each_entry_and_running_runs(tmp_path: Path) -> None:
    ledger = DatabaseLedger()
    for i in range(5):
        ledger.claim("e", T0 + i, f"j{i}", lambda: tmp_path)
    ledger.claim("once", T0, "o", lambda: tmp_path)
    for job_id, outcome in [("done", Run.Outcome.SUCCEEDED), ("busy", Run.Outcome.RUNNING)]:
        Run.objects.create(
            job_id=job_id, task="t", due=at(T0), started=at(T0), outcome=outcome, host="h"
        )
    deleted = ledger.prune(keep=timedelta(seconds=1), now=at(T0 + 100))
    assert deleted == 4 + 1  # four claims of "e", the finished run
    assert ledger.last_fires() == {"e": T0 + 4, "once": T0}
    assert list(Run.objects.values_list("job_id", flat=True)) == ["busy"]


def test_prune_leaves_what_is_newer_than_keep(tmp_path: Path) -> None:
    ledger = DatabaseLedger()
    for i in range(3):
        ledger.claim("e", T0 + i, f"j{i}", lambda: tmp_path)
    assert ledger.prune(keep=timedelta(hours=1), now=at(T0 + 100)) == 0
    assert FireClaim.objects.count() == 3
