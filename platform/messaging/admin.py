"""Admin for WhatsApp messages: numbers masked in the list; what Twilio reported is read-only."""

from django.contrib import admin

from identifiers import mask_phone
from messaging.models import WhatsAppMessage


@admin.register(WhatsAppMessage)
class WhatsAppMessageAdmin(admin.ModelAdmin):
    list_display = ("created_at", "to_masked", "status", "template", "vehicle", "twilio_sid", "error_code")
    list_filter = ("status", "error_code")
    # Search by exact number only: no substring scans over personal data.
    search_fields = ("=to", "=twilio_sid", "=job_id", "template")
    list_select_related = ("vehicle",)
    raw_id_fields = ("vehicle",)
    date_hierarchy = "created_at"
    # The SID ties the row to what Twilio sent; the status comes from Twilio's callbacks.
    readonly_fields = (
        "twilio_sid",
        "status",
        "job_id",
        "idempotency_key",
        "error_code",
        "error_message",
        "sent_at",
        "created_at",
        "updated_at",
    )

    @admin.display(description="To", ordering="to")
    def to_masked(self, obj: WhatsAppMessage) -> str:
        return mask_phone(obj.to)
