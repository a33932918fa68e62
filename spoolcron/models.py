"""The ledger: one claim per periodic fire, and the history of runs.

A claim row is inserted in the same transaction that writes the fire's spool file; the unique
constraint on (entry, fire_time) is what lets several hosts sharing one database enqueue each
fire exactly once. The newest claim of an entry is its last fire, read on start to apply the
misfire policy.
"""

from __future__ import annotations

from django.db import models

__all__ = ["FireClaim", "Run"]


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
