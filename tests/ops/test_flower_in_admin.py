"""Flower in the admin, what passes through (jobs/operations/flower_proxy.py, docs/security.md
"Flower"): who gets in, what Flower is sent, what the browser gets back.

Flower here is a recording HTTP server (pytest-httpserver) at FLOWER_URL, so that each request
the web process makes to it can be read; real Flower behind /admin/flower/, in a real browser:
tests/browser/test_flower_in_admin.py."""

from __future__ import annotations

import base64
import logging

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from werkzeug import Response

from jobs.operations.flower_proxy import FLOWER_CSP
from tests.support.processes import free_port
from tests.support.two_factor import log_in_staff

CREDENTIALS = "ops:flower-s3cret"
FLOWER_PAGE = (
    '<html><head><link href="/static/css/flower.css" rel="stylesheet">'
    '<script src="/static/js/flower.js?v=1a2b"></script></head><body>'
    '<input type="hidden" value="" id="url_prefix">'
    '<a href="/tasks">Tasks</a> <a href="/worker/celery@host-1">celery@host-1</a>'
    '<a href="//elsewhere.example/x">protocol-relative</a> <a href="https://flower.readthedocs.io/">docs</a>'
    "</body></html>"
)


@pytest.fixture
def flower(httpserver, settings):
    settings.FLOWER_URL = httpserver.url_for("/")
    settings.FLOWER_BASIC_AUTH = CREDENTIALS
    return httpserver


def _answer(flower, path: str, response: Response, method: str = "GET") -> None:
    flower.expect_request(path, method=method).respond_with_response(response)


def _sent_to_flower(flower) -> list:
    return [request for request, _ in flower.log]


@pytest.mark.django_db
def test_a_signed_out_visitor_is_sent_to_the_admin_login_and_flower_is_not_asked(client, flower):
    response = client.get("/admin/flower/tasks")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/flower/tasks"
    assert _sent_to_flower(flower) == []


@pytest.mark.django_db
def test_a_session_that_passed_no_second_factor_is_not_let_through(client, flower, admin_user):
    client.force_login(admin_user)  # a password alone (another login view, a stolen session)

    response = client.get("/admin/flower/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert _sent_to_flower(flower) == []


@pytest.mark.django_db
def test_staff_get_flowers_page_with_its_links_under_the_prefix_and_flower_gets_only_its_own_credentials(
    admin_client, flower
):
    page = Response(FLOWER_PAGE, content_type="text/html; charset=UTF-8")
    page.headers.add("Set-Cookie", "_xsrf=2|token|abc; Path=/")
    page.headers.add("Set-Cookie", "user=flower-session; Path=/")
    _answer(flower, "/tasks", page)
    admin_client.cookies["_xsrf"] = "2|earlier|xyz"

    response = admin_client.get("/admin/flower/tasks?state=FAILURE", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<link href="/admin/flower/static/css/flower.css"' in html
    assert '<script src="/admin/flower/static/js/flower.js?v=1a2b">' in html
    assert '<input type="hidden" value="/admin/flower" id="url_prefix">' in html
    assert '<a href="/admin/flower/tasks">' in html
    assert '<a href="/admin/flower/worker/celery@host-1">' in html
    assert '<a href="//elsewhere.example/x">' in html and '<a href="https://flower.readthedocs.io/">' in html
    # Flower's XSRF cookie comes back scoped to the prefix; nothing else Flower sets does.
    assert response.cookies["_xsrf"].value == "2|token|abc"
    assert response.cookies["_xsrf"]["path"] == "/admin/flower/"
    assert "user" not in response.cookies
    assert "no-store" in response["Cache-Control"]  # a page of Flower's is never cached
    # The site's policy, with Flower's inline script and style allowed by their hashes, nothing
    # else inline.
    policy = response["Content-Security-Policy"]
    for source in [*FLOWER_CSP["script-src"], *FLOWER_CSP["style-src"]]:
        assert source in policy
    assert "'unsafe-inline'" not in policy and "frame-ancestors 'none'" in policy

    [sent] = _sent_to_flower(flower)
    assert sent.full_path == "/tasks?state=FAILURE"
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(CREDENTIALS.encode()).decode()
    assert sent.headers["Accept"] == "text/html"
    # Flower's own cookie only: never the staff member's session or CSRF cookie.
    assert sent.headers["Cookie"] == "_xsrf=2|earlier|xyz"
    assert "sessionid" not in str(sent.headers) and "csrftoken" not in str(sent.headers)


@pytest.mark.django_db
def test_a_button_of_flowers_posts_through_for_staff_who_may_act_and_is_logged_with_who(
    admin_client, flower, caplog
):
    _answer(
        flower,
        "/api/worker/pool/grow/celery@host-1",
        Response('{"message": "Growing"}', content_type="application/json"),
        method="POST",
    )

    with caplog.at_level(logging.WARNING, logger="jobs.operations.flower_proxy"):
        response = admin_client.post(
            "/admin/flower/api/worker/pool/grow/celery@host-1",
            {"workername": "celery@host-1", "n": "1"},
            HTTP_SEC_FETCH_SITE="same-origin",
            HTTP_X_XSRFTOKEN="2|token|abc",
        )

    assert response.status_code == 200
    assert response.json() == {"message": "Growing"}
    [sent] = _sent_to_flower(flower)
    assert sent.form.to_dict() == {"workername": "celery@host-1", "n": "1"}
    assert sent.headers["X-XSRFToken"] == "2|token|abc"
    assert sent.headers["Sec-Fetch-Site"] == "same-origin"  # Flower's own cross-site check passes
    assert "flower: POST /api/worker/pool/grow/celery@host-1 by admin" in caplog.messages


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_ORIGIN": "https://evil.example"},
        {"HTTP_SEC_FETCH_SITE": "same-site"},
        {"HTTP_ORIGIN": "https://evil.example"},  # an older browser: no fetch metadata
        {},  # neither: nothing says the request came from our pages
    ],
    ids=["cross-site", "same-site", "foreign-origin", "no-origin"],
)
def test_a_state_changing_request_not_from_the_admins_own_pages_is_refused(admin_client, flower, headers):
    response = admin_client.post("/admin/flower/api/worker/shutdown/celery@host-1", **headers)

    assert response.status_code == 403
    assert response.content == b"Cross-site request to Flower refused."
    assert _sent_to_flower(flower) == []


