"""Remote jobs and jobs from nginx: the spool requests another process sends to a uWSGI
instance over the uwsgi protocol (modifier1 17), which its spooler plugin writes into a spool
directory as they came. Pure: building a signed request, and admitting one that arrived.

Trust: uWSGI writes a remote request's key/value pairs and nothing else, so a spool file with
no body cannot have come from a process with access to the spool directory: spoolcron runs
it only if it is signed with a key of ``SPOOLCRON["REMOTE_KEYS"]`` (HMAC-SHA256 over the
payload and the request's expiry) and not expired. nginx cannot sign: its requests name the
task and carry a shared token (``uwsgi_param``), compared in constant time, and only the
parameters the task maps become its keyword arguments.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping, Sequence

from ..exceptions import PayloadError
from .payload import Payload, spool_at

__all__ = [
    "AT_ARG",
    "EXPIRES_ARG",
    "NGINX_TASK_ARG",
    "NGINX_TOKEN_ARG",
    "PAYLOAD_ARG",
    "SIGNATURE_ARG",
    "SPOOLER_ARG",
    "nginx_kwargs",
    "remote_payload",
    "request_args",
    "sign",
    "token_matches",
]

AT_ARG = b"at"
"""uWSGI's own key: the request's spool file gets this mtime (the job's ``at``)."""
SPOOLER_ARG = b"spooler"
"""uWSGI's own key: which of the instance's spool directories takes the request."""
PAYLOAD_ARG = b"payload"
"""The job's payload (the JSON a local spool file has as its body)."""
EXPIRES_ARG = b"expires"
"""Unix time after which the request is refused (a late or replayed one)."""
SIGNATURE_ARG = b"signature"
NGINX_TASK_ARG = b"spoolcron_task"
"""The task an nginx ``uwsgi_param`` names."""
NGINX_TOKEN_ARG = b"spoolcron_token"
"""The shared token an nginx ``uwsgi_param`` carries."""
_CONTEXT = b"spoolcron-remote-v1\0"


def sign(key: bytes, expires: bytes, body: bytes) -> bytes:
    """The hex HMAC-SHA256 of a request's expiry and payload under ``key``."""
    return hmac.new(key, _CONTEXT + expires + b"\0" + body, hashlib.sha256).hexdigest().encode()


def request_args(
    payload: Payload, body: bytes, *, key: bytes, expires: float, spooler: str | None = None
) -> dict[bytes, bytes]:
    """The key/value pairs of the spool request for ``payload`` (``body``: its JSON)."""
    args = payload.spool_args()
    args[AT_ARG] = str(spool_at(payload.run_after)).encode()
    if spooler:
        args[SPOOLER_ARG] = spooler.encode()
    stamp = repr(float(expires)).encode()
    args[EXPIRES_ARG] = stamp
    args[PAYLOAD_ARG] = body
    args[SIGNATURE_ARG] = sign(key, stamp, body)
    return args


def remote_payload(
    args: Mapping[bytes, bytes], *, keys: Sequence[bytes], now: float, name: str
) -> Payload:
    """The payload of a remote request that arrived as the spool file ``name``;
    PayloadError, with the reason, for one that must not run."""
    body = args.get(PAYLOAD_ARG)
    signature = args.get(SIGNATURE_ARG)
    stamp = args.get(EXPIRES_ARG)
    if body is None or signature is None or stamp is None:
        raise PayloadError(
            f"Spool file {name!r} is a remote request without a signature (no body, no "
            "signed payload): refused, not run."
        )
    if not keys:
        raise PayloadError(
            f"Spool file {name!r} is a signed remote request, but SPOOLCRON['REMOTE_KEYS'] is "
            "empty on this host: refused, not run."
        )
    # Every key is tried, so the time taken does not tell which one nearly matched.
    matched = [hmac.compare_digest(sign(key, stamp, body), signature) for key in keys]
    if not any(matched):
        raise PayloadError(
            f"Spool file {name!r} is a remote request whose signature no key of "
            "SPOOLCRON['REMOTE_KEYS'] verifies (forged, altered, or signed with another "
            "key): refused, not run."
        )
    try:
        expires = float(stamp)
    except ValueError:
        expires = math.nan
    if not expires >= now:
        raise PayloadError(
            f"Spool file {name!r} is a remote request that expired {now - expires:.1f} s ago "
            "(sent too late, or replayed): refused, not run."
        )
    return Payload.from_body(body, name=name)


def token_matches(args: Mapping[bytes, bytes], tokens: Sequence[bytes]) -> bool:
    """Whether an nginx request carries one of ``tokens``, compared in constant time."""
    given = args.get(NGINX_TOKEN_ARG, b"")
    return any([hmac.compare_digest(given, token) for token in tokens]) and bool(given)


def nginx_kwargs(
    args: Mapping[bytes, bytes], mapping: Mapping[str, str], *, name: str
) -> dict[str, str]:
    """The keyword arguments an nginx request's parameters map to (only mapped ones)."""
    kwargs: dict[str, str] = {}
    for param, kwarg in mapping.items():
        value = args.get(param.encode())
        if value is None:
            continue
        try:
            kwargs[kwarg] = value.decode()
        except UnicodeDecodeError:
            raise PayloadError(
                f"Spool file {name!r} from nginx has the parameter {param!r} that is not "
                f"UTF-8: {value[:32]!r}; refused, not run."
            ) from None
    return kwargs
