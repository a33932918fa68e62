"""The uWSGI options a project needs (``manage.py spoolcron uwsgi-config``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.conf import settings

from ..conf import DEFAULT_QUEUE, get_settings

__all__ = ["uwsgi_config"]


def uwsgi_config(
    *, http: str | None = "127.0.0.1:8000", socket: str | None = None, processes: int = 4
) -> str:
    """The uWSGI options this project needs, as an ini file with a comment on each line.

    ``http`` (uWSGI's HTTP router) or ``socket`` (uwsgi protocol, behind nginx) says where
    to listen.
    """
    conf = get_settings()
    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE") or settings.SETTINGS_MODULE
    lines = ["[uwsgi]"]
    wsgi = getattr(settings, "WSGI_APPLICATION", None)
    if wsgi:
        module, _, callable_name = str(wsgi).rpartition(".")
        target = module if callable_name == "application" else f"{module}:{callable_name}"
        lines += ["; the Django project (WSGI_APPLICATION)", f"module = {target}"]
    if settings_module:
        lines += [
            "; the settings the spooler and the mule load too",
            f"env = DJANGO_SETTINGS_MODULE={settings_module}",
        ]
    base_dir = getattr(settings, "BASE_DIR", None)
    if base_dir:
        lines += ["; where the project's modules import from", f"chdir = {Path(base_dir)}"]
    if sys.prefix != sys.base_prefix:
        lines += [
            "; this virtualenv (a pip-built uwsgi embeds the base interpreter)",
            f"virtualenv = {sys.prefix}",
        ]
    lines += [
        "; one master process supervises the workers, the spooler and the mule",
        "master = true",
        "; stop on SIGTERM (uWSGI 2.0 reloads on it otherwise)",
        "die-on-term = true",
        "; web workers: size them for your traffic",
        f"processes = {processes}",
    ]
    if socket:
        lines += ["; uwsgi protocol, behind a web server such as nginx", f"socket = {socket}"]
        if conf.remote_keys or conf.nginx_tokens:
            lines += [
                "; spool requests from other hosts or nginx up to the protocol's 64 KiB",
                "buffer-size = 65535",
            ]
    elif http:
        lines += ["; where to listen for HTTP", f"http = {http}"]
    static_root = getattr(settings, "STATIC_ROOT", None)
    static_url = str(getattr(settings, "STATIC_URL", None) or "/static/")
    if static_root and not static_url.startswith(("http://", "https://", "//")):
        lines += [
            "; the admin's styles and scripts, after `manage.py collectstatic`",
            f"static-map = /{static_url.strip('/')}={Path(static_root)}",
        ]
    lines += [
        "; the same directory as SPOOLCRON['SPOOL_DIR']",
        *_spooler_lines(conf.queue(DEFAULT_QUEUE).processes, conf.spool_dir),
    ]
    for queue in conf.local_queues:
        if queue.name != DEFAULT_QUEUE and queue.spool_dir is not None:
            lines += [
                f"; queue {queue.name!r} (SPOOLCRON['QUEUES'])",
                *_spooler_lines(queue.processes, queue.spool_dir),
            ]
    remote = [queue for queue in conf.queues.values() if queue.is_remote]
    for queue in remote:
        where = f"its spooler {queue.spooler}" if queue.spooler else "its first spooler"
        lines.append(
            f"; queue {queue.name!r} is remote: {queue.address} runs {where}, spoolcron's "
            "mule, and a uwsgi socket there"
        )
    lines += [
        '; no "managing request" lines from uWSGI for each job: spoolcron logs its own',
        "spooler-quiet = true",
        "; installs the spooler callable (it chains to uwsgidecorators' for files not ours);",
        "; imported in the master before the fork, so the spooler has it under lazy-apps too",
        "shared-import = spoolcron.uwsgi",
        "; the beat and the waker, one mule per uWSGI instance; a script path, because the",
        "; module:function form crashes the mule under lazy-apps",
        f"mule = {Path(__file__).resolve().parent.parent / 'mule.py'}",
    ]
    return "\n".join(lines) + "\n"


def _spooler_lines(processes: int, spool_dir: Path) -> list[str]:
    """One ``spooler`` line per process: uWSGI starts a spooler process for each line, and
    --spooler-processes would apply to every directory listed after it."""
    lines = [f"spooler = {spool_dir.resolve()}"] * processes
    if processes > 1:
        lines.insert(0, f"; {processes} spooler processes: one line each")
    return lines
