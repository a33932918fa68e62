from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.settings import TEST_NGINX_TOKEN, TEST_REMOTE_KEY


@pytest.fixture
def loaded_periodic_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget @spoolcron.periodic entries of modules no longer imported.

    The decorator registers into a process-wide list that nothing prunes: entries of a module
    another test imported and unloaded (test_readme's myapp) would show up in collect().
    """
    from spoolcron.core import entries

    registered = [(m, e) for m, e in entries._periodic if m in sys.modules]
    monkeypatch.setattr(entries, "_periodic", registered)


@pytest.fixture
def spool_dirs(tmp_path: Path, settings: Any) -> tuple[Path, Path]:
    """A fresh spool dir and failed dir, set in SPOOLCRON for the test."""
    spool = tmp_path / "spool"
    failed = tmp_path / "failed"
    spool.mkdir(mode=0o700)
    settings.SPOOLCRON = {
        "SPOOL_DIR": str(spool),
        "FAILED_DIR": str(failed),
        # tests.testapp.tasks accepts remote and nginx requests: the checks want their secrets.
        "REMOTE_KEYS": [TEST_REMOTE_KEY],
        "NGINX_TOKENS": [TEST_NGINX_TOKEN],
    }
    return spool, failed


@pytest.fixture
def spool_dir(spool_dirs: tuple[Path, Path]) -> Path:
    return spool_dirs[0]


class Runs:
    """What the test tasks recorded (tests/testapp/tasks.py), read from the results dir."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def all(self) -> list[dict[str, Any]]:
        path = self.directory / "runs.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def labels(self, task: str | None = None) -> list[str]:
        return [r["label"] for r in self.all() if task is None or r["task"] == task]


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runs:
    directory = tmp_path / "results"
    directory.mkdir()
    monkeypatch.setenv("SPOOLCRON_TEST_RESULTS", str(directory))
    return Runs(directory)
