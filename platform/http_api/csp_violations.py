"""POST /csp-violations: browsers report what the Content-Security-Policy blocked; each report
becomes one structured log line (logger `http_api.csp_violations`, event `csp_violation`).

The policy itself is in config/settings/base.py (CONTENT_SECURITY_POLICY, django-csp); its
`report-uri` names this endpoint. Both report formats are read: the `report-uri` one
(`application/csp-report`, one `{"csp-report": {...}}` per request) and the Reporting API's
(`application/reports+json`, a list of `{"type": "csp-violation", "body": {...}}`).

Nothing personal is logged: page, script and blocked addresses keep their scheme, host and path
only (a query string may hold a search for a phone number or a name); the referrer, the script
sample (a piece of the page) and the user agent are never read, and the client's address is
never logged. Browsers send these without a session or a CSRF token, so the endpoint takes none.

Nothing here lets an anonymous sender flood the log: a body is bounded (MAX_BODY_BYTES,
MAX_REPORTS_PER_BODY), and each client address (as staff_auth/addresses.py tells it, behind
TRUSTED_PROXY_COUNT proxies) has a budget of REPORT_RATE, kept by the trigger API's limiter
(http_api/ratelimit.py `take`, shared by every web process through Redis; a share per process
while Redis is away). Each violation logged spends one, and so does a body that is not a report.
Past the budget a request is answered 204 like any other and nothing of it is logged or even
parsed; each web process says so in one line at most every DROPPED_NOTICE_SECONDS, naming no
address. A browser resends nothing, so a dropped report is gone: the budget is far above what a
page that breaks the policy sends, one report per blocked load.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from http_api import ratelimit
from http_api.errors import error_response, too_large
from integrations.ratelimit import Rate
from staff_auth.addresses import client_address

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
MAX_REPORTS_PER_BODY = 20
# Violations logged per client address: 60 at once, then one a second.
REPORT_RATE_TEXT = "60/m"
REPORT_RATE = Rate.parse(REPORT_RATE_TEXT)
# A web process logs "reports dropped" at most once this often.
DROPPED_NOTICE_SECONDS = 60.0
_dropped_lock = threading.Lock()
_dropped_noticed_at: float | None = None  # monotonic time of this process's last notice
# What a browser puts in blocked-uri instead of an address: kept as they are.
_KEYWORDS = frozenset({"inline", "eval", "wasm-eval", "data", "blob", "self", "trusted-types-sink"})

# The fields of each format that are logged, under one name each; nothing else is read.
_CSP_REPORT_FIELDS = {
    "document-uri": "document",
    "blocked-uri": "blocked",
    "source-file": "source_file",
    "effective-directive": "directive",
    "violated-directive": "violated_directive",
    "disposition": "disposition",
    "line-number": "line",
    "column-number": "column",
    "status-code": "status_code",
}
_REPORTING_API_FIELDS = {
    "documentURL": "document",
    "blockedURL": "blocked",
    "sourceFile": "source_file",
    "effectiveDirective": "directive",
    "disposition": "disposition",
    "lineNumber": "line",
    "columnNumber": "column",
    "statusCode": "status_code",
}
_ADDRESSES = ("document", "blocked", "source_file")
_NUMBERS = ("line", "column", "status_code")


class InvalidReport(ValueError):
    """The body is not a CSP violation report in either format; the message says what is wrong."""


def without_query(value: str) -> str:
    """An address reduced to scheme, host and path (no user, password, query or fragment); a
    keyword ("inline", "eval") as it is."""
    if value in _KEYWORDS:
        return value
    parts = urlsplit(value)
    if parts.scheme in ("data", "blob"):
        return parts.scheme  # the payload is content, not an address
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _clean(raw: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, Any]:
    violation: dict[str, Any] = {}
    for source, name in fields.items():
        value = raw.get(source)
        if value is None or value == "":
            continue
        if name in _NUMBERS:
            if isinstance(value, int) and not isinstance(value, bool):
                violation[name] = value
        elif isinstance(value, str):
            violation[name] = without_query(value) if name in _ADDRESSES else value[:100]
    if "directive" not in violation and "violated_directive" in violation:
        violation["directive"] = violation["violated_directive"].split(" ", 1)[0]
    violation.pop("violated_directive", None)
    if "directive" not in violation:
        raise InvalidReport("a report names no effective-directive")
    return violation


def _is_csp_violation(report: Any) -> bool:
    """A Reporting API report of type csp-violation (others, e.g. deprecation, are skipped)."""
    return (
        isinstance(report, dict)
        and report.get("type") == "csp-violation"
        and isinstance(report.get("body"), dict)
    )


def parse_violations(body: Any) -> list[dict[str, Any]]:
    """The violations in a decoded report body (either format), cleaned of anything personal."""
    if isinstance(body, dict) and isinstance(body.get("csp-report"), dict):
        return [_clean(body["csp-report"], _CSP_REPORT_FIELDS)]
    if isinstance(body, list):
        reports = [item for item in body if _is_csp_violation(item)]
        if not reports:
            raise InvalidReport("the list holds no report of type csp-violation")
        return [_clean(item["body"], _REPORTING_API_FIELDS) for item in reports[:MAX_REPORTS_PER_BODY]]
    raise InvalidReport('expected {"csp-report": {...}} or a list of Reporting API reports')


def bucket(address: str | None) -> str:
    """The limiter's bucket for reports from `address` (None: no usable address, one bucket)."""
    return f"csp-report:{address or 'unknown'}"


def _within_budget(address: str | None) -> bool:
    """Spend one of `address`'s reports: False when its budget is spent."""
    return ratelimit.take(bucket(address), REPORT_RATE) == 0.0


def _note_dropped() -> None:
    """One line, at most every DROPPED_NOTICE_SECONDS per process, that reports are being dropped."""
    global _dropped_noticed_at
    now = time.monotonic()
    with _dropped_lock:
        if _dropped_noticed_at is not None and now - _dropped_noticed_at < DROPPED_NOTICE_SECONDS:
            return
        _dropped_noticed_at = now
    logger.warning(
        "csp violation reports dropped: a client address is over its budget of %s (said at most "
        "once every %d s per web process)",
        REPORT_RATE_TEXT,
        DROPPED_NOTICE_SECONDS,
        extra={"event": "csp_reports_dropped"},
    )


@csrf_exempt
@require_POST
def csp_violation_report(request: HttpRequest) -> HttpResponse:
    """Log each violation a browser reports; 204 when logged or dropped over the address's budget,
    400/413 in the error shape otherwise."""
    address = client_address(request)
    if not _within_budget(address):  # the request's first report, or what a bad body costs
        _note_dropped()
        return HttpResponse(status=204)
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > MAX_BODY_BYTES or len(request.body) > MAX_BODY_BYTES:
        return too_large(MAX_BODY_BYTES)
    try:
        violations = parse_violations(json.loads(request.body))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, InvalidReport
        code = "invalid_report" if isinstance(exc, InvalidReport) else "invalid_json"
        return error_response(400, code, f"Not a CSP violation report: {exc}", {"field": "body"})
    for position, violation in enumerate(violations):
        if position > 0 and not _within_budget(address):
            _note_dropped()
            break
        logger.warning(
            "csp violation: %s blocked %s on %s",
            violation["directive"],
            violation.get("blocked", "-"),
            violation.get("document", "-"),
            extra={"event": "csp_violation", **violation},
        )
    return HttpResponse(status=204)
