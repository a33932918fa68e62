"""The Prometheus endpoint, for the project's urlconf:
``path("metrics/", include("spoolcron.metrics.urls"))``."""

from __future__ import annotations

from django.urls import path

from . import metrics_view

app_name = "spoolcron_metrics"

urlpatterns = [path("", metrics_view, name="metrics")]
