"""Every error the trigger API and the webhooks answer, in the contract's one shape:

    {"error": {"code": "<snake_case>", "message": "<human sentence>", "details": <object|null>}}

Invalid input names its fields in `details.fields`, a map from a dotted path into the request
to what is wrong there: `{"fields": {"kwargs.to": "must be an E.164 phone number, e.g.
+14165550123", "kwargs.colour": "unknown argument", "countdown": "..."}}`. List items are
addressed by index (`kwargs.recipients.3`), headers as `header.<Name>`. Paths and sentences are
jobs/arguments.py's, so a dead letter names a wrong argument as its API error does (`recipients.3`).

django-ninja's own failures (its ValidationError, HttpError, AuthenticationError, Throttled,
Http404) are translated here by exception handlers, so no response escapes in another shape.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from ninja.parser import Parser

from http_api import conf
from jobs.arguments import field_path, problem

logger = logging.getLogger(__name__)

# Where ninja reports a problem, as the first items of an error's `loc`; not part of our paths.
_SOURCES = {"body", "query", "path", "header", "cookie", "form", "file"}
# ninja's name for the body parameter of POST /api/v1/jobs (api.py): stripped from paths.
BODY_PARAM = "payload"
# Human sentences for fields whose constraint alone (a regex) would make a poor message.
FIELD_MESSAGES = {"header.Idempotency-Key": "must be 1 to 255 visible ASCII characters, no spaces"}
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    429: "rate_limited",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error answer: raise it anywhere below a view."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = dict(details) if details is not None else None
        self.headers = dict(headers or {})


class PayloadTooLarge(Exception):
    pass


class InvalidJson(Exception):
    pass


def error_response(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JsonResponse:
    response = JsonResponse(
        {
            "error": {
                "code": code,
                "message": message,
                "details": dict(details) if details is not None else None,
            }
        },
        status=status,
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def invalid_arguments(fields: Mapping[str, str]) -> ApiError:
    return ApiError(
        400, "invalid_arguments", "Some arguments are invalid; see details.fields.", {"fields": dict(fields)}
    )


def request_field_errors(errors: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """ninja's errors about the request -> {"dotted.path": "what is wrong"}, the first per path.

    ninja starts an error's `loc` with where the value came from ("body", "header"...): the body
    and its parameter name are dropped (`countdown`, `kwargs`), headers become `header.<Name>`."""
    fields: dict[str, str] = {}
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] in _SOURCES:
            source = loc.pop(0)
            if source == "body" and loc and loc[0] == BODY_PARAM:
                loc.pop(0)
            elif source == "header":
                loc.insert(0, "header")
        path = field_path(loc) or "body"
        fields.setdefault(path, FIELD_MESSAGES.get(path) or problem(error, unknown="unknown field"))
    return fields


class BoundedJsonParser(Parser):
    """ninja's JSON parser with a size limit and strict JSON (no NaN/Infinity)."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        limit = conf.max_body_bytes()
        if len(request.body) > limit:
            raise PayloadTooLarge(limit)
        try:
            return json.loads(request.body, parse_constant=_reject_constant)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise InvalidJson(str(exc)) from exc


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def too_large(limit: int) -> JsonResponse:
    """413 payload_too_large (docs/contract.md section 3)."""
    return error_response(
        413, "payload_too_large", f"The request body is larger than {limit} bytes.", {"max_bytes": limit}
    )


def install_handlers(api: NinjaAPI) -> None:
    """Route every failure ninja can raise to one response in the contract's shape."""

    @api.exception_handler(ApiError)
    def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @api.exception_handler(ValidationError)
    def _validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        root = [
            e for e in exc.errors if [str(p) for p in e.get("loc", ())] in (["body", BODY_PARAM], ["body"])
        ]
        if root:
            # The body parsed as JSON but is not an object (or is missing altogether).
            return error_response(400, "invalid_json", "The request body must be a JSON object.")
        return error_response(
            400,
            "invalid_arguments",
            "Some arguments are invalid; see details.fields.",
            {"fields": request_field_errors(exc.errors)},
        )

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        cause = exc.__cause__
        if isinstance(cause, PayloadTooLarge):
            return too_large(cause.args[0])
        if isinstance(cause, RequestDataTooBig):
            return too_large(conf.max_body_bytes())
        if isinstance(cause, InvalidJson):
            return error_response(400, "invalid_json", f"The request body is not valid JSON: {cause}.")
        if isinstance(exc, AuthenticationError):
            return error_response(
                401,
                "unauthorized",
                "A valid API key is required: Authorization: Bearer <key>.",
                headers={"WWW-Authenticate": 'Bearer realm="api"'},
            )
        if isinstance(exc, Throttled):
            # ninja adds Retry-After to this response itself (http_api/ratelimit.py).
            return error_response(
                429,
                "rate_limited",
                "Too many requests for this API key; retry later.",
                {"retry_after": math.ceil(exc.wait) if exc.wait else None},
            )
        code = STATUS_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc))

    @api.exception_handler(RequestDataTooBig)
    def _request_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return too_large(conf.max_body_bytes())

    @api.exception_handler(Http404)
    def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return error_response(404, "not_found", "Not found.")

    @api.exception_handler(Exception)
    def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        # Logged with its traceback here; the client gets the shape, never the traceback.
        logger.exception(
            "trigger API: unhandled %s on %s %s", type(exc).__name__, request.method, request.path
        )
        return error_response(500, "internal_error", "Something went wrong on our side; it was logged.")
