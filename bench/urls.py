"""The platform's URL map plus two baselines: the trigger API's, a bare Django view that parses the
same body and publishes the same job, with no auth, rate limit, idempotency or database row; and
the admin's before its changes for scale (bench/stock_admin.py, under /bench/stock-admin/)."""

import json

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from bench.stock_admin import site as stock_admin_site
from config.urls import urlpatterns as platform_urlpatterns


@csrf_exempt
def bare_job(request: HttpRequest) -> JsonResponse:
    """POST {"task": ..., "kwargs": {"lead_id": n}} -> 202, the shape docs/baselines.md measured."""
    from tasks.app import app

    try:
        body = json.loads(request.body)
        lead_id = body["kwargs"]["lead_id"]
        if not isinstance(lead_id, int) or isinstance(lead_id, bool) or lead_id < 1:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": {"code": "invalid_arguments", "message": "kwargs.lead_id"}}, status=400)
    result = app.send_task("tasks.deals.send_lead_follow_up", kwargs={"lead_id": lead_id})
    return JsonResponse({"id": result.id, "state": "PENDING"}, status=202)


urlpatterns = [
    path("bench/bare-job", bare_job),
    path("bench/stock-admin/", stock_admin_site.urls),
    *platform_urlpatterns,
]
