"""The ledger: one claim per periodic fire, the history of runs, and the result of each job.

A claim row is inserted in the same transaction that writes the fire's spool file; the unique
constraint on (entry, fire_time) is what lets several hosts sharing one database enqueue each
fire exactly once. The newest claim of an entry is its last fire, read on start to apply the
misfire policy.
"""

from __future__ import annotations

from typing import Any

from django.db import models

__all__ = [
    "DatabaseEntry",
    "EntryState",
    "FailedJob",
    "FireClaim",
    "PendingJob",
    "PeriodicEntry",
    "Run",
    "WaitingJob",
]


class FireClaim(models.Model):
    # job_id "" marks a baseline: when the beat first saw the entry, nothing enqueued.
    entry = models.CharField(max_length=200)
    fire_time = models.DateTimeField()
    job_id = models.CharField(max_length=64)
    claimed_at = models.DateTimeField()
    host = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["entry", "fire_time"], name="spoolcron_one_claim_per_fire"
            )
        ]
        ordering = ["-fire_time"]
        verbose_name = "fire claim"

    def __str__(self) -> str:
        return f"{self.entry} @ {self.fire_time:%Y-%m-%d %H:%M:%S}"


class Run(models.Model):
    class Outcome(models.TextChoices):
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        RETRYING = "retrying", "failed, retrying"
        FAILED = "failed", "failed"
        SKIPPED = "skipped", "skipped (previous run still running)"

    job_id = models.CharField(max_length=64, db_index=True)
    entry = models.CharField(max_length=200, blank=True, db_index=True)
    task = models.CharField(max_length=255)
    attempt = models.PositiveIntegerField(default=1)
    due = models.DateTimeField()
    started = models.DateTimeField()
    finished = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, db_index=True)
    error = models.TextField(blank=True)
    host = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started"]
        indexes = [models.Index(fields=["entry", "-started"], name="spoolcron_run_entry_started")]

    def __str__(self) -> str:
        return f"{self.entry or self.task} {self.outcome} @ {self.started:%Y-%m-%d %H:%M:%S}"

    @property
    def duration(self) -> float | None:
        if self.finished is None:
            return None
        return (self.finished - self.started).total_seconds()

    @property
    def lateness(self) -> float:
        return (self.started - self.due).total_seconds()


# --- admin pages -----------------------------------------------------------------------------
# Entries are declared in Python and jobs are files in the spool and failed directories, not
# rows: these models have no table (managed=False) and exist so the stock admin lists a page
# for each and so the permissions to see them and act on them exist (spoolcron/admin/).


class PeriodicEntry(models.Model):
    class Meta:
        managed = False
        default_permissions = ("view",)
        permissions = [
            ("run_periodicentry", "Can run a periodic entry now"),
            ("pause_periodicentry", "Can pause and resume a periodic entry"),
        ]
        verbose_name = "periodic entry"
        verbose_name_plural = "periodic entries"


class PendingJob(models.Model):
    class Meta:
        managed = False
        default_permissions = ("view",)
        permissions = [("cancel_pendingjob", "Can cancel a pending job")]
        verbose_name = "pending job"
        verbose_name_plural = "pending jobs"


class FailedJob(models.Model):
    class Meta:
        managed = False
        default_permissions = ("view",)
        permissions = [
            ("retry_failedjob", "Can put a failed job back in the spool directory"),
            ("delete_failedjob", "Can delete a failed job's file"),
        ]
        verbose_name = "failed job"
        verbose_name_plural = "failed jobs"


class JobResult(models.Model):
    """The state of one job (all its attempts), as Django's Tasks framework sees a result.

    Written by spoolcron.results only: a READY row when SpoolerBackend enqueues, then by the
    spooler at each start and end (jobs of ``spoolcron.schedule()`` and periodic fires get
    their row when they start). ``Run`` keeps the per-attempt history beside it.
    """

    class Status(models.TextChoices):
        # The values of the framework's TaskResultStatus, which may not be importable here.
        READY = "READY", "ready"
        RUNNING = "RUNNING", "running"
        SUCCESSFUL = "SUCCESSFUL", "successful"
        FAILED = "FAILED", "failed"

    id = models.CharField(max_length=64, primary_key=True)
    task = models.CharField(max_length=255)
    entry = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.READY)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # When the job (or its next attempt) is due; null: as soon as possible.
    run_after = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    last_attempted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    return_value = models.JSONField(null=True, blank=True)
    # One {"exception_class_path", "traceback"} per failed attempt.
    errors = models.JSONField(default=list, blank=True)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    backend = models.CharField(max_length=100, blank=True)
    queue_name = models.CharField(max_length=100, blank=True)
    # "host:pid" of the process that ran each attempt.
    worker_ids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-enqueued_at"]
        indexes = [
            models.Index(fields=["status", "finished_at"], name="spoolcron_result_status"),
            models.Index(fields=["task", "-enqueued_at"], name="spoolcron_result_task"),
        ]
        verbose_name = "job result"
        # Says what the table needs, so that Django 6.1's model checks need no connection.
        required_db_features = ("supports_json_field",)

    def __str__(self) -> str:
        return f"{self.task} {self.id} {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCESSFUL, self.Status.FAILED)


