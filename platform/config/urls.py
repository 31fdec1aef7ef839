"""URL map: admin, health, and the apps' own URLs."""

from django.contrib import admin
from django.urls import path

from jobs.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
