"""Admin for WhatsApp messages (numbers masked in the list; what Twilio reported is read-only)
and for bulk sends followed as batches."""

from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from identifiers import mask_phone
from jobs.operations.admin_scale import LargeTableAdmin
from messaging.batches import batch_progress, cancel_batch, failed_recipients, retry_failed
from messaging.models import BulkBatch, WhatsAppMessage
from messaging.whatsapp import DONE_STATUSES, PENDING_STATUSES


@admin.register(WhatsAppMessage)
class WhatsAppMessageAdmin(admin.ModelAdmin):
    list_display = ("created_at", "to_masked", "status", "template", "vehicle", "twilio_sid", "error_code")
    list_filter = ("status", "error_code")
    # Numbers are sealed (messaging/models.py): rows are found by SID, job or template, never by number.
    search_fields = ("=twilio_sid", "=scope", "template")
    list_select_related = ("vehicle",)
    raw_id_fields = ("vehicle",)
    date_hierarchy = "created_at"
    # The SID ties the row to what Twilio sent; the status comes from Twilio's callbacks.
    readonly_fields = (
        "twilio_sid",
        "status",
        "scope",
        "idempotency_key",
        "error_code",
        "error_message",
        "sent_at",
        "created_at",
        "updated_at",
    )

    @admin.display(description="To")
    def to_masked(self, obj: WhatsAppMessage) -> str:
        return mask_phone(obj.to)


def _count_rows(statuses) -> Coalesce:
    rows = (
        WhatsAppMessage.objects.filter(scope=OuterRef("job_id"), status__in=list(statuses))
        .order_by()
        .values("scope")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    return Coalesce(Subquery(rows), 0)


@admin.register(BulkBatch)
class BulkBatchAdmin(LargeTableAdmin):
    """Bulk sends as batches: a list, and a page per batch with a live progress bar, the failed
    recipients (masked) and their reasons, Cancel and Retry failed (messaging/batches.py)."""

    list_display = ("started_at", "job_id", "total", "chunks", "state", "progress_column", "finished_at")
    # Both served by an index (bulkbatch_state_started_idx, bulkbatch_started_idx); counts estimated
    # past a thousand batches, never a count(*) of the table (jobs/operations/admin_scale.py).
    list_filter = ("state",)
    search_exact_fields = ("job_id",)
    list_per_page = 50
    progress_template = "admin/messaging/bulkbatch/progress.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # batches are made by bulk jobs

    def has_delete_permission(self, request: HttpRequest, obj: BulkBatch | None = None) -> bool:
        return False  # its rows are the record of what was sent

    def get_queryset(self, request: HttpRequest):
        # The list's counts in its one query: a count per batch over whatsapp_job_status_idx.
        return (
            super()
            .get_queryset(request)
            .annotate(
                sent_count=_count_rows(DONE_STATUSES),
                failed_count=_count_rows([WhatsAppMessage.Status.FAILED]),
                pending_count=_count_rows(PENDING_STATUSES),
            )
        )

    @admin.display(description="Progress")
    def progress_column(self, obj: BulkBatch) -> str:
        percent = (obj.total - obj.pending_count) * 100 // obj.total if obj.total else 100
        return (
            f"{max(0, percent)}% ({obj.sent_count} sent, {obj.failed_count} failed, "
            f"{obj.pending_count} pending)"
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/progress.json", view(self.progress_json), name="messaging_bulkbatch_progress"),
            path("<int:pk>/cancel/", view(self.cancel_view), name="messaging_bulkbatch_cancel"),
            path("<int:pk>/retry-failed/", view(self.retry_failed_view), name="messaging_bulkbatch_retry"),
            *super().get_urls(),
        ]

    def _batch(self, request: HttpRequest, pk: int) -> BulkBatch:
        batch = BulkBatch.objects.filter(pk=pk).first()
        if batch is None or not self.has_view_permission(request, batch):
            raise Http404("No such batch")
        return batch

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        try:
            batch = self._batch(request, int(object_id))
        except ValueError:
            raise Http404("No such batch") from None
        progress = batch_progress(batch)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Bulk send {batch.job_id}",
            "batch": batch,
            "progress": progress,
            "may_change": self.has_change_permission(request, batch),
            "failed": [
                {"to": mask_phone(row.to), "code": row.error_code, "reason": row.error_message}
                for row in failed_recipients(batch)
            ],
        }
        return TemplateResponse(request, self.progress_template, context)

    def progress_json(self, request: HttpRequest, pk: int) -> JsonResponse:
        return JsonResponse(batch_progress(self._batch(request, pk)).as_dict())

    def cancel_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        batch = self._batch(request, pk)
        if request.method != "POST" or not self.has_change_permission(request, batch):
            return HttpResponseNotAllowed(["POST"])
        cancelled = cancel_batch(batch, by=request.user.get_username())
        self.message_user(request, f"Cancelled: {cancelled} message(s) will not be sent.", messages.SUCCESS)
        return redirect("admin:messaging_bulkbatch_change", pk)

    def retry_failed_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        batch = self._batch(request, pk)
        if request.method != "POST" or not self.has_change_permission(request, batch):
            return HttpResponseNotAllowed(["POST"])
        queued = retry_failed(batch)
        self.message_user(request, f"{queued} failed message(s) queued to be sent again.", messages.SUCCESS)
        return redirect("admin:messaging_bulkbatch_change", pk)
