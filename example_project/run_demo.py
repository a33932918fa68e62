#!/usr/bin/env python
"""Run the example project under uWSGI, as ``make demo`` does.

    python example_project/run_demo.py [--port 8000] [--var-dir DIR]

Prepares DIR (default: example_project/var/): migrates the SQLite database, creates the user
``admin`` (password ``admin``) when the project has no superuser yet, collects the static
files, and writes ``DIR/uwsgi.ini``: what ``manage.py spoolcron uwsgi-config`` prints plus a
few lines of the demo's own. Then it becomes ``uwsgi --ini DIR/uwsgi.ini`` (the same process,
so the caller's pid is the uWSGI master's), in the foreground: Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import errno
import io
import os
import socket
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
PROCESSES = 2
ADMIN_USER = ADMIN_PASSWORD = "admin"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run_demo.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--port", type=tcp_port, default=8000, help=f"serve http://{HOST}:PORT/ (default: 8000)"
    )
    parser.add_argument(
        "--var-dir",
        type=Path,
        default=HERE / "var",
        help="where the database, the spool directory, the static files and uwsgi.ini go "
        "(default: example_project/var)",
    )
    return parser.parse_args(argv)


def tcp_port(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port 1-65535, not {text!r}")
    return value


def cannot_listen(port: int) -> str | None:
    """Why uWSGI could not listen on HOST:port, or None when it can."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As uWSGI binds: a port held only by connections in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            return "it is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
    return None


def setup_django(var_dir: Path) -> None:
    # settings.py reads the var dir from the environment, and uWSGI inherits it.
    os.environ["DEMO_VAR_DIR"] = str(var_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "example.settings"
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import django

    django.setup()


def prepare() -> None:
    """The database, the admin user and the static files, each step only when needed."""
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    if not User.objects.filter(is_superuser=True).exists():
        User.objects.create_superuser(ADMIN_USER, "admin@example.com", ADMIN_PASSWORD)
        print(f"Created the superuser {ADMIN_USER!r} (password {ADMIN_PASSWORD!r}).")
    call_command("collectstatic", interactive=False, verbosity=0)


def uwsgi_ini(port: int, var_dir: Path) -> str:
    """``spoolcron uwsgi-config``'s options for this project, then the demo's own."""
    from django.conf import settings
    from django.core.management import call_command

    out = io.StringIO()
    call_command(
        "spoolcron",
        "uwsgi-config",
        "--http",
        f"{HOST}:{port}",
        "--processes",
        str(PROCESSES),
        stdout=out,
    )
    url = f"http://{HOST}:{port}/"
    demo = [
        "",
        "; --- the demo's own options ---",
        "; the demo's directory for the database, the spool and the static files (settings.py)",
        f"env = DEMO_VAR_DIR={var_dir}",
        "; the admin's CSS and JavaScript, collected into STATIC_ROOT by run_demo.py",
        f"static-map = /{settings.STATIC_URL.strip('/')}={settings.STATIC_ROOT}",
        "; a project that fails to import stops uWSGI instead of answering every request with 500",
        "need-app = true",
        "; no line per request (the page reloads every 5 s): the console shows the jobs",
        "disable-logging = true",
        "; spoolcron logs each job already; uWSGI's own spooler lines would repeat it",
        "spooler-quiet = true",
        "; say where to look once the first worker accepts requests",
        f"hook-accepting1-once = print:spoolcron demo on {url} (admin: {url}admin/, "
        f"{ADMIN_USER}/{ADMIN_PASSWORD}); Ctrl-C stops it",
    ]
    return out.getvalue() + "\n".join(demo) + "\n"


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    var_dir = options.var_dir.resolve()
    problem = cannot_listen(options.port)
    if problem:
        sys.exit(
            f"run_demo.py: cannot listen on {HOST}:{options.port}: {problem}; choose another "
            f"port (make demo DEMO_PORT={options.port % 65535 + 1})."
        )
    uwsgi = Path(sys.executable).parent / "uwsgi"
    if not os.access(uwsgi, os.X_OK):
        sys.exit(f"run_demo.py: no uWSGI binary at {str(uwsgi)!r}: install the 'uwsgi' extra.")
    var_dir.mkdir(parents=True, exist_ok=True)
    setup_django(var_dir)
    prepare()
    ini = var_dir / "uwsgi.ini"
    ini.write_text(uwsgi_ini(options.port, var_dir), encoding="utf-8")
    print(f"Starting uWSGI with {ini} (Ctrl-C stops it).", flush=True)

    from django.db import connections

    connections.close_all()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(uwsgi, [str(uwsgi), "--ini", str(ini)])


if __name__ == "__main__":
    main()
