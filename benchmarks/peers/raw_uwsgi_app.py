"""The bare uWSGI peer, loaded by uWSGI itself (``--import`` and ``--module``): no spoolcron.

What a user without spoolcron writes: a spooler function (``uwsgi.spooler``), a 1-second
timer (``@timer(1, target="mule")``, spelled out) handled by a mule that spools a job every
second (when ``BENCH_RAW_TIMER`` is set), and an application with two views the benchmark
calls over HTTP: ``/spool?label=L&at=T`` spools one job with uWSGI's own ``at`` (whole
seconds), ``/burst?n=N`` spools N jobs due in an hour and answers how long the
``uwsgi.spool`` calls took. Every run appends
``{"label", "time", "fired", "at", "pid"}`` to ``$BENCH_RAW_RESULTS/stamps.jsonl``.

Registering the spooler function and the timer at import is how uWSGI code does it; this
module is never imported outside uWSGI.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import uwsgi  # type: ignore[import-not-found]

__all__ = ["application"]

RESULTS = os.environ.get("BENCH_RAW_RESULTS", "")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _spooler(env: dict[Any, Any]) -> int:
    started = time.time()  # first thing: the start the lateness is measured at
    args = {_text(k): _text(v) for k, v in env.items()}
    line = json.dumps(
        {
            "label": args.get("label", ""),
            "time": started,
            "fired": float(args["fired"]) if "fired" in args else None,
            "at": int(args["at"]) if "at" in args else None,
            "pid": os.getpid(),
        }
    )
    if RESULTS:
        with open(os.path.join(RESULTS, "stamps.jsonl"), "a") as out:
            out.write(line + "\n")
    return int(uwsgi.SPOOL_OK)


uwsgi.spooler = _spooler


def _every_second(signum: int) -> None:
    uwsgi.spool({b"label": b"tick", b"fired": repr(time.time()).encode()})


if os.environ.get("BENCH_RAW_TIMER"):
    # What uwsgidecorators' @timer(1, target="mule") does, without importing uwsgidecorators:
    # its import replaces uwsgi.spooler with its own dispatcher.
    TIMER_SIGNAL = 17
    uwsgi.register_signal(TIMER_SIGNAL, "mule", _every_second)
    uwsgi.add_timer(TIMER_SIGNAL, 1)


def application(
    environ: dict[str, Any], start_response: Callable[[str, list[tuple[str, str]]], object]
) -> Iterable[bytes]:
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    path = environ.get("PATH_INFO", "")
    if path == "/spool":
        job = {b"label": query["label"].encode()}
        if query.get("at"):
            job[b"at"] = query["at"].encode()
        uwsgi.spool(job)
        body = b"ok"
    elif path == "/burst":
        count = int(query["n"])
        at = str(int(time.time()) + 3600).encode()
        began = time.perf_counter()
        cpu = time.process_time()
        for i in range(count):
            uwsgi.spool({b"label": f"burst-{i}".encode(), b"at": at})
        body = json.dumps(
            {"seconds": time.perf_counter() - began, "cpu": time.process_time() - cpu}
        ).encode()
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
