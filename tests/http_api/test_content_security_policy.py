"""The Content-Security-Policy as the server sends it (docs/security.md), and the endpoint that logs
what browsers report against it (POST /csp-violations, http_api/csp_violations.py). What a real
browser does under the policy is tests/browser/test_content_security_policy.py."""

from __future__ import annotations

import json
import logging
import re

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from config.structured_logging import JsonFormatter
from config.urls import urlpatterns as real_urlpatterns
from http_api import csp_violations, ratelimit
from tests.http_api.conftest import assert_error
from tests.support.processes import ROOT

PHONE = "+14165550123"
REPORT_PATH = "/csp-violations"
FLOODER, OTHER, PROXY = "203.0.113.9", "198.51.100.30", "127.0.0.1"


@pytest.fixture(autouse=True)
def _fresh_report_budgets(monkeypatch):
    """Every test's addresses start with a whole report budget, and no "dropped" notice said yet."""
    monkeypatch.setattr(csp_violations, "_dropped_noticed_at", None)
    for address in (FLOODER, OTHER, PROXY):
        ratelimit.reset(csp_violations.bucket(address))
    yield
    for address in (FLOODER, OTHER, PROXY):
        ratelimit.reset(csp_violations.bucket(address))


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a page that fails")


# The real URLconf plus a page that raises, for the server error page (pytest.mark.urls below).
urlpatterns = [path("boom-page", _boom), *real_urlpatterns]


def _directives(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split(" ", 1)[0]: part.partition(" ")[2] for part in header.split("; ")}


# --- The policy -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_policy_allows_scripts_and_styles_from_the_site_only_and_no_framing(client):
    policy = _directives(client.get("/admin/login/"))

    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert policy["report-uri"] == REPORT_PATH
    assert not any("unsafe" in value or "*" in value for value in policy.values()), policy


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_error_pages_carry_the_policy(client):
    not_found = client.get("/no-such-page")
    server_error = Client(raise_request_exception=False).get("/boom-page")
    api_error = client.get("/api/v1/no-such-endpoint")

    assert not_found.status_code == 404 and "Content-Security-Policy" in not_found
    assert server_error.status_code == 500 and "Content-Security-Policy" in server_error
    # The API's errors are reshaped into JSON outside the policy's middleware: still carried.
    assert api_error.status_code == 404 and "Content-Security-Policy" in api_error


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_with_debug_on_djangos_debug_404_and_500_pages_go_without_the_policy(client, settings):
    """Django's debug pages are made of inline styles and scripts: django-csp leaves them without
    the header (its exemption for 404 and 500 under DEBUG), and every other page keeps it."""
    settings.DEBUG = True

    not_found = client.get("/no-such-page")
    server_error = Client(raise_request_exception=False).get("/boom-page")
    page = client.get("/admin/login/")

    assert not_found.status_code == 404 and b"Using the URLconf" in not_found.content, "the debug page"
    assert "Content-Security-Policy" not in not_found
    assert server_error.status_code == 500 and b"RuntimeError" in server_error.content, "the debug page"
    assert "Content-Security-Policy" not in server_error
    assert page.status_code == 200 and "Content-Security-Policy" in page


@pytest.mark.django_db
def test_a_refused_form_page_carries_the_policy_and_no_inline_style():
    # A login form posted without its CSRF token: Django's CSRF failure page, ours (403_csrf.html).
    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "ops", "password": "x"})

    assert response.status_code == 403
    assert "Content-Security-Policy" in response
    assert b"<style" not in response.content and b"style=" not in response.content
    assert b"CSRF verification failed" in response.content


@pytest.mark.django_db
def test_the_api_docs_load_swagger_ui_from_our_static_files(client):
    page = client.get("/api/v1/docs").content.decode()

    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert scripts == ["/static/ninja/swagger-ui-bundle.js", "/static/ninja/swagger-ui-init.js"]
    assert re.findall(r'<link[^>]*href="(https?:[^"]*)"', page) == []
    # No inline script: the only <script> without src is the settings, a JSON data block.
    assert re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", page) == [
        ' type="application/json" id="swagger-settings"'
    ]


