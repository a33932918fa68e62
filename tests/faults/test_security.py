"""Security promises: private directories, nothing unpickled, the registry checked before
anything a spool file names could be imported."""

from __future__ import annotations

import ast
import stat
import sys
from pathlib import Path

import pytest

import spoolcron
from spoolcron.core.payload import Payload
from spoolcron.spool import codec, files, starts
from spoolcron.spool.payloads import write_payload
from tests.conftest import Runs
from tests.helpers import run_due
from tests.integration.conftest import REPO, RunUwsgi
from tests.integration.project import Database

from .support import Dirs, start

pytestmark = pytest.mark.django_db(transaction=True)

UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.uwsgi
def test_directories_are_private(
    run_uwsgi: RunUwsgi, tmp_path: Path, runs: Runs, project_db: Database, settings: object
) -> None:
    """uWSGI creates its --spooler directory 0750; the mule makes it 0700, and the failed
    directory and the spooler's start counters are created 0700."""
    dirs = Dirs(tmp_path / "var" / "spool", tmp_path / "var" / "failed")
    dirs.spool.parent.mkdir()
    settings.SPOOLCRON = {"SPOOL_DIR": str(dirs.spool)}  # type: ignore[attr-defined]
    # The usual umask, whatever the test runner's: uWSGI then creates the directory 0750.
    uwsgi = start(run_uwsgi, dirs, runs, project_db, (), "--umask=022")
    assert mode(dirs.spool) == 0o700
    assert f"directory made private path={dirs.spool} mode=0o700 was=0o750" in uwsgi.log()
    files.write(dirs.spool, f"{codec.PREFIX}broken", {codec.MARKER: b"1"}, b"{")
    uwsgi.wait_until(lambda: dirs.quarantined(), 15, "the broken file to be moved aside")
    assert mode(dirs.failed) == 0o700
    assert mode(dirs.spool / starts.STARTS_DIR) == 0o700
    job = spoolcron.schedule("tests.testapp.tasks.record", ["private"], run_after=4)
    # (The test app's every-minute entry may have a fire waiting too.)
    [path] = [p for p in dirs.pending() if job.id in p.name]
    assert mode(path) == 0o600
    # A job due later waits in the pending store: private the same way.
    later = spoolcron.schedule("tests.testapp.tasks.record", ["later"], run_after=600)
    pending = dirs.spool.parent / "pending"
    [waiting] = [p for p in pending.rglob("*") if later.id in p.name]
    assert (mode(pending), mode(waiting.parent), mode(waiting)) == (0o700, 0o700, 0o600)


def _imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            found |= {a.value for a in node.args if isinstance(a, ast.Constant)}
    return found


@pytest.mark.parametrize("package", ["spoolcron", "schedules"])
def test_nothing_is_unpickled(package: str) -> None:
    """No module of spoolcron or schedules imports a deserializer that runs code: payloads
    are JSON. (A file for uwsgidecorators, which unpickles, is handed to it only if it
    names a function registered with its @spool: tests/faults/test_bad_input.py.)"""
    sources = sorted((REPO / package).rglob("*.py"))
    assert len(sources) > 3
    unsafe = {
        str(path.relative_to(REPO)): sorted(_imports(ast.parse(path.read_text())) & UNSAFE_MODULES)
        for path in sources
    }
    assert {path: names for path, names in unsafe.items() if names} == {}


def test_a_planted_task_name_is_never_imported(dirs: Dirs, runs: Runs) -> None:
    """A spool file naming an importable but unregistered function: the registry lookup
    fails first, the file is quarantined, the module is never imported."""
    module = "tests.faults.apps.canary"
    assert module not in sys.modules
    write_payload(dirs.spool, Payload(task=f"{module}.boom", job_id="planted", run_after=0))
    [result] = run_due()
    assert result.outcome.value == "quarantined"
    assert result.reason.startswith(f"Unknown task '{module}.boom'")
    assert module not in sys.modules
    assert not (runs.directory / "faults-canary-imported").exists()
    assert [p.name for p in dirs.quarantined()] == [f"{codec.PREFIX}spoolcron_planted_1"]
