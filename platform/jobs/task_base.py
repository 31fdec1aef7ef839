"""The one base class every platform task uses. A reader sees the whole policy here:

- at-least-once delivery: `acks_late`, and a job whose worker process dies is requeued (one
  that kills its worker every time is dead-lettered after `max_redeliveries`);
- arguments are validated before the body runs, against the types of the body's signature
  (jobs/arguments.py): a job whose arguments cannot be used fails at once (InvalidArgument);
- transient failures (`TransientError`, `NotReadyYet`, a dropped database connection) are retried
  with exponential backoff and jitter, at most `max_retries` times;
- deferrals reschedule the job without spending its retry budget: a provider's rate limit
  (`RateLimited`), or the machinery's `Deferred` (jobs/errors.py: another execution holds the row,
  the time budget is spent, the jobs it waits for are still running);
- anything else fails at once and is recorded as a dead letter that ops staff can replay from
  admin: the vocabulary's permanent failures (jobs/errors.py: InvalidArgument, UnexpectedState),
  a provider's PermanentError, retries exhausted, and any other exception (a bug).

Tasks declare themselves with `@platform_task(name=TaskName...)` below; they never repeat these
options.
"""

from __future__ import annotations

import logging
import random
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from celery import states
from celery.contrib.django.task import DjangoTask
from celery.exceptions import Ignore, Reject, Retry
from django import db

from integrations.errors import RateLimited, TransientError
from jobs.arguments import TaskArguments, arguments_model, validate_arguments
from jobs.brokers import current_broker, queue_of_delivery
from jobs.celery_app import app
from jobs.dead_letters import record_dead_letter
from jobs.errors import Deferred, NotReadyYet
from jobs.outbox import DURABLE_HEADER, mark_completed


class WorkerKeptDying(Exception):
    """A job was redelivered more than max_redeliveries times: its worker died every time."""


# How many times the job was deferred so far, carried by each deferral's message. (The name it had
# when only rate limits deferred: jobs already waiting keep their count across a deploy.)
DEFERRALS_HEADER = "rate_limit_deferrals"

# Set on a request once its dead letter is recorded, so it is recorded once.
_DEAD_LETTERED = "platform_dead_lettered"

logger = logging.getLogger(__name__)