@pytest.mark.django_db
def test_a_request_from_our_origin_without_fetch_metadata_goes_through(admin_client, flower):
    _answer(flower, "/api/task/revoke/abc", Response("{}", content_type="application/json"), method="POST")

    response = admin_client.post("/admin/flower/api/task/revoke/abc", HTTP_ORIGIN="http://testserver")

    assert response.status_code == 200
    assert len(_sent_to_flower(flower)) == 1


@pytest.mark.django_db
def test_staff_who_may_only_look_can_read_flower_but_not_press_its_buttons(client, flower):
    looker = get_user_model().objects.create_user("looker", password="a-long-enough-password", is_staff=True)
    looker.user_permissions.add(Permission.objects.get(codename="view_taskresult"))
    log_in_staff(client, looker, password="a-long-enough-password")
    _answer(flower, "/workers", Response("<html></html>", content_type="text/html"))

    assert client.get("/admin/flower/workers").status_code == 200
    response = client.post(
        "/admin/flower/api/worker/shutdown/celery@host-1", HTTP_SEC_FETCH_SITE="same-origin"
    )

    assert response.status_code == 403
    assert response.content == b"You are not allowed to act on workers or tasks."
    assert [request.path for request in _sent_to_flower(flower)] == ["/workers"]


@pytest.mark.django_db
def test_staff_who_may_not_see_task_results_do_not_see_flower(client, flower):
    clerk = get_user_model().objects.create_user("clerk", password="a-long-enough-password", is_staff=True)
    log_in_staff(client, clerk, password="a-long-enough-password")

    response = client.get("/admin/flower/api/tasks")

    assert response.status_code == 403
    assert response.content == b"You are not allowed to see task results, nor Flower."
    assert _sent_to_flower(flower) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "api/task/send-task/tasks.payments.process_invoice_payment",
        "api/task/apply/x",
        "api/task/async-apply/x",
    ],
)
def test_flowers_api_that_sends_any_task_is_not_passed_on_even_for_a_superuser(admin_client, flower, path):
    response = admin_client.post(f"/admin/flower/{path}", {"args": "[1]"}, HTTP_SEC_FETCH_SITE="same-origin")

    assert response.status_code == 403
    assert response.content == b"Flower's admin page does not do that."
    assert _sent_to_flower(flower) == []


