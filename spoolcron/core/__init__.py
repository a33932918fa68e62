"""The pure core: the wire format (payload, file names, meta keys), tasks and entries, the beat,
the merge of upcoming runs, time conversions and the protocols the other layers implement.

May import: ``schedules``, ``spoolcron.exceptions``, ``spoolcron.conf``, Django's settings and
app registry, the stdlib. Never the ORM, the file system's spool directory or ``uwsgi``.
"""
