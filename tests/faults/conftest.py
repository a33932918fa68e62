"""Fixtures of the fault suite: the integration fixtures, plus spool dirs set in the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spoolcron.spool import files
from tests.integration.conftest import (  # noqa: F401  (fixtures, found by name)
    postgres_db,
    project_db,
    run_uwsgi,
    sqlite_template,
    uwsgi_bin,
)

from .support import Dirs


@pytest.fixture
def dirs(tmp_path: Path, settings: Any) -> Dirs:
    """A spool dir (made by spoolcron, 0700) and a failed dir beside it, in the settings."""
    spool = files.ensure_dir(tmp_path / "spool")
    failed = tmp_path / "failed"
    settings.SPOOLCRON = {"SPOOL_DIR": str(spool), "FAILED_DIR": str(failed)}
    return Dirs(spool, failed)
