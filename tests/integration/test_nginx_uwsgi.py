"""The nginx recipe under a real nginx and a real uWSGI: a location with ``uwsgi_modifier1
17`` and ``uwsgi_param``s enqueues a task that opted in, its mapped parameters becoming its
keyword arguments; a request without the token, or for another task, runs nothing.

nginx is Debian's package: the test installs it when it is missing (as root, with apt-get);
on CI it must run, never skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spoolcron.spool import files
from tests.conftest import Runs
from tests.settings import TEST_NGINX_TOKEN

from .conftest import RunUwsgi
from .harness import free_port, wait_until
from .project import Database
from .test_beat_uwsgi import beat_env, beat_options

pytestmark = [pytest.mark.uwsgi]


def _install_nginx() -> str | None:
    """Install Debian's nginx without starting its service; the path of the binary."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:
        # Installing must not start a system nginx on port 80: "101" = action forbidden.
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "nginx-light"], check=True, env=env, timeout=600
        )
    finally:
        if made_policy:
            policy.unlink()
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )


@pytest.fixture(scope="session")
def nginx_bin() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        found = _install_nginx()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is missing and could not be installed (needs root and apt-get).")
        pytest.skip("nginx is missing and this user cannot install it")
    return found


CONFIG = """
daemon off;
master_process off;
worker_processes 1;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        # The recipe (README "Enqueueing from nginx").
        location /sendmassmail {{
            uwsgi_pass {upstream};
            uwsgi_modifier1 17;
            uwsgi_param spoolcron_task tests.testapp.tasks.mass_mail;
            uwsgi_param spoolcron_token {token};
            uwsgi_param group $arg_group;
            uwsgi_param subject "Our news";
        }}
        location /no-token {{
            uwsgi_pass {upstream};
            uwsgi_modifier1 17;
            uwsgi_param spoolcron_task tests.testapp.tasks.mass_mail;
            uwsgi_param group $arg_group;
        }}
        location /other-task {{
            uwsgi_pass {upstream};
            uwsgi_modifier1 17;
            uwsgi_param spoolcron_task tests.testapp.tasks.record;
            uwsgi_param spoolcron_token {token};
            uwsgi_param label $arg_group;
        }}
    }}
}}
"""


@pytest.fixture
def nginx(nginx_bin: str, tmp_path: Path) -> Iterator[tuple[int, str]]:
    """nginx in front of a uwsgi socket (the upstream address it yields)."""
    prefix = files.ensure_dir(tmp_path / "nginx")
    port, upstream = free_port(), f"127.0.0.1:{free_port()}"
    config = prefix / "nginx.conf"
    config.write_text(
        CONFIG.format(
            prefix=prefix,
            port=port,
            upstream=upstream,
            token=TEST_NGINX_TOKEN,
            user="user root;" if os.geteuid() == 0 else "",
        )
    )
    process = subprocess.Popen(
        [nginx_bin, "-p", str(prefix), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=open(prefix / "stderr.log", "wb"),  # noqa: SIM115  (closed with the process)
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: (prefix / "nginx.pid").exists() or process.poll() is not None or None,
            15,
            message="nginx to start",
        )
        assert process.poll() is None, (prefix / "stderr.log").read_text()
        yield port, upstream
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        # uWSGI answers a spool request with 4 bytes, not HTTP: nginx says 502. The request
        # was taken all the same (the job runs); the status is not the recipe's contract.
        return exc.code


def test_nginx_enqueues_the_opted_in_task_with_its_mapped_params_only(
    nginx: tuple[int, str], run_uwsgi: RunUwsgi, tmp_path: Path, runs: Runs, project_db: Database
) -> None:
    port, upstream = nginx
    spool = files.ensure_dir(tmp_path / "spool")
    uwsgi = run_uwsgi(
        *beat_options(spool, f"--socket={upstream}", "--processes=1"),
        env=beat_env(spool, runs, project_db),
    )
    uwsgi.wait_for_log("spoolcron mule started")
    failed = tmp_path / "failed"

    get(port, "/sendmassmail?group=customers")
    mailed = uwsgi.wait_until(
        lambda: [r for r in runs.all() if r["task"] == "mass_mail"] or None,
        15,
        message="the mass mailing to run",
    )
    assert [(r["group"], r["subject"]) for r in mailed] == [("customers", "Our news")]

    get(port, "/no-token?group=everyone")
    get(port, "/other-task?group=hijack")

    def reasons() -> list[str] | None:
        found = sorted(p.read_text() for p in failed.glob("*.reason.txt"))
        return found if len(found) >= 2 else None

    texts: Any = uwsgi.wait_until(reasons, 15, message="two refused requests")
    assert sum("from nginx without a valid spoolcron_token" in t for t in texts) == 1
    assert (
        sum(
            "names the task 'tests.testapp.tasks.record', which does not accept requests from nginx"
            in t
            for t in texts
        )
        == 1
    )
    assert [r["task"] for r in runs.all()] == ["mass_mail"]  # nothing else ran, once
