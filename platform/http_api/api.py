"""The trigger API (/api/v1/): list triggerable tasks, start a job, read a job's status.

Built on django-ninja with pydantic 2. Why it over Django REST framework + drf-spectacular: the
typed pydantic models *are* the validation, the JSON Schema of each task's arguments (GET
/api/v1/tasks) and the OpenAPI document, from one declaration, with no serializer layer to keep
in step; validation runs in pydantic-core (Rust), and ninja's request path is thin, which
matters when the web process and the workers share two cores (docs/baselines.md). What we
add: every error in the contract's shape (errors.py), a Redis rate limit per key
(ratelimit.py), a bounded body parser, and the 503 of a broker that is down (publish.py).
"""

from __future__ import annotations

import pydantic
from django.http import HttpRequest, HttpResponse
from ninja import Header, NinjaAPI, Status
from ninja.security import HttpBearer

from http_api import bad_keys, keys, ratelimit, registry
from http_api.errors import ApiError, BoundedJsonParser, error_response, install_handlers, invalid_arguments
from http_api.models import ApiKey
from http_api.publish import BrokerUnavailable
from http_api.ratelimit import ApiKeyThrottle
from http_api.report_endpoints import router as reports_router
from http_api.schemas import ErrorResponse, JobAccepted, JobRequest, JobStatus, TaskInfo
from http_api.selectors import job_status
from http_api.services import Acceptance, IdempotencyConflict, accept_job, body_hash
from jobs.arguments import field_problems
from staff_auth.addresses import client_address

# Visible ASCII, no spaces: a UUID or any opaque token (the IETF Idempotency-Key draft's keys).
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
BROKER_RETRY_AFTER_SECONDS = 5

ERRORS_EVERYWHERE = {401: ErrorResponse, 429: ErrorResponse}


class ApiKeyAuth(HttpBearer):
    """Authorization: Bearer pk_<prefix>_<secret> (python manage.py create_api_key NAME)."""

    openapi_scheme = "bearer"
    openapi_description = "An API key from `python manage.py create_api_key NAME`, sent as a bearer token."

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        # An address that sent too many bad keys waits before its key is even looked at.
        address = client_address(request)
        bad_keys.refuse_if_slowed(address)
        key = keys.authenticate(token)
        if key is None:
            bad_keys.note_bad_key(address)
            return None
        # The rate limit's one Redis round trip, here rather than in the throttle: it also says
        # whether a key was revoked since this process cached it (http_api/keys.py).
        request.auth = key
        setattr(request, ratelimit.TAKEN_ATTRIBUTE, ratelimit.take(f"key:{key.prefix}"))
        return None if keys.revoked_since_authenticated(request) else key


api = NinjaAPI(
    title="Platform trigger API",
    version="1.0.0",
    description=(
        "Start background jobs and read their status. Every error has the shape "
        '`{"error": {"code", "message", "details"}}`; invalid input names each wrong field in '
        "`details.fields`, keyed by a dotted path into the request (`kwargs.to`, `countdown`, "
        "`kwargs.recipients.3`, `header.Idempotency-Key`)."
    ),
    urls_namespace="http_api",
    openapi_url="/openapi.json",
    docs_url="/docs",
    auth=ApiKeyAuth(),
    throttle=ApiKeyThrottle(),
    parser=BoundedJsonParser(),
)
install_handlers(api)
# GET /api/v1/reports/dealers/<id> and /api/v1/reports/analytics (http_api/report_endpoints.py).
api.add_router("/reports", reports_router)


@api.get(
    "/tasks",
    response={200: list[TaskInfo], **ERRORS_EVERYWHERE},
    by_alias=True,
    summary="List the triggerable tasks",
    operation_id="list_tasks",
)
def list_tasks(request: HttpRequest):
    """Every task POST /api/v1/jobs accepts, with its queue and the JSON Schema of its kwargs."""
    return [
        {
            "name": task.name,
            "description": task.description,
            "queue": task.queue,
            "schema": task.kwargs_schema(),
        }
        for task in registry.TRIGGERABLE.values()
    ]


