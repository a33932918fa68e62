from django.contrib import admin
from django.urls import include, path

from tests.testapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("enqueue/", views.enqueue),
    path("tasks/enqueue/", views.task_enqueue),
    path("tasks/result/", views.task_result),
]

try:
    import prometheus_client  # noqa: F401  (the `metrics` extra)
except ImportError:
    pass
else:
    urlpatterns.append(path("metrics/", include("spoolcron.metrics.urls")))
