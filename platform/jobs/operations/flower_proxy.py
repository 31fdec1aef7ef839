"""Flower in the admin: /admin/flower/ serves Flower's pages and API behind the staff login, both
factors included (admin_view, config/urls.py), so ops staff reach it as they reach the rest of the
back office and nobody needs Flower's own password in a browser.

The web process asks Flower at FLOWER_URL (its own port, on the loopback or a private network) with
FLOWER_BASIC_AUTH, which never leaves the server. Flower writes its links from the site's root
(`/tasks`, `/static/...`) and its scripts from a `url_prefix` field: both are given the
/admin/flower prefix on the way through. What passes, each way:

- to Flower: the method, path, query, body, and the headers its pages need (Accept, Content-Type,
  X-Requested-With, X-XSRFToken, Sec-Fetch-Site and its own `_xsrf` cookie): never the staff
  member's session cookie, CSRF cookie or address;
- back: the status, the body, Content-Type, Cache-Control and Flower's `_xsrf` cookie (scoped to
  the prefix), and a redirect's Location under the prefix; Flower refusing our credentials (401)
  or not answering is a 502 that says which.

Reading Flower takes the permission to view task results (what Flower shows). A state-changing
request is passed on only if it is one of Flower's buttons (ACTIONS: a worker's pool, queues and
shutdown; a task's revoke and limits; never Flower's API that sends any task), takes the
permission the ops dashboard's actions take (may_act), is logged with who made it, and must come
from the admin's own pages: Flower's scripts send Flower's XSRF header, not Django's, so the
view is exempt from Django's CSRF check and makes its own, the browser's Sec-Fetch-Site (or,
without it, the Origin) naming this site; the session cookie is SameSite=Lax besides.

Flower's pages run under the site's Content-Security-Policy, with two exceptions of Flower's own
templates allowed by hash, nothing else inline: the Workers page's `var autorefresh = 0|1;` script
and a table column's `style="width: 125px;"` (tests/browser/test_flower_in_admin.py walks the pages
and sees no violation)."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import urllib.error
import urllib.parse
import urllib.request

from csp.decorators import csp_update
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt

from jobs.operations.ops_dashboard import may_act

logger = logging.getLogger(__name__)

PREFIX = "/admin/flower"
TIMEOUT_SECONDS = 10.0
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
FORWARDED_REQUEST_HEADERS = ("Accept", "Content-Type", "X-Requested-With", "X-XSRFToken", "Sec-Fetch-Site")
FORWARDED_RESPONSE_HEADERS = ("Content-Type", "Cache-Control", "Last-Modified", "ETag")
FLOWER_COOKIE = "_xsrf"
# What Flower shows is task results (arguments, outcomes): the permission to see them in admin.
VIEW_PERMISSION = "django_celery_results.view_taskresult"
# The state-changing requests Flower's own pages make (flower/static/js/flower.js): a worker's
# pool and queues, its shutdown, and a task's revoke, time limit and rate limit. Not Flower's
# task-sending API (apply, async-apply, send-task): running any task with any arguments is not
# an operations action, and the admin does not pass it on.
READS_BY_POST = {"tasks/datatable"}  # the Tasks page's table, its search and paging
ACTIONS = re.compile(
    r"api/worker/(shutdown|pool/(restart|grow|shrink|autoscale)|queue/(add|cancel)-consumer)/[^/]+"
    r"|api/task/(revoke|timeout|rate-limit)/[^/]+"
)
PATH_SAFE = "/@:!$&'()*+,;=-._~"  # a worker's name (celery@host) stays as Flower wrote it


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# Flower's templates (flower/templates/workers.html, worker.html), exactly as they render: Tornado
# collapses a template's runs of whitespace to one character (a newline where the run had one).
INLINE_SCRIPTS = [f"\nvar autorefresh = {value};\n" for value in (0, 1)]
INLINE_STYLES = ["width: 125px;"]
FLOWER_CSP = {
    "script-src": [_csp_hash(script) for script in INLINE_SCRIPTS],
    "style-src": ["'unsafe-hashes'", *(_csp_hash(style) for style in INLINE_STYLES)],
}

# Root-relative URLs in Flower's HTML (href/src/action="/..."), not protocol-relative ones ("//").
_ROOT_RELATIVE = re.compile(r'(\b(?:href|src|action)=")/(?!/)')
_URL_PREFIX_FIELD = re.compile(r'value="[^"]*"(\s+id="url_prefix")')


class FlowerUnavailable(Exception):
    """Flower did not answer at FLOWER_URL."""


@csrf_exempt
@csp_update(FLOWER_CSP)
def flower(request: HttpRequest, path: str = "") -> HttpResponse:
    """Reached through admin.site.admin_view only (staff, signed in with both factors), with
    cacheable=True: Flower's versioned static files keep their long Cache-Control, and every other
    answer is marked never to be cached."""
    if not settings.FLOWER_URL:
        raise Http404("Flower is not configured (FLOWER_URL)")
    if not request.user.has_perm(VIEW_PERMISSION):
        return _plain("You are not allowed to see task results, nor Flower.", status=403)
    if request.method not in SAFE_METHODS:
        if not _from_this_site(request):
            return _plain("Cross-site request to Flower refused.", status=403)
        if path in READS_BY_POST:
            pass  # a search, sent as a POST by Flower's script: a read like any GET
        elif not ACTIONS.fullmatch(path):
            return _plain("Flower's admin page does not do that.", status=403)
        elif not may_act(request):
            return _plain("You are not allowed to act on workers or tasks.", status=403)
        else:
            logger.warning("flower: %s /%s by %s", request.method, path, request.user.get_username())
    try:
        status, headers, body = _ask_flower(request, path)
    except FlowerUnavailable as exc:
        where = _without_credentials(settings.FLOWER_URL)
        logger.warning("flower did not answer at %s: %s", where, exc)
        return _plain(f"Flower does not answer at {where} (FLOWER_URL): is it running?", status=502)
    if status == 401:  # Flower's basic auth refused ours: the browser could not do better
        logger.warning("flower at %s refused FLOWER_BASIC_AUTH", _without_credentials(settings.FLOWER_URL))
        return _plain(
            "Flower refused this web process's FLOWER_BASIC_AUTH: it must be the one Flower runs with.",
            status=502,
        )
    if headers.get("Content-Type", "").startswith("text/html"):
        body = _prefixed_html(body.decode("utf-8", errors="replace")).encode()
    response = HttpResponse(body, status=status)
    for name in FORWARDED_RESPONSE_HEADERS:
        if name in headers:
            response[name] = headers[name]
    if "Cache-Control" not in response:
        add_never_cache_headers(response)  # Flower's pages; its versioned static files say their own
    if "Location" in headers:
        response["Location"] = _prefixed_location(headers["Location"])
    for cookie in headers.get_all("Set-Cookie") or []:
        _pass_flower_cookie(response, cookie)
    return response


def _plain(text: str, *, status: int) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def _from_this_site(request: HttpRequest) -> bool:
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("Origin")
    return origin is not None and urllib.parse.urlsplit(origin).netloc == request.get_host()


def _ask_flower(request: HttpRequest, path: str):
    url = f"{settings.FLOWER_URL.rstrip('/')}/{urllib.parse.quote(path, safe=PATH_SAFE)}"
    if request.META.get("QUERY_STRING"):
        url += "?" + request.META["QUERY_STRING"]
    headers = {name: request.headers[name] for name in FORWARDED_REQUEST_HEADERS if name in request.headers}
    if FLOWER_COOKIE in request.COOKIES:
        headers["Cookie"] = f"{FLOWER_COOKIE}={request.COOKIES[FLOWER_COOKIE]}"
    credentials = base64.b64encode(settings.FLOWER_BASIC_AUTH.encode()).decode()
    headers["Authorization"] = f"Basic {credentials}"
    body = request.body if request.method not in SAFE_METHODS else None
    outgoing = urllib.request.Request(url, data=body, headers=headers, method=request.method)  # noqa: S310 (FLOWER_URL, http(s) by settings)
    try:
        with _NO_REDIRECTS.open(outgoing, timeout=TIMEOUT_SECONDS) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as answer:  # 4xx/5xx and redirects: Flower's answer, passed on
        return answer.code, answer.headers, answer.read()
    except (urllib.error.URLError, OSError) as exc:
        raise FlowerUnavailable(str(getattr(exc, "reason", exc))) from exc


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect from Flower goes back to the browser (under the prefix), not followed here."""

    def redirect_request(self, *args, **kwargs):
        return None


