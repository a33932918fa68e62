"""The runtime: dispatch (one spool file, one outcome), the runner for plain processes, and the
mule's loop -- each with its clock, its wake-up and its stores injected.

May import: ``spoolcron.core``, ``spoolcron.spool``, the base modules. Never the ORM (stores
come in through ``core.protocols``) or ``uwsgi``.
"""