@api.post(
    "/jobs",
    response={
        202: JobAccepted,
        400: ErrorResponse,
        404: ErrorResponse,
        409: ErrorResponse,
        413: ErrorResponse,
        503: ErrorResponse,
        **ERRORS_EVERYWHERE,
    },
    summary="Start a job",
    operation_id="create_job",
)
def create_job(
    request: HttpRequest,
    response: HttpResponse,
    payload: JobRequest,
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Repeat a request safely: the same key and body within 24 h return the first job "
        "(with `Idempotent-Replayed: true`); the same key with another body is a 409.",
    ),
):
    """Validate the arguments against the task's schema, then publish the job.

    400 `invalid_json` (not a JSON object) or `invalid_arguments` (details.fields), 404
    `unknown_task`, 409 `idempotency_conflict`, 413 `payload_too_large`, 429 `rate_limited`
    (Retry-After), 503 `broker_unavailable` (the job was not accepted; retry with the same
    Idempotency-Key after Retry-After)."""
    task = _triggerable_task(payload.task)
    acceptance = _accept(
        request.auth,
        task=task,
        kwargs=_validated_kwargs(task, payload.kwargs),
        payload=payload,
        idempotency_key=idempotency_key,
    )
    job_id = str(acceptance.job.job_id)
    if acceptance.replayed:
        response["Idempotent-Replayed"] = "true"
    return Status(
        202,
        {
            "id": job_id,
            "task": acceptance.job.task_name,
            "state": "PENDING",
            "status_url": f"/api/v1/jobs/{job_id}",
        },
    )


def _triggerable_task(name: str) -> registry.TriggerableTask:
    task = registry.get_task(name)
    if task is None:
        raise ApiError(
            404,
            "unknown_task",
            f"No triggerable task is named {name!r}; see GET /api/v1/tasks.",
            {"task": name},
        )
    return task


def _validated_kwargs(task: registry.TriggerableTask, kwargs: dict) -> dict:
    """The kwargs as the task's argument model reads them; 400 invalid_arguments naming each field."""
    try:
        # The model the worker validates the job with (the task's signature, jobs/arguments.py).
        arguments = task.arguments.model_validate(kwargs)
    except pydantic.ValidationError as exc:
        raise invalid_arguments(field_problems(exc.errors(), prefix="kwargs")) from None
    return arguments.model_dump(mode="json", exclude_unset=True)


def _accept(
    api_key: ApiKey,
    *,
    task: registry.TriggerableTask,
    kwargs: dict,
    payload: JobRequest,
    idempotency_key: str | None,
) -> Acceptance:
    """accept_job, its refusals answered in the contract's shape (409, 503)."""
    try:
        return accept_job(
            api_key=api_key,
            task_name=task.name,
            kwargs=kwargs,
            countdown=payload.countdown,
            idempotency_key=idempotency_key,
            # Only a request with an Idempotency-Key is compared with an earlier one.
            request_hash=body_hash(payload.model_dump(mode="json")) if idempotency_key else "",
        )
    except IdempotencyConflict as conflict:
        raise ApiError(
            409,
            "idempotency_conflict",
            "This Idempotency-Key was used with a different body.",
            {"job_id": conflict.job_id},
        ) from None
    except BrokerUnavailable:
        raise ApiError(
            503,
            "broker_unavailable",
            "The job queue is unavailable; the job was not accepted. Retry later.",
            {"retry_after": BROKER_RETRY_AFTER_SECONDS},
            headers={"Retry-After": str(BROKER_RETRY_AFTER_SECONDS)},
        ) from None


@api.get(
    "/jobs/{job_id}",
    response={200: JobStatus, 404: ErrorResponse, **ERRORS_EVERYWHERE},
    summary="Read a job's status",
    operation_id="get_job",
)
def get_job(request: HttpRequest, job_id: str):
    """The job's Celery state, result or error, retries, and whether it became a dead letter."""
    status = job_status(job_id=job_id)
    if status is None:
        raise ApiError(404, "not_found", "No job has this id.")
    return Status(200, status)


def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other path under /api/v1/: a 404 in the API's error shape, not Django's HTML page."""
    return error_response(404, "not_found", "No such endpoint; see /api/v1/openapi.json.")
