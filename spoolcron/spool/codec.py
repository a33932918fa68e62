"""The uWSGI spool file codec: the bytes of a spool file, pure (no file system, no Django).

Facts this module relies on, checked in uWSGI 2.0's ``core/spooler.c`` and
``plugins/python`` (tag 2.0.30; 2.0.31 changed nothing there):

* A spool file is a 4-byte header -- modifier1 ``17``, a little-endian uint16 size, modifier2
  ``0`` -- then ``size`` bytes of ``uint16 LE length, key, uint16 LE length, value`` pairs,
  then the body, raw, up to the end of the file.  uWSGI's own parser rejects an empty key;
  the Python spooler then reports the file "done" and uWSGI deletes it, so :func:`encode`
  refuses empty keys.
* uWSGI skips a file shorter than its header forever and deletes one whose arguments are cut
  short without a word: :func:`check_header` says why a file is one of those.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..core.payload import MARKER, PREFIX
from ..core.remote import NGINX_TASK_ARG
from ..exceptions import SpoolFileError

__all__ = [
    "HEADER_SIZE",
    "MARKER",
    "MAX_ARGS_SIZE",
    "PREFIX",
    "SpoolFile",
    "SpoolFileError",
    "check_header",
    "decode",
    "encode",
    "header_args_size",
    "too_large",
]

MAX_ARGS_SIZE = 0xFFFF
"""uWSGI's limit for one key, one value and the whole argument block, in bytes."""

_MODIFIER1 = 17
_HEADER = struct.Struct("<BHB")
HEADER_SIZE = _HEADER.size
_LENGTH = struct.Struct("<H")


def _short(value: bytes) -> str:
    # A 64 KiB key in an error message helps nobody: show its start.
    return repr(value) if len(value) <= 32 else f"{value[:32]!r}..."


def encode(args: Mapping[bytes, bytes], body: bytes = b"") -> bytes:
    """Return the bytes of a spool file holding *args* and *body*.

    uWSGI silently truncates an oversized value (its lengths are uint16), so anything that
    would not fit is refused here instead.
    """
    block = bytearray()
    for key, value in args.items():
        if not isinstance(key, bytes):
            raise TypeError(f"Spool file argument key {key!r} is not bytes.")
        if not isinstance(value, bytes):
            raise TypeError(f"Spool file argument {_short(key)} has a value that is not bytes.")
        if not key:
            raise ValueError("Spool file argument key b'' is empty, which uWSGI rejects.")
        if len(key) > MAX_ARGS_SIZE:
            raise ValueError(
                f"Spool file argument key {_short(key)} is {len(key)} bytes long; "
                f"the limit is {MAX_ARGS_SIZE}."
            )
        if len(value) > MAX_ARGS_SIZE:
            raise ValueError(
                f"Spool file argument {_short(key)} has a value of {len(value)} bytes; "
                f"the limit is {MAX_ARGS_SIZE}, put large data in the body."
            )
        block += _LENGTH.pack(len(key)) + key + _LENGTH.pack(len(value)) + value
    if len(block) > MAX_ARGS_SIZE:
        raise ValueError(
            f"Spool file arguments take {len(block)} bytes; uWSGI limits them to "
            f"{MAX_ARGS_SIZE}, put large data in the body."
        )
    return _HEADER.pack(_MODIFIER1, len(block), 0) + bytes(block) + bytes(body)


def decode(data: bytes, *, name: str = "<bytes>") -> tuple[dict[bytes, bytes], bytes]:
    """Split spool file *data* into its arguments and body; *name* goes into error messages.

    Accepts exactly what uWSGI's spooler hands to the Python callable, and additionally
    insists on the header modifiers uWSGI writes (17 and 0).  A later duplicate key wins,
    as in uWSGI.
    """

    def corrupt(why: str) -> SpoolFileError:
        return SpoolFileError(f"Spool file {name!r} is corrupt: {why}.")

    if len(data) < _HEADER.size:
        raise corrupt(f"it is {len(data)} bytes long, shorter than the 4-byte header")
    modifier1, size, modifier2 = _HEADER.unpack_from(data)
    if modifier1 != _MODIFIER1:
        raise corrupt(f"header modifier1 is {modifier1}, expected {_MODIFIER1}")
    if modifier2 != 0:
        raise corrupt(f"header modifier2 is {modifier2}, expected 0")
    available = len(data) - _HEADER.size
    if size > available:
        raise corrupt(f"header says {size} bytes of arguments but only {available} follow")

    args: dict[bytes, bytes] = {}
    pos, end = _HEADER.size, _HEADER.size + size
    while pos < end:
        offset = pos - _HEADER.size
        if end - pos < _LENGTH.size:
            raise corrupt(f"the argument at offset {offset} is cut short before its key length")
        (key_len,) = _LENGTH.unpack_from(data, pos)
        pos += _LENGTH.size
        if key_len == 0:
            raise corrupt(f"the argument at offset {offset} has an empty key")
        if key_len > end - pos:
            raise corrupt(
                f"the argument at offset {offset} declares a {key_len}-byte key "
                f"but only {end - pos} bytes follow"
            )
        key = bytes(data[pos : pos + key_len])
        pos += key_len
        if end - pos < _LENGTH.size:
            raise corrupt(f"the argument {_short(key)} is cut short before its value length")
        (value_len,) = _LENGTH.unpack_from(data, pos)
        pos += _LENGTH.size
        if value_len > end - pos:
            raise corrupt(
                f"the argument {_short(key)} declares a {value_len}-byte value "
                f"but only {end - pos} bytes follow"
            )
        args[key] = bytes(data[pos : pos + value_len])
        pos += value_len
    return args, bytes(data[end:])


@dataclass(frozen=True)
class SpoolFile:
    """A decoded spool file.  ``at`` is the file's mtime: the spooler runs it from ``int(at)``."""

    path: Path
    args: dict[bytes, bytes]
    body: bytes
    at: float

    @property
    def is_ours(self) -> bool:
        """Whether the file is spoolcron's to run: spoolcron wrote it (here or on another
        instance), or nginx sent it naming a task; not another ``uwsgi.spool()`` user's."""
        return MARKER in self.args or NGINX_TASK_ARG in self.args


def header_args_size(header: bytes) -> int:
    """The size of the argument block that the 4-byte ``header`` announces."""
    return int(_HEADER.unpack(header)[1])


def too_large(name: str, body_size: int, max_body: int) -> str | None:
    """Why a body of ``body_size`` bytes is not read, or None if it is not over ``max_body``.

    uWSGI reads a whole spool file into the spooler's memory before any Python code runs.
    """
    if body_size <= max_body:
        return None
    return (
        f"Spool file {name!r} is too large: its body is {body_size} bytes, over the "
        f"{max_body}-byte limit, so it was not read."
    )


def check_header(head: bytes, size: int, *, name: str, max_body: int) -> str | None:
    """Why uWSGI would never hand a file to Python, from its header and arguments (``head``)
    and its ``size``; None if it would. A body over ``max_body`` bytes is refused too."""
    try:
        decode(head, name=name)
    except SpoolFileError as exc:
        return str(exc)
    return too_large(name, size - len(head), max_body)