def test_no_template_or_admin_html_of_ours_has_an_inline_script_or_style():
    """Inline <script>, <style> and style="" are refused by the policy: ours live in static files."""
    inline = re.compile(r"<style|\sstyle=|<script(?![^>]*\bsrc=)(?![^>]*application/json)|\son[a-z]+=", re.I)
    found = []
    for source in [*ROOT.glob("platform/**/templates/**/*.html"), *ROOT.glob("platform/**/*.py")]:
        if "migrations" in source.parts:
            continue
        found += [f"{source.relative_to(ROOT)}: {m.group(0)}" for m in inline.finditer(source.read_text())]
    assert found == []


# --- The report endpoint --------------------------------------------------------------------


def _violation_lines(caplog) -> list[dict]:
    """The endpoint's log records, as production's JSON formatter writes them."""
    formatter = JsonFormatter()
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if record.name == "http_api.csp_violations"
    ]


def test_a_violation_report_is_logged_as_one_structured_line_without_personal_data(client, caplog):
    report = {
        "csp-report": {
            "document-uri": f"https://ops.example.com/admin/marketplace/profile/?q={PHONE}#top",
            "referrer": f"https://ops.example.com/admin/?search={PHONE}",
            "violated-directive": "script-src-elem",
            "effective-directive": "script-src-elem",
            "original-policy": "default-src 'self'; report-uri /csp-violations",
            "disposition": "enforce",
            "blocked-uri": "https://user:secret@cdn.example.net/lib.js?token=abc",
            "line-number": 12,
            "column-number": 7,
            "source-file": "https://ops.example.com/static/admin/js/core.js?v=1",
            "status-code": 200,
            "script-sample": f"alert('{PHONE}')",
        }
    }

    with caplog.at_level(logging.WARNING, logger="http_api.csp_violations"):
        response = client.post(REPORT_PATH, json.dumps(report), content_type="application/csp-report")

    assert response.status_code == 204
    [line] = _violation_lines(caplog)
    assert line["level"] == "WARNING"
    assert {k: line[k] for k in line if k not in ("time", "level", "logger", "message")} == {
        "event": "csp_violation",
        "directive": "script-src-elem",
        "blocked": "https://cdn.example.net/lib.js",
        "document": "https://ops.example.com/admin/marketplace/profile/",
        "source_file": "https://ops.example.com/static/admin/js/core.js",
        "disposition": "enforce",
        "line": 12,
        "column": 7,
        "status_code": 200,
    }
    written = json.dumps(line)
    for personal in ("4165550", "search=", "secret", "token", "alert", "user:"):
        assert personal not in written


def test_reporting_api_reports_are_logged_one_line_each(client, caplog):
    body = [
        {
            "type": "csp-violation",
            "age": 10,
            "url": "https://ops.example.com/admin/",
            "user_agent": "Mozilla/5.0",
            "body": {
                "documentURL": "https://ops.example.com/admin/ops/?queue=default",
                "blockedURL": "inline",
                "effectiveDirective": "style-src-attr",
                "disposition": "enforce",
                "lineNumber": 40,
                "sample": "color: red",
            },
        },
        {"type": "deprecation", "body": {"id": "x"}},
        {
            "type": "csp-violation",
            "body": {"documentURL": "https://ops.example.com/api/v1/docs", "effectiveDirective": "img-src"},
        },
    ]

    with caplog.at_level(logging.WARNING, logger="http_api.csp_violations"):
        response = client.post(REPORT_PATH, json.dumps(body), content_type="application/reports+json")

    assert response.status_code == 204
    lines = _violation_lines(caplog)
    assert [(line["directive"], line.get("blocked"), line["document"]) for line in lines] == [
        ("style-src-attr", "inline", "https://ops.example.com/admin/ops/"),
        ("img-src", None, "https://ops.example.com/api/v1/docs"),
    ]
    assert "color: red" not in json.dumps(lines)


