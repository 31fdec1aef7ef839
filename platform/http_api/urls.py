"""URLs of the trigger API (/api/v1/), the provider webhooks (/webhooks/) and the browsers'
Content-Security-Policy violation reports (/csp-violations)."""

from django.conf import settings
from django.urls import path, re_path

from http_api.api import api, not_found
from http_api.csp_violations import csp_violation_report
from http_api.webhooks import stripe_webhook, twilio_status_webhook

urlpatterns = [
    path("api/v1/", api.urls),
    # Anything else under /api/v1/ answers in the API's error shape.
    re_path(r"^api/v1/(?P<rest>.*)$", not_found),
    path("webhooks/stripe", stripe_webhook, name="stripe_webhook"),
    path("webhooks/twilio/status", twilio_status_webhook, name="twilio_status_webhook"),
    # Browsers' Content-Security-Policy violation reports (the policy's report-uri).
    path(settings.CSP_REPORT_PATH.lstrip("/"), csp_violation_report, name="csp_violation_report"),
]
