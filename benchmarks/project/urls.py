"""No views: uWSGI needs an application, the benchmarks only use its spooler and mule."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
