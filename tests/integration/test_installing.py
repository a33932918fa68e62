"""The README's "Installing" section, followed literally by a new user in a fresh project.

``django-admin startproject``, the settings exactly as the README shows them (its code block
is parsed from README.rst, so a README change that no longer works breaks this test), a tiny
app with a task and an every-second entry, then the README's commands: ``migrate``,
``collectstatic``, ``spoolcron uwsgi-config > uwsgi.ini`` and ``uwsgi --ini uwsgi.ini``. The
console must show spoolcron's job lines and the admin must be styled (its CSS served).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from .conftest import REPO
from .harness import UwsgiProcess, free_port

README = REPO / "README.rst"
VENV_BIN = Path(sys.executable).parent
COMMAND_TIMEOUT = 60.0
HTTP_TIMEOUT = 10.0
STYLESHEET = re.compile(r'<link rel="stylesheet"[^>]*href="(?P<href>[^"]+)"')


def installing_settings_block() -> str:
    """The ``settings.py`` code block of the README's "Installing" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\nInstalling\n==========\n", 1)[1].split("\n.. SECTION", 1)[0]
    block = section.split(".. code-block:: python\n\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line and not line.startswith("    "):
            break  # the first unindented line ends the block
        lines.append(line)
    return textwrap.dedent("\n".join(lines))


class Uwsgi(UwsgiProcess):
    """``uwsgi --ini uwsgi.ini``, as the README runs it (``--die-on-term`` if the ini lacks it)."""

    def __init__(self, ini: Path, log_path: Path, env: dict[str, str]) -> None:
        super().__init__(cwd=ini.parent, log_path=log_path, binary=VENV_BIN / "uwsgi", env=env)
        self.ini = ini

    @property
    def command(self) -> list[str]:
        extra = [] if "\ndie-on-term = true\n" in self.ini.read_text() else ["--die-on-term"]
        return [str(self.binary), "--ini", self.ini.name, *extra]


@pytest.mark.uwsgi
def test_a_fresh_project_following_the_readme_shows_job_lines_and_a_styled_admin(
    uwsgi_bin: Path, tmp_path: Path
) -> None:
    # "pip install spoolcron[uwsgi]" is already done: the test virtualenv has spoolcron
    # (editable) and uWSGI installed. Its bin directory comes first on PATH, as if activated.
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "PYTHONPATH"}}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    var = tmp_path / "var"  # stands for the README's /var/lib/myproject

    def run(*args: str, cwd: Path) -> str:
        result = subprocess.run(
            args, cwd=cwd, env=env, capture_output=True, stdin=subprocess.DEVNULL,
            timeout=COMMAND_TIMEOUT, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{args} failed:\n{result.stderr.decode()}"
        return result.stdout.decode()

    run(str(VENV_BIN / "django-admin"), "startproject", "myproject", cwd=tmp_path)
    root = tmp_path / "myproject"
    run(sys.executable, "manage.py", "startapp", "myapp", cwd=root)

    # settings.py, exactly as the README's "Installing" section says.
    block = installing_settings_block()
    installed, _, rest = block.partition("\n]\n")
    assert '"spoolcron",' in installed, "the README no longer adds spoolcron to INSTALLED_APPS"
    assert rest.lstrip().startswith("SPOOLCRON = "), rest
    assert "LOGGING = {" in rest, "the README's LOGGING snippet is gone"
    settings_py = root / "myproject" / "settings.py"
    settings = settings_py.read_text()
    # Django's template quotes with ' (5.2) or " (6.x): add to the list, whatever its style.
    settings, added = re.subn(
        r"(INSTALLED_APPS = \[\n(?:    .*\n)*?)\]\n",
        lambda m: m[1] + '    "spoolcron",\n    "myapp",\n]\n',
        settings,
        count=1,
    )
    assert added == 1, "no INSTALLED_APPS list in the generated settings"
    settings += "\n" + rest.replace("/var/lib/myproject", str(var))
    settings_py.write_text(settings)

    # A task and an every-second entry, in the style of the README's examples.
    (root / "myapp" / "tasks.py").write_text(
        textwrap.dedent("""\
            import spoolcron


            @spoolcron.task
            def tick() -> None:
                pass
        """)
    )
    (root / "myapp" / "schedules.py").write_text(
        textwrap.dedent("""\
            from spoolcron import Entry

            ENTRIES = [
                Entry("tick", "myapp.tasks.tick", "every second"),
            ]
        """)
    )

    # "and from the project's root::"
    port = free_port()
    run(sys.executable, "manage.py", "migrate", cwd=root)
    run(sys.executable, "manage.py", "collectstatic", "--noinput", cwd=root)
    ini = root / "uwsgi.ini"
    # python manage.py spoolcron uwsgi-config > uwsgi.ini
    config = run(
        sys.executable, "manage.py", "spoolcron", "uwsgi-config", "--http", f"127.0.0.1:{port}",
        cwd=root,
    )  # fmt: skip
    ini.write_text(config)

    uwsgi = Uwsgi(ini, tmp_path / "console.log", env)
    try:
        uwsgi.start(timeout=30)
        # (1) The console shows the every-second entry's job lines.
        uwsgi.wait_for_log(r"job started job=tick-\S+ task=myapp\.tasks\.tick .*late_ms=", 10)
        uwsgi.wait_for_log(r"job succeeded job=tick-\S+ task=myapp\.tasks\.tick ", 10)

        # (2) The admin is styled: the login page and the stylesheet it links are served.
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(base + "/admin/login/", timeout=HTTP_TIMEOUT) as response:
            assert response.status == 200
            page = response.read().decode()
        hrefs = [m["href"] for m in STYLESHEET.finditer(page)]
        assert any(h.endswith("/admin/css/base.css") for h in hrefs), hrefs
        for href in hrefs:
            with urllib.request.urlopen(base + href, timeout=HTTP_TIMEOUT) as response:
                assert response.status == 200, href
                assert response.headers.get_content_type() == "text/css", href
                assert response.read(), href
    finally:
        uwsgi.stop()
