"""Failed-login lockouts (django-axes) into the audit log, and unlocking from admin, audited.

Axes counts failures per username and per address (settings: AXES_*); at AXES_FAILURE_LIMIT it
refuses that username, or that address, until AXES_COOLOFF_TIME has passed since the last
failure or staff unlock it. Each lockout is one audit entry (actor LOCKOUT_ACTOR), written when the
count reaches the limit; later tries during the lockout prolong it but write nothing more. Each
unlock is one entry per username or address unlocked, by the staff member who did it. A lockout
that ends by its cool-off writes nothing: no one acted.
"""

from __future__ import annotations

from axes.helpers import get_failure_limit
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from axes.utils import reset
from django.db import transaction
from django.dispatch import receiver

from audit.services import record_audit

LOCKOUT_ACTOR = "login-throttle"


@receiver(user_locked_out, dispatch_uid="staff_auth.audit_lockout")
def audit_lockout(sender, request, username: str | None, ip_address: str | None, **kwargs) -> None:
    failures = getattr(request, "axes_failures_since_start", None)
    if failures != get_failure_limit(request, getattr(request, "axes_credentials", None)):
        return  # a try while already locked out: the lockout was audited when it began
    attempt = AccessAttempt.objects.filter(
        username=username, ip_address=ip_address, user_agent=getattr(request, "axes_user_agent", "")
    ).first()
    if attempt is None:  # pragma: no cover - axes wrote it just before sending the signal
        return
    record_audit(
        actor=LOCKOUT_ACTOR,
        action="login_locked_out",
        obj=attempt,
        changes={
            "username": [None, username],
            "ip_address": [None, ip_address],
            "failures": [None, failures],
        },
    )


def unlock(attempts, *, by: str, parameter: str) -> list[str]:
    """Forget every failed login of the usernames (`parameter="username"`) or addresses
    (`"ip_address"`) of `attempts`, one audit entry each, by staff member `by`. Returns what was
    unlocked."""
    unlocked = []
    with transaction.atomic():
        for attempt in attempts:
            value = getattr(attempt, parameter)
            if value is None or value in unlocked:
                continue
            rows = AccessAttempt.objects.filter(**{parameter: value})
            failures = sum(rows.values_list("failures_since_start", flat=True))
            record_audit(
                actor=by,
                action="login_unlocked",
                obj=attempt,
                changes={parameter: [value, value], "failures": [failures, 0]},
            )
            reset(**{"ip" if parameter == "ip_address" else parameter: value})
            unlocked.append(value)
    return unlocked
