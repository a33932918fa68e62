"""spoolcron's pytest plugin: fixtures and a marker for testing tasks and schedules.

Installed with spoolcron as the ``pytest11`` entry point ``spoolcron.testing.pytest_plugin``,
so pytest loads it by itself; listing it in a conftest (``pytest_plugins =
["spoolcron.testing.pytest_plugin"]``, needed with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``) is the
same plugin, loaded once. Loading it changes nothing (no setting is read, no fixture is
autouse but one that looks for the marker) until a test asks for one of its fixtures or
carries its marker; ``-p no:spoolcron.testing.pytest_plugin`` turns it off.

Fixtures:

``spoolcron_jobs``
    Recording mode for the test (``spoolcron.testing.recording()``): jobs are kept in memory,
    ``spoolcron_jobs.all(task=...)``, ``.clear()``, ``.run()``; ``.immediate = True`` runs
    each at enqueue.
``spoolcron_spool_dir``
    A temporary spool directory (with its failed and pending directories) in
    ``SPOOLCRON`` for the test (pytest-django's ``settings``).
``spoolcron_clock``
    A frozen clock (``spoolcron.testing.FrozenClock``: time-machine if installed, else
    freezegun) at the marker's ``now`` or the real time: ``.advance(days=1)``,
    ``.move_to(...)``, ``.now``.

Marker ``@pytest.mark.spoolcron(immediate=False, now=None)``: the test records its jobs
(``spoolcron_jobs``, immediate if asked) and, with ``now``, runs on a clock frozen there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from spoolcron.testing import FrozenClock, RecordingPublisher

__all__ = ["spoolcron_clock", "spoolcron_jobs", "spoolcron_spool_dir"]

MARKER = "spoolcron"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(immediate=False, now=None): record the test's spoolcron jobs (run each "
        "at enqueue with immediate=True); with now, freeze the clock there.",
    )


def _marker_kwargs(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker(MARKER)
    return {} if marker is None else dict(marker.kwargs)


@pytest.fixture
def spoolcron_jobs(request: pytest.FixtureRequest) -> Iterator[RecordingPublisher]:
    """Jobs enqueued during the test, kept in memory instead of written to spool files."""
    from spoolcron.testing import recording

    immediate = bool(_marker_kwargs(request).get("immediate", False))
    with recording(immediate=immediate) as jobs:
        yield jobs


@pytest.fixture
def spoolcron_spool_dir(tmp_path: Path, settings: Any) -> Path:
    """A fresh spool directory (mode 0700) set in ``SPOOLCRON`` for the test."""
    from spoolcron.spool import files

    root = tmp_path / "spoolcron"
    spool = files.ensure_dir(root / "spool")
    settings.SPOOLCRON = {
        **getattr(settings, "SPOOLCRON", {}),
        "SPOOL_DIR": str(spool),
        "FAILED_DIR": str(root / "failed"),
        "PENDING_DIR": str(root / "pending"),
    }
    return spool


@pytest.fixture
def spoolcron_clock(request: pytest.FixtureRequest) -> Iterator[FrozenClock]:
    """Time frozen at the marker's ``now`` (default: the real time) for the test."""
    from spoolcron.testing import FrozenClock

    with FrozenClock(_marker_kwargs(request).get("now")) as clock:
        yield clock


@pytest.fixture(autouse=True)
def _spoolcron_marker(request: pytest.FixtureRequest) -> None:
    """Tests marked ``spoolcron`` get the fixtures the marker asks for."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return
    if marker.kwargs.get("now") is not None:
        request.getfixturevalue("spoolcron_clock")
    request.getfixturevalue("spoolcron_jobs")
