"""`manage.py check --deploy` warns when staff can log in to production without a second factor."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def two_factor_required(app_configs, **kwargs):
    if settings.STAFF_TWO_FACTOR_REQUIRED:
        return []
    return [
        checks.Warning(
            "STAFF_TWO_FACTOR_REQUIRED is off: staff log in to admin with a password alone.",
            hint="Unset STAFF_TWO_FACTOR_REQUIRED (on by default) and enrol staff: docs/security.md.",
            id="staff_auth.W001",
        )
    ]
