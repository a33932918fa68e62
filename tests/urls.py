from django.contrib import admin
from django.urls import path

from tests.testapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("enqueue/", views.enqueue),
    path("tasks/enqueue/", views.task_enqueue),
    path("tasks/result/", views.task_result),
]
