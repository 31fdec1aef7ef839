"""Every error under /api/, /webhooks/ and /healthz has the contract's shape, including the ones
no view of ours writes: wrong-method 405s (django-ninja's and @require_POST/@require_GET's),
Django's 404 page and an unhandled exception's 500 (which never shows its traceback)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.http_api.conftest import assert_error


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("delete", "/api/v1/jobs", ["POST"]),  # django-ninja's plain-text 405
        ("post", "/api/v1/tasks", ["GET"]),
        ("put", "/api/v1/jobs/00000000-0000-0000-0000-000000000000", ["GET"]),
        ("get", "/webhooks/stripe", ["POST"]),  # @require_POST's empty 405
        ("get", "/webhooks/twilio/status", ["POST"]),
        ("post", "/healthz", ["GET"]),  # @require_GET's empty 405
    ],
)
def test_a_wrong_method_is_405_method_not_allowed_in_the_error_shape(api_key, method, path, allowed):
    # No CSRF enforcement: a browser-less client (curl) gets no CSRF 403 on POST /healthz first.
    response = getattr(Client(**api_key.header), method)(path)

    details = assert_error(response, 405, "method_not_allowed")
    assert details == {"allowed": allowed}
    assert response["Allow"] == ", ".join(allowed)


@pytest.mark.django_db
def test_an_unknown_webhook_path_is_404_not_found_in_the_error_shape():
    assert_error(Client().post("/webhooks/nope"), 404, "not_found")


@pytest.mark.django_db
@pytest.mark.urls("tests.http_api.boom_urls")
@pytest.mark.parametrize("debug", [False, True])
def test_an_unhandled_exception_on_a_webhook_is_500_internal_error_without_its_traceback(settings, debug):
    settings.DEBUG = debug  # with DEBUG on, Django would answer its HTML traceback page

    response = Client(raise_request_exception=False).post("/webhooks/boom")

    assert_error(response, 500, "internal_error")
    assert b"secret-internal-detail" not in response.content
    assert b"Traceback" not in response.content


@pytest.mark.django_db
def test_errors_elsewhere_are_left_to_django(admin_client):
    response = admin_client.get("/admin/no-such-page/")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")
