from __future__ import annotations

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class SpoolcronConfig(AppConfig):
    name = "spoolcron"
    verbose_name = "spoolcron"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers every @spoolcron.task of the installed apps, so the spooler can look
        # a task up by name without ever importing a name read from a spool file.
        autodiscover_modules("tasks")
        from . import checks  # noqa: F401  (registers the system checks)
        from .entries import import_modules

        # Their @periodic tasks must be registered in the spooler too. A module that fails to
        # import is reported by the system checks (spoolcron.E005), not raised here.
        import_modules()
