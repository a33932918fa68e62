"""The app config: registers the tasks, the system checks and ``Task.schedule``'s enqueuer;
connects the metrics' receivers when ``SPOOLCRON["METRICS"]`` is true."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class SpoolcronConfig(AppConfig):
    name = "spoolcron"
    verbose_name = "spoolcron"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, queue_checks  # noqa: F401  (register the system checks)
        from .core import registry
        from .core.entries import import_modules
        from .jobs import schedule

        registry.install_enqueuer(schedule)
        # Registers every @spoolcron.task of the installed apps, so the spooler can look
        # a task up by name without ever importing a name read from a spool file.
        autodiscover_modules("tasks")
        # Their @periodic tasks must be registered in the spooler too. A module that fails to
        # import is reported by the system checks (spoolcron.E005), not raised here.
        import_modules()
        self._connect_metrics()

    def _connect_metrics(self) -> None:
        from .conf import get_settings
        from .exceptions import SpoolcronImproperlyConfigured

        try:
            enabled = get_settings().metrics
        except SpoolcronImproperlyConfigured:
            return  # the system checks report the setting
        if enabled:
            # Raises ImportError naming the extra when prometheus-client is missing.
            from .metrics import connect

            connect()
