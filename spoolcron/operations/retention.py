"""What is kept and for how long: the hourly prune of the mule and the worker."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from ..conf import get_settings
from ..core.times import now as current_time
from ..queues import local_spool_dirs
from ..spool.received import forget_expired
from .failed import purge_failed

if TYPE_CHECKING:
    from ..storage.ledger import DatabaseLedger

__all__ = ["prune"]

logger = logging.getLogger("spoolcron.operations")


def prune(ledger: DatabaseLedger, *, now: datetime | None = None) -> int:
    """Delete what is older than its retention; return how many rows and files went.

    Runs, fire claims and job results older than ``SPOOLCRON["HISTORY_DAYS"]`` (see
    ``DatabaseLedger.prune``), failed files moved aside longer ago than
    ``SPOOLCRON["FAILED_DAYS"]`` (default: ``HISTORY_DAYS``) with their reasons, and the notes
    of remote jobs received whose requests expired (``spool.received``; not counted).
    """
    conf = get_settings()
    current = current_time() if now is None else now
    # Files first: a database that is away must not keep old failures paging.
    failed = purge_failed(older_than=current - conf.failed_retention)
    for spool_dir in local_spool_dirs(conf).values():
        try:
            forget_expired(spool_dir, now=current.timestamp())
        except OSError:
            logger.exception("could not forget expired remote notes spool_dir=%s", spool_dir)
    rows = ledger.prune(keep=conf.history_retention, now=current)
    if rows or failed:
        logger.info("pruned rows=%d failed_files=%d", rows, len(failed))
    return rows + len(failed)
