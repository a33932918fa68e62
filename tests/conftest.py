from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def spool_dirs(tmp_path: Path, settings: Any) -> tuple[Path, Path]:
    """A fresh spool dir and failed dir, set in SPOOLCRON for the test."""
    spool = tmp_path / "spool"
    failed = tmp_path / "failed"
    spool.mkdir(mode=0o700)
    settings.SPOOLCRON = {"SPOOL_DIR": str(spool), "FAILED_DIR": str(failed)}
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
