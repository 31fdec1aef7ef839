"""POST /csp-violations: browsers report what the Content-Security-Policy blocked; each report
becomes one structured log line (logger `http_api.csp_violations`, event `csp_violation`).

The policy itself is in config/settings/base.py (CONTENT_SECURITY_POLICY, django-csp); its
`report-uri` names this endpoint. Both report formats are read: the `report-uri` one
(`application/csp-report`, one `{"csp-report": {...}}` per request) and the Reporting API's
(`application/reports+json`, a list of `{"type": "csp-violation", "body": {...}}`).

Nothing personal is logged: page, script and blocked addresses keep their scheme, host and path
only (a query string may hold a search for a phone number or a name); the referrer, the script
sample (a piece of the page), the user agent and the client's address are never read. Browsers
send these without a session or a CSRF token, so the endpoint takes none; a body is bounded
(MAX_BODY_BYTES, MAX_REPORTS_PER_BODY) so one request cannot flood the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from http_api.errors import error_response, too_large

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
MAX_REPORTS_PER_BODY = 20
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
        reports = [
            item
            for item in body
            if isinstance(item, dict)
            and item.get("type") == "csp-violation"
            and isinstance(item.get("body"), dict)
        ]
        if not reports:
            raise InvalidReport("the list holds no report of type csp-violation")
        return [_clean(item["body"], _REPORTING_API_FIELDS) for item in reports[:MAX_REPORTS_PER_BODY]]
    raise InvalidReport('expected {"csp-report": {...}} or a list of Reporting API reports')


@csrf_exempt
@require_POST
def csp_violation_report(request: HttpRequest) -> HttpResponse:
    """Log each violation a browser reports; 204 when logged, 400/413 in the error shape otherwise."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > MAX_BODY_BYTES or len(request.body) > MAX_BODY_BYTES:
        return too_large(MAX_BODY_BYTES)
    try:
        violations = parse_violations(json.loads(request.body))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, InvalidReport
        code = "invalid_report" if isinstance(exc, InvalidReport) else "invalid_json"
        return error_response(400, code, f"Not a CSP violation report: {exc}", {"field": "body"})
    for violation in violations:
        logger.warning(
            "csp violation: %s blocked %s on %s",
            violation["directive"],
            violation.get("blocked", "-"),
            violation.get("document", "-"),
            extra={"event": "csp_violation", **violation},
        )
    return HttpResponse(status=204)
