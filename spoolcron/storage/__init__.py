"""Storage: the models and everything that reads or writes them -- the beat's ledger, the run
history, job results -- behind the protocols of ``spoolcron.core.protocols``.

May import: ``spoolcron.core``, the base modules (``conf``, ``exceptions``), Django's ORM.
Never the spool directory, the runtime or ``uwsgi``.
"""