def test_a_report_needs_no_session_and_no_csrf_token(caplog):
    report = {
        "csp-report": {"document-uri": "https://ops.example.com/admin/", "effective-directive": "img-src"}
    }

    response = Client(enforce_csrf_checks=True).post(
        REPORT_PATH, json.dumps(report), content_type="application/csp-report"
    )

    assert response.status_code == 204


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b'{"csp-report": {"document-uri": "https://ops.example.com/"}}', 400, "invalid_report"),
        (b'[{"type": "deprecation", "body": {}}]', 400, "invalid_report"),
        (b'"just a string"', 400, "invalid_report"),
        (b'{"csp-report": {"effective-directive": "' + b"x" * 20_000 + b'"}}', 413, "payload_too_large"),
    ],
)
def test_what_is_not_a_report_is_refused_in_the_error_shape_and_not_logged(
    client, caplog, body, status, code
):
    with caplog.at_level(logging.WARNING, logger="http_api.csp_violations"):
        response = client.post(REPORT_PATH, body, content_type="application/csp-report")

    details = assert_error(response, status, code)
    if status == 400:
        assert details == {"field": "body"}
    assert _violation_lines(caplog) == []


def test_the_report_endpoint_takes_only_post(client):
    assert client.get(REPORT_PATH).status_code == 405


def _reports(count: int, directive: str = "img-src") -> str:
    return json.dumps(
        [
            {
                "type": "csp-violation",
                "body": {"documentURL": f"https://ops.example.com/{n}", "effectiveDirective": directive},
            }
            for n in range(count)
        ]
    )


def _post_reports(count: int, address: str, **headers):
    return Client().post(
        REPORT_PATH, _reports(count), content_type="application/reports+json", REMOTE_ADDR=address, **headers
    )


def test_an_address_past_its_report_budget_is_answered_204_and_logged_no_more(caplog):
    """No request limit used to mean 20 WARNING lines per request, for as many requests as anyone
    cared to send. Now 60 a minute per address; past that a request is answered 204 as usual and
    only one line says reports are being dropped."""
    with caplog.at_level(logging.WARNING, logger="http_api.csp_violations"):
        answers = [_post_reports(csp_violations.MAX_REPORTS_PER_BODY, FLOODER).status_code for _ in range(10)]
        not_even_parsed = Client().post(
            REPORT_PATH, b"{not json", content_type="application/csp-report", REMOTE_ADDR=FLOODER
        )

    lines = _violation_lines(caplog)
    assert answers == [204] * 10 and not_even_parsed.status_code == 204
    assert sum(line["event"] == "csp_violation" for line in lines) == csp_violations.REPORT_RATE.limit == 60
    [dropped] = [line for line in lines if line["event"] == "csp_reports_dropped"]
    assert "over its budget of 60/m" in dropped["message"] and FLOODER not in json.dumps(dropped)


def test_a_body_larger_than_whats_left_of_the_budget_is_logged_up_to_the_budget(caplog):
    with caplog.at_level(logging.WARNING, logger="http_api.csp_violations"):
        for _ in range(3):
            _post_reports(19, FLOODER)  # 57 of 60
        _post_reports(csp_violations.MAX_REPORTS_PER_BODY, FLOODER)

    events = [line["event"] for line in _violation_lines(caplog)]
    assert events == ["csp_violation"] * 60 + ["csp_reports_dropped"]


def test_bodies_that_are_not_reports_spend_the_budget_too(caplog):
    answers = [
        Client()
        .post(REPORT_PATH, b"{not json", content_type="application/csp-report", REMOTE_ADDR=FLOODER)
        .status_code
        for _ in range(csp_violations.REPORT_RATE.limit + 1)
    ]

    assert answers == [400] * 60 + [204]


def test_one_address_over_its_budget_leaves_the_others_theirs(caplog):
    for _ in range(4):
        _post_reports(csp_violations.MAX_REPORTS_PER_BODY, FLOODER)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="http_api.csp_violations"):
        _post_reports(2, OTHER)

    assert [line["event"] for line in _violation_lines(caplog)] == ["csp_violation"] * 2


def test_behind_the_proxy_the_reports_budget_is_the_clients_not_the_proxys(settings, caplog):
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(4):
        _post_reports(csp_violations.MAX_REPORTS_PER_BODY, PROXY, HTTP_X_FORWARDED_FOR=FLOODER)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="http_api.csp_violations"):
        _post_reports(1, PROXY, HTTP_X_FORWARDED_FOR=OTHER)
        _post_reports(1, PROXY, HTTP_X_FORWARDED_FOR=FLOODER)

    events = [line["event"] for line in _violation_lines(caplog)]
    assert events == ["csp_violation"], "the other client logged; the flooder, already told, nothing"
