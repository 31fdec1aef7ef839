"""Probe tasks on the real task base, loaded by test workers (CELERY_IMPORTS in test settings)."""

from __future__ import annotations

import os
import time

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone

from integrations.errors import PermanentError, RateLimited, TransientError
from integrations.twilio_whatsapp import get_whatsapp_client
from jobs.arguments import Vin, json_int
from jobs.errors import InvalidArgument, NotReadyYet
from jobs.ledger import claim_effect
from jobs.task_base import platform_task
from messaging.batches import batch_callback
from tests.support.probe.models import ProbeEffect, ProbeExecution


def _record_execution(task) -> ProbeExecution:
    eta = task.request.eta
    return ProbeExecution.objects.create(
        marker=task.request.kwargs.get("marker", ""),
        job_id=task.request.id,
        retries=task.request.retries,
        pid=os.getpid(),
        eta=eta.isoformat() if hasattr(eta, "isoformat") else (eta or ""),
    )


def _finish(execution: ProbeExecution) -> None:
    ProbeExecution.objects.filter(pk=execution.pk).update(finished_at=timezone.now())


@platform_task(name="probe.effect")
def effect(self, marker: str, sleep: float = 0.0) -> str:
    """Sleep (a window to kill the worker in), then do one effect through the ledger."""
    execution = _record_execution(self)
    time.sleep(sleep)
    with transaction.atomic():
        if claim_effect(f"probe:{marker}"):
            ProbeEffect.objects.create(marker=marker, job_id=self.request.id)
    _finish(execution)
    return marker


@batch_callback
@platform_task(name="probe.batch_done")
def batch_done(self, batch_id: str) -> str:
    """A bulk send's batch callback: one effect per batch through the ledger."""
    with transaction.atomic():
        if claim_effect(f"probe:batch_done:{batch_id}"):
            ProbeEffect.objects.create(marker=f"batch_done:{batch_id}", job_id=self.request.id)
    return batch_id


@platform_task(name="probe.flaky", retry_backoff_base=0.5)
def flaky(self, marker: str, failures: int) -> str:
    """Raise TransientError on the first `failures` executions, then succeed."""
    execution = _record_execution(self)
    _finish(execution)
    if ProbeExecution.objects.filter(marker=marker).count() <= failures:
        raise TransientError("provider hiccup", provider="probe", code=503)
    return "recovered"


@platform_task(name="probe.always_transient", retry_backoff_base=0.1, max_retries=3)
def always_transient(self, marker: str) -> None:
    _finish(_record_execution(self))
    raise TransientError("still down", provider="probe", code=503)


@platform_task(name="probe.permanent")
def permanent(self, marker: str) -> None:
    _finish(_record_execution(self))
    raise PermanentError("card declined", provider="probe", code="card_declined")


@platform_task(name="probe.value_error")
def value_error(self, marker: str) -> None:
    _finish(_record_execution(self))
    raise ValueError(f"marker {marker!r} is not usable")


@platform_task(name="probe.invalid_argument")
def invalid_argument(self, marker: str) -> None:
    """Find, in the body, that an argument names nothing (the vocabulary's permanent failure)."""
    _finish(_record_execution(self))
    raise InvalidArgument("marker", f"no probe named {marker!r}")


@platform_task(name="probe.not_ready_yet", retry_backoff_base=0.5)
def not_ready_yet(self, marker: str, failures: int) -> str:
    """Find what it needs missing on the first `failures` executions (NotReadyYet), then run."""
    _finish(_record_execution(self))
    if ProbeExecution.objects.filter(marker=marker).count() <= failures:
        raise NotReadyYet("the row is not committed yet")
    return "ready"


@platform_task(name="probe.echo_arguments")
def echo_arguments(self, marker: str, vin: Vin, count: json_int(ge=0) = 1) -> dict:
    """Return the arguments the body received (after the task base validated them)."""
    _finish(_record_execution(self))
    return {"vin": vin, "count": count, "count_type": type(count).__name__}


@platform_task(name="probe.rate_limited", max_retries=1)
def rate_limited(self, marker: str, times: int) -> str:
    """Hit our own rate limit `times` times (more than max_retries), then run."""
    _finish(_record_execution(self))
    if ProbeExecution.objects.filter(marker=marker).count() <= times:
        raise RateLimited("limit spent", provider="probe", retry_after=0.05)
    return "ran"


@platform_task(name="probe.effect_then_fail")
def effect_then_fail(self, marker: str) -> str:
    """Do the effect, then fail permanently the first time: a replay must not redo it."""
    execution = _record_execution(self)
    with transaction.atomic():
        if claim_effect(f"probe:{marker}"):
            ProbeEffect.objects.create(marker=marker, job_id=self.request.id)
    _finish(execution)
    if ProbeExecution.objects.filter(marker=marker).count() == 1:
        raise PermanentError("downstream refused", provider="probe", code=400)
    return "done"


@platform_task(name="probe.platform_module")
def platform_module(self) -> dict:
    """Which `platform` module the worker imported (the standard library's, never ours)."""
    import platform  # imported in the worker, by the task itself: that is what is probed

    return {"file": platform.__file__, "system": platform.system()}


@platform_task(name="probe.beat_tick")
def beat_tick(self, marker: str) -> None:
    """One run sent by beat: tests/schedules count runs and their spacing per marker."""
    _finish(_record_execution(self))


@platform_task(name="probe.twilio_send")
def twilio_send(self, marker: str, to: str) -> str:
    """One WhatsApp text through the real Twilio client and the shared rate limit (tests/integrations)."""
    return get_whatsapp_client().send_text(to=to, body=f"probe {marker}").sid


@platform_task(name="probe.overrun", soft_time_limit=0.5, time_limit=1.5)
def overrun(self, marker: str) -> None:
    """Ignore the soft time limit and outlive the hard one: the worker kills the child."""
    _finish(_record_execution(self))
    try:
        time.sleep(10)
    except SoftTimeLimitExceeded:
        time.sleep(10)


@platform_task(name="probe.kill_worker")
def kill_worker(self, marker: str) -> None:
    """Kill the process running it, every time (a job that runs its worker out of memory)."""
    _finish(_record_execution(self))
    os.kill(os.getpid(), 9)
