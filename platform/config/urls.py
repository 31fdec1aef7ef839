"""URL map: admin, health, and the apps' own URLs."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from jobs.operations.flower_proxy import flower
from jobs.operations.health import healthz
from jobs.operations.metrics import metrics_view
from jobs.operations.ops_dashboard import ops_dashboard

# The admin index, with a link to the operations dashboard.
admin.site.index_template = "admin/ops/index.html"

urlpatterns = [
    # Before admin.site.urls, whose catch-all would answer 404 for it.
    path("admin/ops/", admin.site.admin_view(ops_dashboard), name="ops_dashboard"),
    # Flower behind the staff login (jobs/operations/flower_proxy.py).
    path("admin/flower/", admin.site.admin_view(flower, cacheable=True), name="flower"),
    path("admin/flower/<path:path>", admin.site.admin_view(flower, cacheable=True), name="flower"),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("healthz", healthz, name="healthz"),
    # The trigger API (/api/v1/) and provider webhooks (/webhooks/).
    path("", include("http_api.urls")),
]

# django-debug-toolbar, only where config/settings/local.py installed it (never in production).
if "debug_toolbar" in settings.INSTALLED_APPS:
    from debug_toolbar.toolbar import debug_toolbar_urls

    urlpatterns += debug_toolbar_urls()