# No proxy from the environment (http_proxy): Flower's credentials go to FLOWER_URL and nowhere else.
_NO_REDIRECTS = urllib.request.build_opener(urllib.request.ProxyHandler({}), _KeepRedirects)


def _prefixed_html(html: str) -> str:
    html = _ROOT_RELATIVE.sub(rf"\1{PREFIX}/", html)
    return _URL_PREFIX_FIELD.sub(rf'value="{PREFIX}"\1', html)


def _prefixed_location(location: str) -> str:
    """A redirect within Flower stays within the prefix; one anywhere else goes to Flower's home."""
    parts = urllib.parse.urlsplit(location)
    flower = urllib.parse.urlsplit(settings.FLOWER_URL)
    if parts.netloc and (parts.scheme, parts.netloc) != (flower.scheme, flower.netloc):
        return PREFIX + "/"
    if not parts.path.startswith("/"):
        return location if not (parts.scheme or parts.netloc) else PREFIX + "/"
    return urllib.parse.urlunsplit(("", "", PREFIX + parts.path, parts.query, parts.fragment))


def _pass_flower_cookie(response: HttpResponse, header: str) -> None:
    """Flower's XSRF cookie, under the prefix; any other cookie Flower sets stays with Flower."""
    name, _, rest = header.partition("=")
    if name.strip() != FLOWER_COOKIE:
        return
    value = rest.split(";", 1)[0]
    response.set_cookie(
        FLOWER_COOKIE,
        value,
        path=f"{PREFIX}/",
        secure=settings.SESSION_COOKIE_SECURE,
        samesite="Strict",
    )


def _without_credentials(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=host))
