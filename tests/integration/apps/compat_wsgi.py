"""WSGI app for the compatibility tests: exposes a few ``uwsgi`` module calls over HTTP.

Bytes travel as hex.  GET /parsefile?path=P, GET /get_task?path=P, GET /spooler_pids,
POST /spool with JSON ``{"args": {hexkey: hexvalue}, "body": hex or null}``.
"""

import json
from urllib.parse import parse_qs

import uwsgi


def _hexdict(value: object) -> object:
    if not isinstance(value, dict):
        return value
    return {
        (k.hex() if isinstance(k, bytes) else f"str:{k}"): (v.hex() if isinstance(v, bytes) else v)
        for k, v in value.items()
    }


def application(environ, start_response):  # type: ignore[no-untyped-def]
    route = environ["PATH_INFO"]
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if route == "/parsefile":
        result = _hexdict(uwsgi.parsefile(query["path"]))
    elif route == "/get_task":
        result = _hexdict(uwsgi.spooler_get_task(query["path"]))
    elif route == "/spooler_pids":
        result = list(uwsgi.spooler_pids())
    elif route == "/spool":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length))
        job = {bytes.fromhex(k): bytes.fromhex(v) for k, v in request["args"].items()}
        if request.get("body") is not None:
            job[b"body"] = bytes.fromhex(request["body"])
        filename = uwsgi.spool(job)
        result = filename.decode() if isinstance(filename, bytes) else filename
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    body = json.dumps(result).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
