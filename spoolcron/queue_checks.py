"""System checks of the queues (``SPOOLCRON["QUEUES"]``), remote spooling and nginx requests:

=================  ===========================================================
spoolcron.E030     a local queue's spool directory is not a writable directory
spoolcron.W030     a local queue's spool directory does not exist yet
spoolcron.E031     under uWSGI: no --spooler runs on a local queue's directory
spoolcron.W032     under uWSGI: a queue runs another number of spooler processes
spoolcron.E033     a task or an entry names a queue QUEUES does not have
spoolcron.E034     a remote queue, or an entry on one, without REMOTE_KEYS
spoolcron.W035     a task accepts remote jobs (or nginx) but no key (token) is set
spoolcron.W036     the files store cannot rename into a queue's directory
=================  ===========================================================
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .checks import ServerOptions, server_options, unwritable
from .conf import DEFAULT_QUEUE, Settings, get_settings
from .core.entries import collect
from .core.registry import all_tasks

__all__ = ["check_queues"]


@register("spoolcron")
def check_queues(
    app_configs: Sequence[AppConfig] | None = None,
    *,
    server: ServerOptions | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    try:
        conf = get_settings()
    except ImproperlyConfigured:
        return []  # reported as E010
    messages = [*_directories(conf), *_routes(conf)]
    server = server or server_options()
    if server is not None:
        messages += _spoolers(conf, server)
    return messages


def _directories(conf: Settings) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for queue in conf.local_queues:
        spool = queue.spool_dir
        if queue.name == DEFAULT_QUEUE or spool is None:
            continue  # SPOOL_DIR has its own checks (E011, W011)
        if not spool.exists():
            messages.append(
                Warning(
                    f"Queue {queue.name!r} has the spool directory {str(spool)!r}, which does "
                    "not exist yet; uWSGI's --spooler for it or the first job creates it.",
                    id="spoolcron.W030",
                )
            )
        elif unwritable(spool):
            messages.append(
                Error(
                    f"Queue {queue.name!r} has the spool directory {str(spool)!r}, which is "
                    "not a directory this process can write to.",
                    id="spoolcron.E030",
                )
            )
        elif conf.pending_store == "files" and _other_device(spool, conf.pending_dir):
            messages.append(
                Warning(
                    f"Queue {queue.name!r} has its spool directory {str(spool)!r} on another "
                    f"file system than PENDING_DIR {str(conf.pending_dir)!r}: its jobs due "
                    "later than HORIZON cannot be published by a rename.",
                    hint="Put both on one file system, or use PENDING_STORE 'database'.",
                    id="spoolcron.W036",
                )
            )
    return messages


def _other_device(spool: Path, pending: Path) -> bool:
    def device(path: Path) -> int | None:
        # The nearest existing ancestor: the directories may not be made yet.
        for candidate in (path, *path.parents):
            try:
                return os.stat(candidate).st_dev
            except OSError:
                continue
        return None

    first, second = device(spool), device(pending)
    return first is not None and second is not None and first != second


def _routes(conf: Settings) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    remote_queues = [q.name for q in conf.queues.values() if q.is_remote]
    if remote_queues and not conf.remote_keys:
        messages.append(
            Error(
                f"Queue {remote_queues[0]!r} is remote, but SPOOLCRON['REMOTE_KEYS'] is empty: "
                "remote jobs are signed, so none could be sent.",
                id="spoolcron.E034",
            )
        )
    for task in all_tasks():
        queue = task.routing.queue
        if queue is not None and queue not in conf.queues:
            messages.append(_unknown(f"Task {task.name!r}", queue, conf))
        if task.routing.remote and not conf.remote_keys:
            messages.append(
                Warning(
                    f"Task {task.name!r} accepts remote jobs, but SPOOLCRON['REMOTE_KEYS'] is "
                    "empty: every remote request for it is refused.",
                    id="spoolcron.W035",
                )
            )
        if task.routing.nginx and not conf.nginx_tokens:
            messages.append(
                Warning(
                    f"Task {task.name!r} accepts requests from nginx, but "
                    "SPOOLCRON['NGINX_TOKENS'] is empty: every such request is refused.",
                    id="spoolcron.W035",
                )
            )
    entries, _ = collect()
    for entry in entries:
        if entry.queue is None:
            continue
        known = conf.queues.get(entry.queue)
        if known is None:
            messages.append(_unknown(f"Entry {entry.name!r}", entry.queue, conf))
        elif known.is_remote:
            messages.append(
                Error(
                    f"Entry {entry.name!r} runs in the remote queue {entry.queue!r}: the beat "
                    "writes fires into a local queue only.",
                    hint="Route the entry to a local queue, and its task may enqueue the "
                    "remote job.",
                    id="spoolcron.E033",
                )
            )
    return messages


def _unknown(owner: str, queue: str, conf: Settings) -> CheckMessage:
    return Error(
        f"{owner} names the queue {queue!r}, which SPOOLCRON['QUEUES'] does not have (queues: "
        f"{', '.join(map(repr, conf.queues))}).",
        id="spoolcron.E033",
    )


def _spoolers(conf: Settings, server: ServerOptions) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for queue in conf.local_queues:
        if queue.name == DEFAULT_QUEUE or queue.spool_dir is None:
            continue  # SPOOL_DIR: E012
        running = server.processes_of(queue.spool_dir)
        if running == 0:
            messages.append(
                Error(
                    f"Queue {queue.name!r} has the spool directory {str(queue.spool_dir)!r}, "
                    "but no uWSGI --spooler runs on it: its jobs would never run.",
                    hint="Add the queue's lines of `manage.py spoolcron uwsgi-config`.",
                    id="spoolcron.E031",
                )
            )
        elif running != queue.processes:
            messages.append(
                Warning(
                    f"Queue {queue.name!r} asks for {queue.processes} spooler processes, but "
                    f"uWSGI runs {running} on {str(queue.spool_dir)!r}.",
                    hint="Repeat its `spooler =` line once per process, as "
                    "`manage.py spoolcron uwsgi-config` prints.",
                    id="spoolcron.W032",
                )
            )
    return messages