class PlatformTask(DjangoTask):
    acks_late = True
    reject_on_worker_lost = True
    # Check arguments against the signature when enqueueing: a wrong keyword fails in the
    # caller, not later in a worker. Their values are checked in the worker (`arguments`).
    typing = True
    # The model of the body's arguments, built by platform_task from its signature; None for a
    # task declared without it (its arguments are not validated).
    arguments: type[TaskArguments] | None = None

    max_retries = 5
    # Deliveries after a worker died running the job, before it is dead-lettered instead.
    max_redeliveries = 3
    # Attempt n (0-based) waits a random time in [ceiling/2, ceiling], ceiling = base * 2**n,
    # capped at retry_backoff_max; the half-open range keeps delays growing while spreading
    # a burst of failures out. On RabbitMQ a job waiting for its retry waits in the broker
    # (native delayed delivery); on Redis it is held by a worker, whose heartbeat keeps it from
    # being redelivered however long the wait (jobs/brokers/redis_transport.py). Either way the
    # bound is about the job, not the broker.
    retry_backoff_base = 2.0
    retry_backoff_max = 600.0
    # Deferrals are bounded too, separately from failures: a job still deferred after this many
    # (an hour or more at a per-second limit) counts its next one as a failure.
    max_deferrals = 1000

    # What waiting can heal. Database connection errors are transient: the server restarted
    # or dropped us, and the next attempt gets a new connection.
    transient_errors: tuple[type[BaseException], ...] = (
        TransientError,
        NotReadyYet,
        db.OperationalError,
        db.InterfaceError,
    )
    # What defers a job: it runs again later, and no retry attempt is spent.
    deferrals: tuple[type[BaseException], ...] = (RateLimited, Deferred)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            try:
                if (self.request.delivery_info or {}).get("redelivered") and not self.request.called_directly:
                    self._refuse_crash_loops()
                if self.arguments is not None:
                    args, kwargs = (), validate_arguments(self.arguments, args, kwargs)
                return super().__call__(*args, **kwargs)
            except self.transient_errors + self.deferrals as exc:
                if self.request.called_directly:
                    raise
                if isinstance(exc, db.Error):
                    # The connection is broken: let the retry start from a fresh one.
                    db.close_old_connections()
                raise self._retry_later(exc) from exc  # raises exc itself once retries are spent
        except (Retry, Ignore, Reject):
            raise
        except Exception as exc:
            if not self.request.called_directly:
                # Record the dead letter before Celery stores the FAILURE state, so whoever sees
                # the failure (the jobs API, Flower) also finds its dead letter.
                self._record_dead_letter(exc, traceback.format_exc())
            raise

    @property
    def actor(self) -> str:
        """Who the audit log says acted when this task changes a row: "task:<its name>"."""
        return f"task:{self.name}"

    def _refuse_crash_loops(self) -> None:
        """A job whose worker died running it comes back (acks_late, reject_on_worker_lost). One
        that kills its worker every time (out of memory, a crashing library) would come back
        forever: past `max_redeliveries` it becomes a dead letter instead. The broker says how
        many times it handed this message out before (RabbitMQ's x-delivery-count; on Redis one
        counter round trip to REDIS_URL); only redelivered messages pay for asking."""

        request = self.request
        try:
            earlier = current_broker().delivery_count(
                request.id, request.retries or 0, _message_headers(request)
            )
        except Exception:  # can't count: run it, as Celery alone would
            logger.warning("could not count redeliveries of %s[%s]", self.name, request.id)
            return
        if earlier > self.max_redeliveries:
            raise WorkerKeptDying(
                f"redelivered {earlier} times: its worker process died each time it ran this job "
                "(out of memory? a crash in native code?)"
            )

    def _retry_later(self, exc: BaseException) -> BaseException:
        # The retry carries this job's custom headers (e.g. `durable`) on, plus our own; not what
        # the broker wrote on the delivery that is ending here: the `redelivered` mark, and
        # RabbitMQ's x-* headers (x-delivery-count, and x-death from the delay queues a delayed
        # message expired through: copied onto the retry, RabbitMQ would take the retry's pass
        # through the same delay queue for a dead-letter cycle and drop it silently).
        headers = {k: v for k, v in (self.request.headers or {}).items() if not _set_by_broker(k)}
        first_failed_at = self.request.get("first_failed_at")
        if isinstance(exc, self.deferrals):
            deferrals = int(self.request.get(DEFERRALS_HEADER) or 0)
            if deferrals < self.max_deferrals:
                # Not a failure: keep the attempt number (Task.retry adds one back), so the
                # retry budget and the failure backoff are untouched.
                self.request.retries -= 1
                countdown = deferred_countdown(exc.retry_after)
                headers.update({DEFERRALS_HEADER: deferrals + 1, "first_failed_at": first_failed_at})
                return self.retry(exc=exc, countdown=countdown, headers=headers)
        headers.update(first_failed_at=first_failed_at or _now_iso())
        return self.retry(exc=exc, countdown=self.retry_countdown(exc), headers=headers)

    def retry_countdown(self, exc: BaseException | None = None) -> float:
        """Seconds to wait before the next attempt: exponential, jittered, bounded."""
        ceiling = min(self.retry_backoff_max, self.retry_backoff_base * 2**self.request.retries)
        countdown = random.uniform(ceiling / 2, ceiling)  # noqa: S311 backoff jitter, not a secret
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            # The provider said when: never earlier than that, never past our bound.
            countdown = max(countdown, min(float(retry_after), self.retry_backoff_max))
        return countdown

    def after_return(self, status, retval, task_id, args, kwargs, einfo) -> None:
        # A job published from the outbox records that it is done (succeeded, or gave up
        # into a dead letter), so the relay stops watching it. Other jobs pay nothing here.
        if status in (states.SUCCESS, states.FAILURE) and self.request.get(DURABLE_HEADER):
            mark_completed(task_id, outcome=status)

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        # Failures raised by the task were recorded in __call__; this catches the rest, e.g. a
        # hard time limit, reported by the worker's main process after it killed the child. There
        # self.request is the task's shared default context, not this job's: compare ids.
        if self.request.id == task_id and self.request.get(_DEAD_LETTERED):
            return
        self._record_dead_letter(
            exc, einfo.traceback if einfo else "", task_id=task_id, args=args, kwargs=kwargs
        )

    def _record_dead_letter(
        self, exc: BaseException, traceback_text: str, *, task_id: str | None = None, args=None, kwargs=None
    ) -> None:

        request = self.request
        try:
            if db.connection.connection is not None and not db.connection.is_usable():
                db.connection.close()  # the failure may have been the database dropping us
            record_dead_letter(
                task_id=task_id or request.id,
                task_name=self.name,
                args=list(request.args if args is None else args or ()),
                kwargs=dict(request.kwargs if kwargs is None else kwargs or {}),
                queue=queue_of_delivery(request.delivery_info),
                exc=exc,
                traceback=traceback_text,
                attempts=(request.retries or 0) + 1,
                first_failed_at=request.get("first_failed_at"),
            )
            if request.id == (task_id or request.id):
                setattr(request, _DEAD_LETTERED, True)
        except Exception:  # the job already failed; never hide that behind a bookkeeping error
            logger.exception("could not record dead letter for %s[%s]", self.name, task_id or request.id)


def _set_by_broker(header: str) -> bool:
    return header == "redelivered" or header.startswith("x-")


def deferred_countdown(retry_after: float | None) -> float:
    """When a deferred job tries again: after the limiter's wait, spread over one more such
    wait (at least a second), so the waiters do not all wake when the oldest slot frees and all
    but one be deferred again."""
    wait = retry_after or 1.0
    return wait + random.uniform(0, max(1.0, wait))  # noqa: S311 jitter, not a secret


def _message_headers(request) -> dict[str, Any]:
    # Celery builds the request from the message's headers: a header the broker adds
    # (x-delivery-count) is one of the request's attributes.
    return {key: value for key, value in vars(request).items() if key.startswith("x-")}


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def platform_task(*, name: str, base: type[PlatformTask] = PlatformTask, **options: Any):
    """Declare a platform task: `@platform_task(name=TaskName.UPDATE_EXCHANGE_RATES)`.

    The name is explicit (it is part of the contract; jobs/task_names.py); the body's signature
    declares its arguments (jobs/arguments.py); options override PlatformTask's defaults
    (`soft_time_limit`, `time_limit`, `max_retries`, `queue`...)."""
    soft, hard = options.get("soft_time_limit"), options.get("time_limit")
    if soft and hard and soft >= hard:
        # billiard then never enforces the hard limit: a stuck task would hold its process forever.
        raise ValueError(f"{name}: soft_time_limit ({soft}) must be below time_limit ({hard})")
    name = str(name)  # the plain string, whether given a TaskName or not

    def declare(body: Callable[..., Any]):
        arguments = arguments_model(body, task_name=name)
        return app.task(base=base, name=name, bind=True, arguments=arguments, **options)(body)

    return declare
