"""The README's Python examples run as written (the ``myapp`` they import is built here)."""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).parents[1] / "README.rst"


def python_blocks() -> list[str]:
    text = README.read_text()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text)
    return [textwrap.dedent(block) for block in blocks]


def block_starting(comment: str) -> str:
    """The blocks starting with ``comment`` (a file may be shown in several parts), joined."""
    blocks = [b for b in python_blocks() if b.startswith(comment)]
    assert blocks, comment
    return "\n\n".join(blocks)


@pytest.fixture
def myapp(tmp_path: Path, settings: Any) -> Iterator[Path]:
    package = tmp_path / "myapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    # The tasks the README's entries name, beside the README's own tasks.py example.
    extra = "\n\n@spoolcron.task\ndef cleanup(): ...\n"
    extra += "\n\n@spoolcron.task\ndef report(to): ...\n"
    extra += "\n\n@spoolcron.task\ndef nightly(): ...\n"
    (package / "tasks.py").write_text(block_starting("# myapp/tasks.py") + extra)
    (package / "schedules.py").write_text(block_starting("# myapp/schedules.py"))
    spool = tmp_path / "spool"
    settings.SPOOLCRON = {"SPOOL_DIR": str(spool), "MODULES": ["myapp.schedules"]}
    sys.path.insert(0, str(tmp_path))
    try:
        yield package
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "myapp" or m.startswith("myapp.")]:
            del sys.modules[name]


@pytest.mark.django_db(transaction=True)  # Job.status reads the results store
def test_the_jobs_example_runs(myapp: Path) -> None:
    [example] = [
        b
        for b in python_blocks()
        if b.startswith("from datetime import timedelta\n\nimport spoolcron")
    ]
    namespace: dict[str, Any] = {}
    exec(compile(example, "README.rst", "exec"), namespace)
    job = namespace["job"]
    assert job.status == "missing"  # cancelled
    assert namespace["spoolcron"].health()["pending"] == 1  # the .delay() one


@pytest.mark.django_db(transaction=True)
def test_the_schedule_many_example_runs(myapp: Path) -> None:
    from spoolcron.jobs import pending_store

    [example] = [b for b in python_blocks() if "spoolcron.schedule_many(" in b]
    namespace: dict[str, Any] = {}
    exec(compile(example, "README.rst", "exec"), namespace)
    assert len(namespace["jobs"]) == 1000
    assert pending_store().count() == 1000  # due in a day: all wait in the pending store


def test_the_entries_example_passes_the_checks(myapp: Path) -> None:
    from spoolcron.core.entries import collect

    importlib.import_module("myapp.tasks")  # registers the tasks, as the app config would
    entries, problems = collect()
    assert problems == []
    names = {e.name for e in entries}
    assert {"cleanup", "weekly-report", "nightly", "myapp.schedules.heartbeat"} <= names
    # As the README says: `spoolcron run heartbeat` points at the decorated entry's name.
    from spoolcron.exceptions import UnknownEntry
    from spoolcron.operations import run_entry

    with pytest.raises(UnknownEntry, match=r"did you mean 'myapp\.schedules\.heartbeat'\?$"):
        run_entry("heartbeat")


@pytest.mark.django_db(transaction=True)
def test_the_tasks_framework_example_runs(myapp: Path) -> None:
    from spoolcron._tasks_compat import TaskResultStatus
    from tests.helpers import run_due

    [example] = [
        b for b in python_blocks() if b.startswith("from datetime import timedelta\n\nfrom django")
    ]
    namespace: dict[str, Any] = {}
    exec(compile(example, "README.rst", "exec"), namespace)
    result = namespace["result"]
    assert result.status == TaskResultStatus.READY
    [ran] = run_due()  # the one due now; `later` waits its 5 minutes
    assert ran.payload is not None
    assert ran.payload.job_id == result.id
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"photo": 42, "width": 400}
    assert namespace["later"].task.run_after is not None


# --- "Testing your tasks and schedules" ----------------------------------------------------


def readme_test(comment: str) -> dict[str, Any]:
    """The README's test file starting with ``comment``, executed: its names."""
    namespace: dict[str, Any] = {}
    exec(compile(block_starting(comment), "README.rst", "exec"), namespace)
    return namespace


