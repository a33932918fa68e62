"""Spooler callable for the compatibility tests; loaded with ``--spooler-import <this file>``.

It records what uWSGI hands to ``uwsgi.spooler`` as JSON in ``$SPOOLCRON_TEST_RESULTS/<task>.json``
(bytes as hex, so nothing is lost) and returns ``uwsgi.SPOOL_OK``.  Arguments steer it:

* ``block_until``: write ``<task>.started`` and wait until that path exists (at most 60 s).
* ``touch_self``: open and close the running spool file first (drops uWSGI's lock!).
* ``use_hold``: run inside ``locks.hold`` and record what ``read``/``lock_owner`` say.
* ``quarantine_to``: ``files.quarantine`` the running file into that dir (inside ``hold``).
* ``return``: return this integer instead of ``uwsgi.SPOOL_OK``.
"""

import json
import os
import time

import uwsgi

from spoolcron.spool import files, locks

RESULTS = os.environ["SPOOLCRON_TEST_RESULTS"]


def _publish(name: str, payload: object) -> None:
    tmp = os.path.join(RESULTS, f".{name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh)
    os.replace(tmp, os.path.join(RESULTS, name))


def _wait_for(path: str) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)


def spooler(env: dict[bytes | str, bytes]) -> int:
    task_name = env["spooler_task_name"]
    name = task_name.decode() if isinstance(task_name, bytes) else task_name
    path = os.path.join(os.getcwd(), name)
    args = {k: v for k, v in env.items() if isinstance(k, bytes)}
    record = {
        "args": {k.hex(): v.hex() for k, v in args.items()},
        "str_keys": sorted(k for k in env if isinstance(k, str)),
        "body": env["body"].hex() if "body" in env else None,
        "body_type": type(env.get("body")).__name__,
        "task_name": name,
        "task_name_type": type(task_name).__name__,
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "started": time.time(),
    }
    if b"touch_self" in args:
        with open(path, "rb"):
            pass
    if b"use_hold" in args:
        with locks.hold(path, args, env.get("body", b"")):
            held = files.read(path)
            record["hold_read_args"] = {k.hex(): v.hex() for k, v in held.args.items()}
            record["hold_lock_owner"] = locks.lock_owner(path)
            record["hold_remove"] = locks.remove_if_unlocked(path)
            _publish(f"{name}.started", record)
            _wait_for(args[b"block_until"].decode())
    elif b"block_until" in args:
        _publish(f"{name}.started", record)
        _wait_for(args[b"block_until"].decode())
    if b"quarantine_to" in args:
        with locks.hold(path, args, env.get("body", b"")):
            files.quarantine(path, args[b"quarantine_to"].decode(), "test")
    record["finished"] = time.time()
    _publish(f"{name}.json", record)
    return int(args.get(b"return", uwsgi.SPOOL_OK))


uwsgi.spooler = spooler
