"""Spool I/O: the spool file byte codec, the directory operations (write, read, list, lock,
hold, quarantine, start counters), payloads as files, the heartbeat and the waker.

May import: ``spoolcron.core``, the base modules, the stdlib. Never Django's ORM or ``uwsgi``.
"""
