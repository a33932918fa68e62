"""Remembering which remote jobs a spool directory received, so a replayed request never runs.

A signed remote request stays valid until its expiry (``REMOTE_TTL`` after its due time):
someone who captured one could send it again within that time. Each request's job id is
noted in a small file beside the spool directory's entries when the request is admitted; a
second spool file carrying the same job id is a replay. The same spool file admitted again
(its spooler died mid-task and uWSGI runs it again) is not. A note lives until the request's
expiry -- its mtime -- after which the signature check refuses the request anyway.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from pathlib import Path

from .files import ensure_dir

__all__ = ["RECEIVED_DIR", "first_receipt", "forget_expired"]

RECEIVED_DIR = ".spoolcron-received"


def _note_path(path: str | os.PathLike[str], job_id: str) -> str:
    directory = os.path.dirname(os.fspath(path))
    # A job id is whatever the (signed) payload says: hashed, it is always a safe file name.
    name = hashlib.sha256(job_id.encode()).hexdigest()[:40]
    return os.path.join(directory, RECEIVED_DIR, name)


def first_receipt(path: str | os.PathLike[str], job_id: str, *, expires: float) -> str | None:
    """Note that the spool file at ``path`` brought the remote job ``job_id`` (valid until
    ``expires``); return the name of the spool file that brought it first if that was another
    one (a replay), else None. OSError if the note cannot be written."""
    note = _note_path(path, job_id)
    name = os.path.basename(os.fspath(path))
    ensure_dir(os.path.dirname(note))
    try:
        fd = os.open(note, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(note, encoding="utf-8", errors="replace") as fh:
            first = fh.read()
        # Empty: another spooler is writing its note this very moment -- a copy all the same.
        return None if first == name else first or "another spool file"
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(name)
    if math.isfinite(expires):  # else kept until the next prune: signed so, by a key holder
        os.utime(note, (expires, expires))
    return None


def forget_expired(spool_dir: Path, *, now: float) -> int:
    """Remove the notes of requests expired by ``now`` (their replays are refused as expired);
    return how many went."""
    directory = spool_dir / RECEIVED_DIR
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        with contextlib.suppress(FileNotFoundError):
            if entry.stat().st_mtime < now:
                os.unlink(entry.path)
                removed += 1
    return removed