@pytest.mark.usefixtures("loaded_periodic_only")  # run_due imports myapp.schedules
@pytest.mark.django_db
def test_the_recording_example_runs(myapp: Path) -> None:
    import spoolcron.testing

    test = readme_test("# tests/test_welcome.py")["test_signing_up_sends_the_welcome"]
    with spoolcron.testing.recording() as jobs:
        test(jobs)
        assert jobs.all() == []


@pytest.mark.usefixtures("loaded_periodic_only")
@pytest.mark.django_db
def test_the_dst_example_runs(myapp: Path, settings: Any) -> None:
    import spoolcron.testing

    settings.TIME_ZONE = "Europe/Rome"
    test = readme_test("# tests/test_nightly.py")["test_nightly_runs_once_a_night_across_dst"]
    with spoolcron.testing.recording() as jobs:
        test(jobs)


@pytest.mark.django_db(transaction=True)
def test_the_testcase_example_runs(myapp: Path) -> None:
    import unittest

    case = readme_test("# myapp/tests.py")["WelcomeTests"]
    outcome = unittest.TextTestRunner(verbosity=0).run(
        unittest.defaultTestLoader.loadTestsFromTestCase(case)
    )
    assert (outcome.testsRun, outcome.errors, outcome.failures) == (1, [], [])


# --- "Installing" ------------------------------------------------------------------------------


def test_the_installing_extras_exist() -> None:
    import configparser

    setup = configparser.ConfigParser()
    setup.read(README.parent / "setup.cfg")
    extras = setup["options.extras_require"]
    assert "uWSGI" in extras["uwsgi"]
    assert "django-tasks" in extras["tasks"]
    assert 'pip install "spoolcron[uwsgi]"' in README.read_text()


def test_the_installing_logging_shows_the_job_lines(capsys: pytest.CaptureFixture[str]) -> None:
    import logging
    import logging.config

    namespace: dict[str, Any] = {}
    exec(compile(block_starting("# settings.py"), "README.rst", "exec"), namespace)
    assert "spoolcron" in namespace["INSTALLED_APPS"]
    logger = logging.getLogger("spoolcron")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        logging.config.dictConfig(namespace["LOGGING"])
        logging.getLogger("spoolcron.dispatch").info("job started job=%s late_ms=%.1f", "j", 3.2)
        assert "job started job=j late_ms=3.2" in capsys.readouterr().err
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("loaded_periodic_only")  # its @periodic entry goes with the test
def test_the_stored_entries_example_runs(myapp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from spoolcron.models import DatabaseEntry, FireClaim

    importlib.import_module("myapp.tasks")  # registers the tasks, as the app config would
    [example] = [b for b in python_blocks() if b.startswith("# stored entries from Python")]
    exec(compile(example, "README.rst", "exec"), {})
    assert capsys.readouterr().out.startswith("every 10 minutes (UTC) [")
    assert not DatabaseEntry.objects.exists()  # deleted at the end
    # The add and the new schedule each left a baseline: no fire from before them runs.
    assert list(FireClaim.objects.values_list("job_id", flat=True)) == ["", ""]


def test_the_queues_example_is_valid_settings(settings: Any) -> None:
    from spoolcron.conf import get_settings

    namespace: dict[str, Any] = {}
    exec(block_starting("# settings.py: the queues example"), namespace)
    settings.SPOOLCRON = namespace["SPOOLCRON"]
    conf = get_settings()
    assert list(conf.queues) == ["default", "slow", "jobs"]
    assert conf.queue("slow").processes == 4
    assert conf.queue("jobs").address == "10.0.0.5:3031"


def test_the_nginx_example_declares_an_opted_in_task() -> None:
    from spoolcron.core import registry

    namespace: dict[str, Any] = {"__name__": "myapp.mail"}
    exec(block_starting("# myapp/mail.py: the nginx example"), namespace)
    try:
        assert namespace["send_mass_mail"].routing.nginx == {"group": "group"}
    finally:
        # Other tests' checks run without NGINX_TOKENS: they would warn about it.
        registry._tasks.pop("myapp.mail.send_mass_mail", None)
