"""Importing this module leaves a marker file: proof that something imported it."""

import os
from pathlib import Path

Path(os.environ["SPOOLCRON_TEST_RESULTS"], "faults-canary-imported").write_text("imported")


def boom() -> None:
    Path(os.environ["SPOOLCRON_TEST_RESULTS"], "faults-canary-ran").write_text("ran")
