"""Which spool files spoolcron runs, and as what: a job written here (its payload is the
body), a signed request from another uWSGI instance, or a request from nginx. Everything a
remote sender controls is checked here, before the dispatcher looks at the job; a refused
request raises PayloadError with the reason and is quarantined without running.
"""

from __future__ import annotations

import hashlib
import logging

from ..conf import get_settings
from ..core.payload import MARKER, Payload
from ..core.registry import get_task
from ..core.remote import (
    EXPIRES_ARG,
    NGINX_TASK_ARG,
    nginx_kwargs,
    remote_payload,
    token_matches,
)
from ..exceptions import InvalidArguments, PayloadError, UnknownTask
from ..spool.codec import SpoolFile
from ..spool.payloads import read_payload
from ..spool.received import first_receipt

__all__ = ["admit"]

logger = logging.getLogger("spoolcron.dispatch")


def admit(file: SpoolFile, *, now: float) -> Payload:
    """The payload to run for ``file`` (one of ours: ``file.is_ours``)."""
    if MARKER not in file.args:
        return _from_nginx(file)
    if file.body:
        # uWSGI writes a remote request's pairs and no body: a body was written here.
        return read_payload(file)
    conf = get_settings()
    name = str(file.path)
    payload = remote_payload(file.args, keys=conf.remote_keys, now=now, name=name)
    try:
        task = get_task(payload.task)
    except UnknownTask:
        return payload  # the dispatcher quarantines it, naming the task
    if not task.routing.remote:
        raise PayloadError(
            f"Spool file {name!r} is a remote request for task {payload.task!r}, which does "
            "not accept remote jobs (declare it with @spoolcron.task(remote=True)): refused, "
            "not run."
        )
    _refuse_replay(file, payload)
    return payload


def _refuse_replay(file: SpoolFile, payload: Payload) -> None:
    """PayloadError if another spool file brought this remote job before (a request sent
    again by someone who captured it, within its validity)."""
    expires = float(file.args[EXPIRES_ARG])  # remote_payload verified it is a number
    try:
        first = first_receipt(file.path, payload.job_id, expires=expires)
    except OSError:
        # At least once: a job whose note cannot be written runs, unguarded, and says so.
        logger.exception("could not note the remote job job=%s path=%s", payload.job_id, file.path)
        return
    if first is not None:
        raise PayloadError(
            f"Spool file {str(file.path)!r} is a remote request for job {payload.job_id!r}, "
            f"which this host received before in {first!r} (sent again, or replayed): "
            "refused, not run."
        )


def _from_nginx(file: SpoolFile) -> Payload:
    name = str(file.path)
    tokens = get_settings().nginx_tokens
    if not tokens:
        raise PayloadError(
            f"Spool file {name!r} is a request from nginx, but SPOOLCRON['NGINX_TOKENS'] is "
            "empty on this host: refused, not run."
        )
    if not token_matches(file.args, tokens):
        raise PayloadError(
            f"Spool file {name!r} is a request from nginx without a valid spoolcron_token: "
            "refused, not run."
        )
    task_name = file.args[NGINX_TASK_ARG].decode(errors="replace")
    try:
        task = get_task(task_name)
    except UnknownTask:
        raise PayloadError(
            f"Spool file {name!r} from nginx names the task {task_name!r}, which is not "
            "registered: refused, not run."
        ) from None
    if not task.routing.nginx:
        raise PayloadError(
            f"Spool file {name!r} from nginx names the task {task_name!r}, which does not "
            "accept requests from nginx (declare it with @spoolcron.task(nginx={...})): "
            "refused, not run."
        )
    kwargs = nginx_kwargs(file.args, task.routing.nginx, name=name)
    try:
        task.check_call([], kwargs)
    except InvalidArguments as exc:
        raise PayloadError(f"Spool file {name!r} from nginx: {exc} Refused, not run.") from None
    # The file's name is unique (uWSGI's host, pid, counter and time): a retry keeps the id.
    job_id = hashlib.sha256(file.path.name.encode()).hexdigest()[:32]
    return Payload(
        task=task.name, job_id=job_id, run_after=file.at, kwargs=kwargs, enqueued_at=file.at
    )
