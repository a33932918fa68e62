"""Sending a spool request to another uWSGI instance over the uwsgi protocol.

A request is a uwsgi packet with modifier1 17 (``UWSGI_MODIFIER_SPOOL_REQUEST``): the same
4-byte header and key/value pairs as a spool file (``codec.encode``), no body. In uWSGI 2.0
the ``spooler`` plugin (built into the pip-built server) answers it: it writes the pairs into
the spool directory named by the ``spooler`` key (default: the instance's first) with the
mtime ``at``, and answers 4 bytes: modifier1 255, size 0, modifier2 1 when the file was
written, 0 when it was not (no spooler, an unknown ``spooler`` directory, a write error).
One request per connection: uWSGI closes it after answering.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Mapping

from ..exceptions import RemoteSpoolError
from .codec import encode

__all__ = ["send"]

_ANSWER = struct.Struct("<BHB")
_SPOOL_ANSWER = 255


def _connect(address: str, timeout: float) -> socket.socket:
    if address.startswith("/"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
        return sock
    host, _, port = address.rpartition(":")
    return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)


def _receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def send(address: str, args: Mapping[bytes, bytes], *, timeout: float, job: str) -> None:
    """Send one spool request; RemoteSpoolError naming ``address`` and the reason unless the
    instance answered that it wrote the file."""
    packet = encode(args)

    def refuse(reason: str) -> RemoteSpoolError:
        return RemoteSpoolError(
            f"Cannot enqueue job {job!r} on the remote spooler {address!r}: {reason}.", address
        )

    try:
        with _connect(address, timeout) as sock:
            sock.sendall(packet)
            answer = _receive(sock, _ANSWER.size)
    except TimeoutError:
        raise refuse(f"no answer within {timeout:g} s") from None
    except OSError as exc:
        raise refuse(exc.strerror or str(exc) or type(exc).__name__) from None
    if len(answer) < _ANSWER.size:
        raise refuse(
            "it closed the connection without answering (is it a uWSGI instance with the "
            "spooler plugin, reached on a uwsgi socket rather than HTTP?)"
        )
    modifier1, _, modifier2 = _ANSWER.unpack(answer)
    if modifier1 != _SPOOL_ANSWER:
        raise refuse(f"it answered with modifier1 {modifier1}, not a spool answer")
    if modifier2 != 1:
        raise refuse(
            "it refused the job (no spooler running there, or no spooler directory of that "
            "name: see the queue's 'spooler')"
        )
