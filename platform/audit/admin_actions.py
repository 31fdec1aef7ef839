"""Admin actions that change a status through a domain service, so an operator's change obeys
the same transition table, validation and audit trail as code's. Status fields stay read-only."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.core.exceptions import ValidationError


def transition_action(*, to: str, label: str, service: Callable[..., object], id_kwarg: str) -> Callable:
    """An admin action "Mark as <label>" calling service(<id_kwarg>=pk, to=to, actor=username)."""

    def action(modeladmin, request, queryset) -> None:
        done, refused = 0, []
        for pk in queryset.values_list("pk", flat=True):
            try:
                service(**{id_kwarg: pk, "to": to, "actor": request.user.get_username()})
                done += 1
            except ValidationError as exc:
                refused.append(f"#{pk}: {'; '.join(exc.messages)}")
        if done:
            modeladmin.message_user(request, f"{done} row(s) marked {label}.", messages.SUCCESS)
        for line in refused:
            modeladmin.message_user(request, line, messages.ERROR)

    action.__name__ = f"mark_{to}"
    return admin.action(description=f"Mark selected as {label}", permissions=["change"])(action)


class StatusReadOnlyOnChange:
    """Existing rows' status is changed by the actions above, never by editing the field."""

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "status") if obj is not None else fields