@pytest.mark.django_db
def test_the_tasks_tables_search_is_a_read_though_flower_sends_it_as_a_post(client, flower):
    looker = get_user_model().objects.create_user("looker", password="a-long-enough-password", is_staff=True)
    looker.user_permissions.add(Permission.objects.get(codename="view_taskresult"))
    log_in_staff(client, looker, password="a-long-enough-password")
    _answer(
        flower, "/tasks/datatable", Response('{"data": []}', content_type="application/json"), method="POST"
    )

    response = client.post(
        "/admin/flower/tasks/datatable", {"search[value]": "x"}, HTTP_SEC_FETCH_SITE="same-origin"
    )

    assert response.status_code == 200 and response.json() == {"data": []}


@pytest.mark.django_db
def test_flowers_versioned_static_files_keep_their_cache_lifetime(admin_client, flower):
    script = Response("var x;", content_type="application/javascript")
    script.headers["Cache-Control"] = "max-age=315360000"
    _answer(flower, "/static/js/flower.js", script)

    response = admin_client.get("/admin/flower/static/js/flower.js?v=1a2b")

    assert response.status_code == 200 and response.content == b"var x;"
    assert response["Cache-Control"] == "max-age=315360000"
    assert response["Content-Type"] == "application/javascript"


@pytest.mark.django_db
def test_flowers_redirects_and_errors_come_back_under_the_prefix(admin_client, flower):
    _answer(flower, "/login", Response("", status=302, headers={"Location": "/workers?x=1"}))
    _answer(flower, "/worker/gone@host", Response("Unknown worker 'gone@host'", status=404))
    absolute = flower.url_for("/tasks?state=FAILURE")  # Flower's own address, not the browser's
    _answer(flower, "/absolute", Response("", status=302, headers={"Location": absolute}))
    _answer(flower, "/elsewhere", Response("", status=302, headers={"Location": "//evil.example/x"}))

    redirected = admin_client.get("/admin/flower/login")
    missing = admin_client.get("/admin/flower/worker/gone@host")

    assert (redirected.status_code, redirected["Location"]) == (302, "/admin/flower/workers?x=1")
    assert (missing.status_code, missing.content) == (404, b"Unknown worker 'gone@host'")
    assert admin_client.get("/admin/flower/absolute")["Location"] == "/admin/flower/tasks?state=FAILURE"
    assert admin_client.get("/admin/flower/elsewhere")["Location"] == "/admin/flower/"


@pytest.mark.django_db
def test_flower_not_answering_is_a_502_that_names_where_it_was_asked_without_its_password(
    admin_client, settings, caplog
):
    port = free_port()  # nothing listens there
    settings.FLOWER_URL = f"http://ops:flower-s3cret@127.0.0.1:{port}"
    settings.FLOWER_BASIC_AUTH = CREDENTIALS

    with caplog.at_level(logging.WARNING, logger="jobs.operations.flower_proxy"):
        response = admin_client.get("/admin/flower/")

    assert response.status_code == 502
    said = f"Flower does not answer at http://127.0.0.1:{port} (FLOWER_URL): is it running?"
    assert response.content.decode() == said
    assert "flower-s3cret" not in caplog.text and f"127.0.0.1:{port}" in caplog.text


@pytest.mark.django_db
def test_flower_refusing_the_web_processs_credentials_is_a_502_that_says_so(
    admin_client, flower, settings, caplog
):
    settings.FLOWER_BASIC_AUTH = "ops:not-flowers-password"
    _answer(
        flower,
        "/",
        Response("Unauthorized", status=401, headers={"WWW-Authenticate": 'Basic realm="flower"'}),
    )

    with caplog.at_level(logging.WARNING, logger="jobs.operations.flower_proxy"):
        response = admin_client.get("/admin/flower/")

    assert response.status_code == 502
    assert b"refused this web process's FLOWER_BASIC_AUTH" in response.content
    assert "WWW-Authenticate" not in response  # no password prompt in the staff member's browser
    assert "not-flowers-password" not in caplog.text and "refused FLOWER_BASIC_AUTH" in caplog.text


@pytest.mark.django_db
def test_without_flower_url_the_admin_has_no_flower_and_no_link_to_it(admin_client, settings):
    settings.FLOWER_URL = ""

    assert admin_client.get("/admin/flower/").status_code == 404
    assert 'href="/admin/flower/"' not in admin_client.get("/admin/").content.decode()


@pytest.mark.django_db
def test_the_admin_index_links_to_flower(admin_client, flower):
    assert '<a href="/admin/flower/">Flower</a>' in admin_client.get("/admin/").content.decode()
