"""Failed logins in admin (django-axes' models, registered here instead of by axes): unlock a
username or an address, audited (staff_auth/throttling.py); successful logins, read-only."""

from axes.admin import AccessAttemptAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessLog
from django.contrib import admin, messages

from staff_auth.throttling import unlock


@admin.register(AccessAttempt)
class UnlockableAccessAttemptAdmin(AccessAttemptAdmin):
    actions = ["unlock_usernames", "unlock_addresses"]

    @admin.action(
        description="Unlock the selected usernames (forget their failed logins)", permissions=["unlock"]
    )
    def unlock_usernames(self, request, queryset):
        self._unlock(request, queryset, "username")

    @admin.action(
        description="Unlock the selected addresses (forget their failed logins)", permissions=["unlock"]
    )
    def unlock_addresses(self, request, queryset):
        self._unlock(request, queryset, "ip_address")

    def _unlock(self, request, queryset, parameter: str) -> None:
        unlocked = unlock(queryset, by=request.user.get_username(), parameter=parameter)
        self.message_user(request, f"Unlocked: {', '.join(unlocked) or 'nothing'}.", messages.SUCCESS)

    def has_unlock_permission(self, request) -> bool:
        return request.user.has_perm("axes.delete_accessattempt")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # what axes recorded is evidence: unlocking deletes it, audited, and nothing edits it

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deleting would unlock without an audit entry: use the unlock actions


@admin.register(AccessLog)
class ReadOnlyAccessLogAdmin(AccessLogAdmin):
    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
