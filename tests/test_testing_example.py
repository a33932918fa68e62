"""The example project's own tests (example_project/example/tests.py), which use
spoolcron.testing from ``django.test.TestCase``, pass under its settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[1]


def test_the_example_projects_tests_pass(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SPOOLCRON_", "DJANGO_")) and key != "PYTHONSTARTUP"
    }
    env["DEMO_VAR_DIR"] = str(tmp_path)  # its database and spool directory
    done = subprocess.run(
        [sys.executable, "manage.py", "test", "example", "-v", "2"],
        cwd=REPO / "example_project",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Ran 4 tests" in done.stderr
    assert "OK" in done.stderr