class WaitingJob(models.Model):
    """A job of the ``database`` pending store (spoolcron.storage.pending), read and written
    only there: it waits until it comes due, then a host's mule claims it, writes its spool
    file and holds the claim (a lease it renews) until the job settles and the row goes.

    Times are float Unix times, not DateTimeFields: exact to the microsecond and free of any
    USE_TZ conversion, compared as numbers by every host.
    """

    job_id = models.CharField(max_length=64, primary_key=True)
    task = models.CharField(max_length=255)
    entry = models.CharField(max_length=200, blank=True)
    attempt = models.PositiveIntegerField(default=1)
    due = models.FloatField()
    # The payload as the spool file's body carries it (UTF-8 JSON).
    body = models.TextField()
    # "<host>:<spool dir digest>:<pid>:<token>" of the mule that published the job, and
    # until when its claim holds unless renewed. Unclaimed: claimed_by null; a row whose
    # claimed_until has passed may be claimed by anyone.
    claimed_by = models.CharField(max_length=255, null=True, blank=True)
    claimed_until = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["due", "job_id"]
        indexes = [
            # The claim query (due <= until, claimable, soonest first), next_due and listings.
            models.Index(fields=["due"], name="spoolcron_waiting_due"),
            # Lease renewals and restarts look up a host's claims: only claimed rows.
            models.Index(
                fields=["claimed_by"],
                name="spoolcron_waiting_claimed",
                condition=models.Q(claimed_by__isnull=False),
            ),
        ]
        verbose_name = "waiting job"

    def __str__(self) -> str:
        return f"{self.task} {self.job_id} due {self.due:.6f}"


class EntryState(models.Model):
    """An entry's pause state (``spoolcron pause``/``resume``, the admin's actions), read by
    every beat through the ledger (spoolcron.storage.ledger): the sum of ``version`` changes
    with every change, so a beat reads the rows only then. A resumed entry keeps its row.

    Times are float Unix times, as in WaitingJob: compared as numbers by every host.
    """

    entry = models.CharField(max_length=200, unique=True)
    paused = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    # Paused until then (null: until resumed).
    paused_until = models.FloatField(null=True, blank=True)
    paused_at = models.FloatField(null=True, blank=True)
    resumed_at = models.FloatField(null=True, blank=True)
    # The last resume asked for the fires missed while paused.
    catch_up = models.BooleanField(default=False)
    changed_at = models.FloatField()
    changed_by = models.CharField(max_length=255, blank=True)
    version = models.PositiveIntegerField(default=1)
    # Fires of the entry that failed for good in a row (pause_after_failures); not part of
    # the version: counting them changes nothing a beat reads.
    failures = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["entry"]
        verbose_name = "entry state"

    def __str__(self) -> str:
        return f"{self.entry} {'paused' if self.paused else 'running'}"


class DatabaseEntryQuerySet(models.QuerySet["DatabaseEntry"]):
    """``update()`` (and ``bulk_update()``, which calls it) moves the rows' version as
    ``save_entry`` does, so every beat sees an edit made in bulk within a second."""

    def update(self, **kwargs: Any) -> int:
        kwargs.setdefault("version", models.F("version") + 1)
        return super().update(**kwargs)


class DatabaseEntry(models.Model):
    """A periodic entry stored in the database (the admin, ``spoolcron entry-add``) rather
    than declared in a schedules module; resolved like one (``core.entries.resolve_entry``)
    and run by every beat (``storage.entries.DatabaseEntrySource``).

    ``version`` goes up with every save (``storage.entries.save_entry``): the beats read
    (rows, sum of versions, highest id) about once a second and the rows only when it changed.
    """

    class Misfire(models.TextChoices):
        COALESCE = "coalesce", "coalesce: one run for all missed fires"
        ALL = "all", "all: each missed fire (at most misfire_limit)"
        SKIP = "skip", "skip: none"

    class Overlap(models.TextChoices):
        SKIP = "skip", "skip: not while the previous run still runs"
        ALLOW = "allow", "allow"

    name = models.CharField(max_length=200, unique=True)
    # A registered task's name, looked up in the registry: never imported from here.
    task = models.CharField(max_length=255)
    schedule = models.CharField(
        max_length=500, help_text="every 5 minutes, Sunday 17:03, 30 2 * * *, ..."
    )
    zone = models.CharField(max_length=64, blank=True, help_text="empty: TIME_ZONE")
    args = models.JSONField(default=list, blank=True, help_text="a JSON list")
    kwargs = models.JSONField(default=dict, blank=True, help_text="a JSON object")
    misfire = models.CharField(max_length=16, choices=Misfire.choices, default=Misfire.COALESCE)
    misfire_limit = models.PositiveIntegerField(default=10)
    grace = models.FloatField(null=True, blank=True, help_text="seconds; empty: no limit")
    overlap = models.CharField(max_length=16, choices=Overlap.choices, default=Overlap.SKIP)
    enabled = models.BooleanField(default=True)
    jitter = models.FloatField(default=0.0, help_text="seconds")
    alert_after = models.FloatField(null=True, blank=True, help_text="seconds; empty: never")
    pause_after_failures = models.PositiveIntegerField(
        null=True, blank=True, help_text="empty: never"
    )
    version = models.PositiveIntegerField(default=1, editable=False)
    changed_at = models.FloatField(default=0.0, editable=False)
    changed_by = models.CharField(max_length=255, blank=True, editable=False)

    objects = DatabaseEntryQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "database entry"
        verbose_name_plural = "database entries"
        required_db_features = ("supports_json_field",)

    def __str__(self) -> str:
        return self.name
